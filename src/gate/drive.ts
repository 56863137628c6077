/**
 * The shell's driver of any gate rule (rules/types.ts): it replays what the journal holds, then asks the rule
 * for its next batch and runs it through the runner, journaling every held-out run as it lands, until the
 * rule decides. A batch's runs of the same task and trial are made together for every arm (the incumbent's
 * and the candidates'), in slices no wider than `max_concurrency`, so each comparison is between runs made
 * at the same time under the same load.
 */
import type { BenchmarkRunner, RunRequest } from "../benchmark/types.ts";
import { AbortedError } from "../errors.ts";
import type { GateRunRow } from "../journal/stores.ts";
import { type Decision, type GateRule, type Run, type RunOutcome, runKey } from "./rules/types.ts";

export interface DriveInput<S, T> {
  rule: GateRule<S, T>;
  setup: S;
  /** What the journal holds of this round already, in the order it landed. */
  journaled: readonly RunOutcome[];
  runner: BenchmarkRunner;
  /** The agent file each arm runs (undefined: the experiment's own agent file). */
  agentFileOf: (arm: string) => string | undefined;
  /** Journals runs as they land. */
  record: (rows: GateRunRow[]) => void;
  /** Tasks run at once, all arms together. */
  concurrency: number;
  request: Pick<RunRequest, "runId" | "iteration" | "signal">;
  /** After each batch: the state so far (for progress lines). */
  onBatch?: (state: T) => void;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError("gate aborted", signal.reason);
}

/** The batch's (task, trial) pairs in the order the rule listed them, cut so each slice runs every arm at once. */
export function slices(runs: readonly Run[], concurrency: number): Run[][] {
  const byKey = new Map<string, Run[]>();
  for (const r of runs) {
    const key = `${r.taskId}\u0000${r.trial}`;
    byKey.set(key, [...(byKey.get(key) ?? []), r]);
  }
  const groups = [...byKey.values()];
  const widest = Math.max(1, ...groups.map((g) => g.length));
  const per = Math.max(1, Math.floor(concurrency / widest));
  const out: Run[][] = [];
  for (let i = 0; i < groups.length; i += per) out.push(groups.slice(i, i + per).flat());
  return out;
}

async function runSlice<S, T>(
  input: DriveInput<S, T>,
  slice: readonly Run[],
  landed: Set<string>,
): Promise<RunOutcome[]> {
  const byCall = new Map<string, { arm: string; trial: number; taskIds: string[] }>();
  for (const r of slice) {
    const key = `${r.arm}\u0000${r.trial}`;
    const call = byCall.get(key) ?? { arm: r.arm, trial: r.trial, taskIds: [] };
    call.taskIds.push(r.taskId);
    byCall.set(key, call);
  }
  const out: RunOutcome[] = [];
  const land = (arm: string, taskId: string, trial: number, reward: number | null) => {
    const outcome = { arm, taskId, trial, reward };
    if (landed.has(runKey(outcome))) return;
    landed.add(runKey(outcome));
    input.record([outcome]);
    out.push(outcome);
  };
  await Promise.all(
    [...byCall.values()].map(async (call) => {
      const agentFile = input.agentFileOf(call.arm);
      const summary = await input.runner.run({
        ...input.request,
        split: "test",
        taskIds: call.taskIds,
        trial: call.trial,
        writeTraces: false,
        reuse: true,
        // The rule weighs infrastructure errors itself (its own limit), so the run never fails on them.
        infraErrorShare: 1,
        ...(agentFile === undefined ? {} : { agentFile }),
        onResult: (taskId, trial, reward) => land(call.arm, taskId, trial, reward),
      });
      // Results the runner took from the journal did not land through onResult.
      for (const id of call.taskIds) land(call.arm, id, call.trial, summary.results[id] ?? null);
    }),
  );
  return out;
}

/** Drives the rule to its decision; a resumed round replays `journaled` first and runs only what is missing. */
export async function driveRule<S, T>(input: DriveInput<S, T>): Promise<{ state: T; decision: Decision }> {
  const { rule } = input;
  let state = rule.apply(rule.start(input.setup), input.journaled);
  const landed = new Set(input.journaled.map(runKey));
  for (;;) {
    checkAborted(input.request.signal);
    const action = rule.next(state);
    if (action.kind === "decide") return { state, decision: action.decision };
    if (action.runs.length === 0) throw new Error(`gate rule ${rule.name} asked for an empty batch`);
    for (const slice of slices(action.runs, input.concurrency)) {
      checkAborted(input.request.signal);
      state = rule.apply(state, await runSlice(input, slice, landed));
    }
    input.onBatch?.(state);
  }
}
