/**
 * The drift check, pure: the incumbent's fresh runs against what its history predicts for them. When the
 * world has moved (a baseline measured in a degraded hour, a provider that got better), the history stops
 * describing the incumbent; the check says how much of it to keep. History only ever shapes the bets and
 * the beliefs, so a missed drift costs power, not validity.
 */
import { belief, mean, type Sums } from "./evidence.ts";
import type { RewardModel } from "./reward-model.ts";

export interface DriftParams {
  /** |z| up to `keepBelow`: keep the history whole; from `dropAbove`: drop it; in between, linearly less. */
  keepBelow: number;
  dropAbove: number;
}

export interface Drift {
  /** Tasks compared, the mean of (fresh − predicted), and its z score. */
  tasks: number;
  shift: number;
  z: number;
  /** Weight the history keeps (1: all, 0: none). */
  weight: number;
  /** Sums behind z, so that checks on two splits can be pooled. */
  num: number;
  den: number;
  /** The fresh runs' sum and count: where the world is now, for the prior when the history is dropped. */
  freshSum: number;
  freshCount: number;
  /** The fresh runs compared with a history: their sum and count. */
  comparedSum: number;
  compared: number;
}

export const NO_DRIFT: Drift = {
  tasks: 0,
  shift: 0,
  z: 0,
  weight: 1,
  num: 0,
  den: 0,
  freshSum: 0,
  freshCount: 0,
  comparedSum: 0,
  compared: 0,
};

const logit = (x: number): number => Math.log(x / (1 - x));
const clamp = (x: number): number => Math.min(0.98, Math.max(0.02, x));

/** How far the world moved, on the logit scale: the fresh runs' mean against what the history predicted. */
export function logitShift(d: Drift): number {
  if (d.compared === 0) return 0;
  const now = d.comparedSum / d.compared;
  const predicted = (d.comparedSum - d.num) / d.compared;
  return logit(clamp(now)) - logit(clamp(predicted));
}

export function driftWeight(z: number, p: DriftParams): number {
  return Math.min(1, Math.max(0, (p.dropAbove - Math.abs(z)) / (p.dropAbove - p.keepBelow)));
}

export function driftCheck(
  model: RewardModel,
  history: Record<string, Sums>,
  fresh: Record<string, number | null | readonly (number | null)[]>,
  p: DriftParams,
): Drift {
  let num = 0;
  let den = 0;
  let tasks = 0;
  let freshSum = 0;
  let freshCount = 0;
  let comparedSum = 0;
  let compared = 0;
  for (const [id, value] of Object.entries(fresh)) {
    const xs = (Array.isArray(value) ? value : [value]).filter((x): x is number => typeof x === "number");
    for (const x of xs) freshSum += x;
    freshCount += xs.length;
    const h = history[id];
    if (!h || h.s + h.f <= 0) continue;
    const prior = belief(model, h, { weight: 1, shift: 0 });
    const mu = mean(prior);
    const predictive = model.dispersion * mu * (1 - mu) + (mu * (1 - mu)) / (prior.a + prior.b + 1);
    for (const x of xs) {
      num += x - mu;
      den += predictive;
      comparedSum += x;
      compared += 1;
    }
    if (xs.length > 0) tasks += 1;
  }
  return pooled(
    { tasks, shift: 0, z: 0, weight: 1, num, den, freshSum, freshCount, comparedSum, compared },
    NO_DRIFT,
    p,
  );
}

/** Two checks as one (the train split's free runs and the held-out split's first pairs). */
export function pooled(a: Drift, b: Drift, p: DriftParams): Drift {
  const num = a.num + b.num;
  const den = a.den + b.den;
  const tasks = a.tasks + b.tasks;
  const z = den > 0 ? num / Math.sqrt(den) : 0;
  const freshSum = a.freshSum + b.freshSum;
  const freshCount = a.freshCount + b.freshCount;
  const comparedSum = a.comparedSum + b.comparedSum;
  const compared = a.compared + b.compared;
  const shift = compared > 0 ? num / compared : 0;
  const weight = driftWeight(z, p);
  return { tasks, shift, z, weight, num, den, freshSum, freshCount, comparedSum, compared };
}

/**
 * The model with its prior moved as far toward the fresh runs' mean as the history is dropped: a prior
 * fitted to a degraded baseline is as stale as the history itself.
 */
export function recentered(model: RewardModel, drift: Drift): RewardModel {
  if (drift.weight >= 1 || drift.freshCount === 0) return model;
  const strength = model.prior.a + model.prior.b;
  const now = Math.min(0.99, Math.max(0.01, drift.freshSum / drift.freshCount));
  const m = drift.weight * (model.prior.a / strength) + (1 - drift.weight) * now;
  return { ...model, prior: { a: m * strength, b: (1 - m) * strength } };
}
