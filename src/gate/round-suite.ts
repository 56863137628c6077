/**
 * The regression suite after a round's rule has picked a winner, flake-aware: members the winner fails are
 * re-run on the incumbent first; then train tasks the incumbent failed and the winner passed join by k of n
 * runs, never one the winner passes by memorising it (a table of train ids, a copied input).
 */
import type { BenchmarkRunner, RunRequest } from "../benchmark/types.ts";
import { AbortedError } from "../errors.ts";
import type { Stores } from "../journal/stores.ts";
import { passes } from "../scoring.ts";
import type { SplitFile, Suite } from "../workspace/files.ts";
import { type FlakySuiteVerdict, flakySuiteVerdict, JOIN_RUNS, nextSuite } from "./suite.ts";

/** The incumbent's re-runs of suite members use trials from here on, unique per iteration. */
const SUITE_TRIALS = 5_000;

export interface SuiteOutcome {
  verdict: FlakySuiteVerdict | null;
  suite: Suite;
  promoted: string[];
  passed: boolean;
}

export async function suiteAfterRound(o: {
  runner: BenchmarkRunner;
  taskResults: Pick<Stores["taskResults"], "taskResults">;
  suite: Suite;
  threshold: number;
  split: SplitFile;
  iteration: number;
  /** The winner's train results (null: no winner); its agent file (undefined: the experiment's own). */
  winner: { train: Record<string, number | null>; agentFile: string | undefined; memorised: readonly string[] } | null;
  incumbent: { file: string; hash: string };
  request: Pick<RunRequest, "runId" | "iteration" | "signal">;
}): Promise<SuiteOutcome> {
  const { runner, suite, winner } = o;
  const common = { ...o.request, writeTraces: false, reuse: true } satisfies Partial<RunRequest>;
  const train = winner?.train ?? {};
  const failing = suite.tasks.filter(
    (id) => !(suite.quarantined ?? []).includes(id) && train[id] !== null && !passes(train[id]),
  );
  let incumbentRerun: Record<string, number | null> = {};
  if (winner && failing.length > 0) {
    const rerun = await runner.run({
      ...common,
      split: "train",
      taskIds: failing,
      trial: SUITE_TRIALS + o.iteration,
      agentFile: o.incumbent.file,
    });
    incumbentRerun = rerun.results;
  }
  const verdict = winner && suite.tasks.length > 0 ? flakySuiteVerdict(suite, train, incumbentRerun) : null;
  const passed = winner !== null && (verdict?.passed ?? true);

  const promotionRuns: Record<string, (number | null)[]> = {};
  if (passed && winner) {
    const incFailed = new Set(
      o.taskResults
        .taskResults(o.incumbent.hash, "train")
        .filter((r) => r.reward !== null && !passes(r.reward))
        .map((r) => r.taskId),
    );
    const memorised = new Set(winner.memorised);
    const candidates = o.split.train.filter(
      (id) => incFailed.has(id) && passes(train[id]) && !suite.tasks.includes(id) && !memorised.has(id),
    );
    for (const id of candidates) promotionRuns[id] = [train[id] ?? null];
    for (let t = 1; t < JOIN_RUNS && candidates.length > 0; t++) {
      if (o.request.signal?.aborted) throw new AbortedError("gate aborted", o.request.signal.reason);
      const run = await runner.run({
        ...common,
        split: "train",
        taskIds: candidates,
        trial: t,
        ...(winner.agentFile === undefined ? {} : { agentFile: winner.agentFile }),
      });
      for (const id of candidates) promotionRuns[id]!.push(run.results[id] ?? null);
    }
  }
  const next = nextSuite(suite, o.threshold, verdict, passed ? { results: train, promotionRuns } : null);
  return { verdict, suite: next, promoted: next.tasks.filter((id) => !suite.tasks.includes(id)), passed };
}

/** The suite's reason for refusing a winner, or null. */
export function flakySuiteReason(v: FlakySuiteVerdict | null): string | null {
  if (!v || v.passed) return null;
  return `regression suite: ${v.failed.length} of ${v.total} member(s) failed, more than the ${v.allowedFailures} the incumbent's own rates allow`;
}
