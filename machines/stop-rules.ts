import { withinBudget } from "../src/budget.ts";
import type { Observation } from "../src/contracts.ts";

export interface Limits {
  patience: number;
  maxIterations: number | null;
  budgetUsd: number | null;
  /** Epoch milliseconds, or null. */
  deadline: number | null;
}

export interface Progress {
  /** Iterations finished in this run. */
  finished: number;
  /** Consecutive finished iterations without a new best val_score. */
  flat: number;
}

/** What differs between two sets of limits, as "name before -> after" lines. */
export function limitChanges(before: Limits, after: Limits): string[] {
  return (Object.keys(after) as (keyof Limits)[])
    .filter((k) => before[k] !== after[k])
    .map((k) => `${k} ${before[k]} -> ${after[k]}`);
}

/** Pure: why the run should stop now, or null to go on. Checked before every iteration. */
export function stopReason(limits: Limits, progress: Progress, seen: Observation): string | null {
  if (seen.stopRequested) return "operator requested stop";
  if (limits.budgetUsd !== null && !withinBudget(limits.budgetUsd, seen.spentUsd)) {
    return `budget reached: $${seen.spentUsd.toFixed(2)} of $${limits.budgetUsd.toFixed(2)}`;
  }
  if (limits.deadline !== null && seen.now >= limits.deadline) {
    return `deadline reached: ${new Date(limits.deadline).toISOString()}`;
  }
  if (limits.maxIterations !== null && progress.finished >= limits.maxIterations) {
    return `max_iterations reached: ${progress.finished}`;
  }
  if (progress.flat >= limits.patience) {
    return `patience exhausted: ${progress.flat} iterations without a new best val_score`;
  }
  return null;
}
