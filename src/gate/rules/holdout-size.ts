/**
 * The sealed holdout's size and verdict, pure. The holdout compares the final agent with the baseline on
 * tasks no gate saw, paired by task; its interval is as wide as the tasks' noise makes it. `prepare` can
 * propose a size that could tell a given gain; the verdict says when the interval cannot tell the night's
 * claimed gain from nothing, and how many tasks would.
 */
import { normalCdf } from "./evidence.ts";
import type { RewardModel } from "./reward-model.ts";

/** z of a two-sided 95% interval and of 80% power. */
const Z95 = 1.96;
const Z80 = 0.8416;

export interface HoldoutPlanInput {
  model: RewardModel;
  /** The baseline's mean reward per task (all tasks of the benchmark): how noisy a run of one is. */
  taskMeans: readonly number[];
  /** The smallest improvement of the mean worth telling (e.g. 0.05). */
  gain: number;
  /** Runs of the final agent per holdout task (the baseline's come from prepare: one each). */
  trials: number;
}

export interface HoldoutPlan {
  /** Holdout tasks that tell `gain` from no change with 80% power at 95%. */
  tasks: number;
  /** The sd of one task's paired difference this rests on. */
  perTaskSd: number;
}

/**
 * Variance of one task's paired difference: the final agent's mean over `trials` runs, the baseline's one
 * run, and the spread of the true change itself (a gain made of fixes lands on few tasks).
 */
function pairVariance(input: HoldoutPlanInput, trials: number): number {
  const ms = input.taskMeans.length > 0 ? input.taskMeans : [0.5];
  const within = ms.reduce((a, m) => a + input.model.dispersion * m * (1 - m), 0) / ms.length;
  const change = Math.abs(input.gain) * 0.5;
  return within / Math.max(1, trials) + within + change;
}

export function proposeHoldoutSize(input: HoldoutPlanInput): HoldoutPlan {
  const v = pairVariance(input, input.trials);
  const g = Math.max(1e-3, Math.abs(input.gain));
  return { tasks: Math.ceil(((Z95 + Z80) ** 2 * v) / (g * g)), perTaskSd: Math.sqrt(v) };
}

export type HoldoutVerdictKind = "improved" | "worse" | "no detectable change" | "too small to tell";

export interface HoldoutVerdict {
  verdict: HoldoutVerdictKind;
  /** For "too small to tell": holdout tasks whose interval would be half as wide as the claimed gain. */
  tasksToTell: number | null;
  /** Probability, under the interval's normal approximation, that the final agent is no better than the baseline. */
  pNoBetter: number;
}

/**
 * The verdict on a paired holdout result (mean difference with its 95% interval over `tasks`), against the
 * gain the night claims (its recorded best val_score minus the baseline's).
 */
export function holdoutVerdict(
  h: { diff: number; low: number; high: number; tasks: number },
  claimedGain: number | null,
): HoldoutVerdict {
  const half = (h.high - h.low) / 2;
  const se = half / Z95;
  const pNoBetter = se > 0 ? normalCdf(-h.diff / se) : h.diff > 0 ? 0 : 1;
  if (h.low > 0) return { verdict: "improved", tasksToTell: null, pNoBetter };
  if (h.high < 0) return { verdict: "worse", tasksToTell: null, pNoBetter };
  const claim = claimedGain !== null && claimedGain > 0 ? claimedGain : null;
  if (claim !== null && h.high < claim) return { verdict: "no detectable change", tasksToTell: null, pNoBetter };
  // The interval spans both nothing and the claim: more tasks, until it is half as wide as the claim.
  const target = (claim ?? Math.max(half, 1e-3)) / 2;
  const tasksToTell = half > 0 ? Math.ceil(h.tasks * (half / target) ** 2) : null;
  return { verdict: "too small to tell", tasksToTell, pNoBetter };
}
