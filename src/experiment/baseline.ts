import type { BenchmarkRunner, Progress, Reward } from "../benchmark/types.ts";
import { fitFromJournal, pinRewardModel } from "../gate/reward-pin.ts";
import { type HoldoutPlan, proposeHoldoutSize } from "../gate/rules/holdout-size.ts";
import type { RewardModel } from "../gate/rules/reward-model.ts";
import type { Stores } from "../journal/stores.ts";
import { meanReward } from "../scoring.ts";
import { appendResult, LOOP_ITERATION_COLUMN } from "../workspace/files.ts";

/**
 * The baseline, iteration 0, shared by prepare and rebaseline: every given task run the private way (no
 * traces), then pinned in the journal and written as results.tsv's first row with what it cost.
 */

export interface MeasuredBaseline {
  results: Record<string, Reward>;
  agentHash: string;
  /** Spend outside runs before the baseline, so its own cost can be told. */
  spentBefore: number;
}

export async function measureBaseline(opts: {
  runner: BenchmarkRunner;
  journal: Pick<Stores, "ledger">;
  taskIds: string[];
  trials: number;
  /** false: run every task afresh, ignoring journaled results. */
  reuse?: boolean;
  onProgress?: (progress: Progress) => void;
}): Promise<MeasuredBaseline> {
  const spentBefore = opts.journal.ledger.spendOutsideRuns();
  const baseline = await opts.runner.run({
    split: "test",
    taskIds: opts.taskIds,
    runId: null,
    writeTraces: false,
    ...(opts.reuse === undefined ? {} : { reuse: opts.reuse }),
    trials: opts.trials,
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  return { results: baseline.results, agentHash: baseline.agentHash, spentBefore };
}

export interface RecordedBaseline {
  valScore: number | null;
  trainScore: number | null;
  /** What the baseline cost, in USD. */
  spend: number;
}

/** Pins the baseline's val_score on the split's test tasks and appends iteration 0 to results.tsv. */
export function recordBaseline(opts: {
  journal: Pick<Stores, "ledger" | "pins">;
  results: string;
  split: { train: string[]; test: string[] };
  baseline: MeasuredBaseline;
  evalsTotal: number;
  now: Date;
}): RecordedBaseline {
  const { journal, baseline } = opts;
  const on = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, baseline.results[id] ?? null]));
  const valScore = meanReward(on(opts.split.test));
  journal.pins.pin("baseline", JSON.stringify({ valScore, agentHash: baseline.agentHash }));
  appendResult(opts.results, {
    valScore: valScore ?? 0,
    commit: "baseline",
    evalsPassed: 0,
    evalsTotal: opts.evalsTotal,
    timestamp: opts.now.toISOString(),
    extra: { [LOOP_ITERATION_COLUMN]: "0" },
  });
  const spend = journal.ledger.spendOutsideRuns() - baseline.spentBefore;
  journal.pins.putFact("baseline_spend_usd", spend);
  return { valScore, trainScore: meanReward(on(opts.split.train)), spend };
}

/** The smallest gain of the mean a proposed sealed holdout should be able to tell from no change. */
export const HOLDOUT_GAIN = 0.05;

/**
 * The benchmark's reward model, fitted and pinned: the train split runs a second time (the baseline ran it
 * once), so that the noise of one run of a task can be measured; with it, the holdout size that would tell
 * a +0.05 gain. Prepare and rebaseline both call it after the baseline.
 */
export async function fitRewards(opts: {
  runner: BenchmarkRunner;
  journal: Pick<Stores, "taskResults" | "pins">;
  baseline: MeasuredBaseline;
  trainIds: string[];
  /** Trials the baseline ran (the second run takes the next trial number). */
  trials: number;
  reuse?: boolean;
}): Promise<{ model: RewardModel; holdout: HoldoutPlan }> {
  if (opts.trainIds.length > 0) {
    await opts.runner.run({
      split: "test",
      taskIds: opts.trainIds,
      runId: null,
      writeTraces: false,
      trial: opts.trials,
      ...(opts.reuse === undefined ? {} : { reuse: opts.reuse }),
    });
  }
  const model = fitFromJournal(opts.journal.taskResults, opts.baseline.agentHash);
  pinRewardModel(opts.journal.pins, model);
  // Each task's rate as the model believes it (a run or two of 0 and 1 say little of a rate on their own).
  const byTask = new Map<string, number[]>();
  for (const r of opts.journal.taskResults.taskResults(opts.baseline.agentHash, "test"))
    if (r.reward !== null) byTask.set(r.taskId, [...(byTask.get(r.taskId) ?? []), r.reward]);
  const w = 1 / model.dispersion;
  const taskMeans = [...byTask.values()].map(
    (xs) => (model.prior.a + w * xs.reduce((a, b) => a + b, 0)) / (model.prior.a + model.prior.b + w * xs.length),
  );
  return { model, holdout: proposeHoldoutSize({ model, taskMeans, gain: HOLDOUT_GAIN, trials: opts.trials }) };
}
