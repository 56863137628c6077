/**
 * The sealed holdout: tasks no gate ever ran, scored once at the end of a run for the baseline and the
 * final agent, paired by task, with an interval. The one number of the night that no accept/reject
 * decision has seen. Only scores leave this module: the journal keeps the result under `holdout:<run>`.
 */
import type { BenchmarkRunner } from "../benchmark/types.ts";
import { pinnedBaseline } from "../journal/pins.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import type { SplitFile } from "../workspace/files.ts";
import { type HoldoutVerdict, holdoutVerdict } from "./rules/holdout-size.ts";

export interface HoldoutResult {
  runId: string;
  tasks: number;
  baseline: number;
  final: number;
  /** Mean paired difference (final − baseline) and its 95% interval. */
  diff: number;
  low: number;
  high: number;
  /** Whether the interval can tell the gain the night claims (its best val_score over the baseline's). */
  verdict?: HoldoutVerdict & { claimedGain: number | null };
}

/**
 * Pure: paired mean difference over the tasks the baseline scored, with a normal 95% interval. A final
 * agent's null weighs as a fail, as the gate weighs it: dropping the pair let a final agent hide the tasks
 * it broke by turning them into nulls (an honest −0.33 read +0.00).
 */
export function pairedHoldout(
  runId: string,
  baseline: Record<string, number | null>,
  final: Record<string, number | null>,
): HoldoutResult | null {
  const pairs: [number, number][] = [];
  for (const [id, b] of Object.entries(baseline)) {
    if (b !== null && b !== undefined) pairs.push([b, final[id] ?? 0]);
  }
  const n = pairs.length;
  if (n === 0) return null;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const d = pairs.map(([b, f]) => f - b);
  const diff = mean(d);
  const sd = n > 1 ? Math.sqrt(d.reduce((s, x) => s + (x - diff) ** 2, 0) / (n - 1)) : 0;
  const half = 1.96 * (sd / Math.sqrt(n));
  return {
    runId,
    tasks: n,
    baseline: mean(pairs.map(([b]) => b)),
    final: mean(pairs.map(([, f]) => f)),
    diff,
    low: diff - half,
    high: diff + half,
  };
}

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;

function verdictWords(v: NonNullable<HoldoutResult["verdict"]>): string {
  const claim = v.claimedGain === null ? "" : ` against the ${signed(v.claimedGain)} the gate's scores claim`;
  if (v.verdict === "too small to tell")
    return `too small to tell${claim}${v.tasksToTell === null ? "" : ` (about ${v.tasksToTell} sealed tasks would tell)`}`;
  return `${v.verdict}${claim}`;
}

export function holdoutLine(h: HoldoutResult): string {
  const verdict = h.verdict ? `; ${verdictWords(h.verdict)}` : "";
  return `${h.baseline.toFixed(4)} → ${h.final.toFixed(4)} (${signed(h.diff)}, 95% interval ${signed(h.low)} to ${signed(h.high)}) on ${h.tasks} sealed task(s) no gate ever saw${verdict}`;
}

export function holdoutOf({ pins }: Pick<Stores, "pins">, runId: string): HoldoutResult | null {
  const pin = pins.pinned(`holdout:${runId}`);
  return pin ? (JSON.parse(pin.content) as HoldoutResult) : null;
}

/**
 * Scores the holdout once per run (idempotent: a second call returns the journaled result): the baseline's
 * results come from the prepare run, the final agent (the workspace's agent file) runs now.
 */
export async function scoreHoldout(o: {
  journal: Pick<Stores, "pins" | "taskResults">;
  runner: BenchmarkRunner;
  runId: string;
  split: SplitFile;
  trials: number;
  log: Logger;
  signal?: AbortSignal;
  /** The night's claimed gain (best val_score − the baseline's), for the verdict; null: none claimed. */
  claimedGain?: number | null;
}): Promise<HoldoutResult | null> {
  const done = holdoutOf(o.journal, o.runId);
  if (done) return done;
  const ids = o.split.holdout;
  if (ids.length === 0) return null;
  const agentHash = pinnedBaseline(o.journal.pins)?.agentHash;
  if (!agentHash) return null;
  const baseline: Record<string, number | null> = {};
  const rows = o.journal.taskResults
    .taskResults(agentHash, "test")
    .filter((r) => ids.includes(r.taskId) && r.reward !== null);
  for (const id of ids) {
    const mine = rows.filter((r) => r.taskId === id).map((r) => r.reward as number);
    baseline[id] = mine.length ? mine.reduce((a, b) => a + b, 0) / mine.length : null;
  }
  const run = await o.runner.run({
    split: "test",
    taskIds: ids,
    runId: o.runId,
    writeTraces: false,
    trials: o.trials,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const paired = pairedHoldout(o.runId, baseline, run.results);
  if (!paired) return null;
  const claimedGain = o.claimedGain ?? null;
  const result: HoldoutResult = { ...paired, verdict: { ...holdoutVerdict(paired, claimedGain), claimedGain } };
  o.journal.pins.pin(`holdout:${o.runId}`, JSON.stringify(result));
  o.log.info({ holdout: result }, `sealed holdout: ${holdoutLine(result)}`);
  return result;
}
