import { HarnessError } from "./errors.ts";

/**
 * The one money rule: budget_usd covers every LLM call of a run, the coding agent's and the agent's under
 * test alike. A call may start only while something is left and its worst-case cost fits in what is left.
 */
export function withinBudget(limitUsd: number | null, spentUsd: number, nextCostUsd = 0): boolean {
  return limitUsd === null || (spentUsd < limitUsd && spentUsd + nextCostUsd <= limitUsd);
}

/** Dollars left; null when there is no limit. */
export function budgetLeft(limitUsd: number | null, spentUsd: number): number | null {
  return limitUsd === null ? null : limitUsd - spentUsd;
}

/** The stop rule's error: the loop ends cleanly with its closing summary. */
export function budgetExhausted(limitUsd: number | null, spentUsd: number, detail = ""): HarnessError {
  return new HarnessError(
    "BUDGET_EXHAUSTED",
    `budget_usd ${limitUsd} reached: $${spentUsd.toFixed(4)} spent${detail}; raise budget_usd to continue`,
  );
}
