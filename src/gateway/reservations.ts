/**
 * A run's money as the gateway sees it: what was spent, plus what calls in flight may still cost. A call
 * starts only if its worst case fits beside every other call in flight, so concurrent calls cannot together
 * overrun budget_usd; only a reply costlier than its reservation (more input tokens than estimated) can,
 * and by at most that one call.
 */
import { withinBudget } from "../budget.ts";
import type { CallBudget } from "./gateway.ts";

export interface RunBudget extends CallBudget {
  /** Metered spend settled so far. */
  spent(): number;
  /** Worst-case cost of the calls in flight. */
  reserved(): number;
}

export function createRunBudget(limitUsd: number | null, spentUsd = 0): RunBudget {
  let spent = spentUsd;
  let reserved = 0;
  return {
    reserve(usd) {
      if (!withinBudget(limitUsd, spent + reserved, usd)) return false;
      reserved += usd;
      return true;
    },
    settle(reservedUsd, paidUsd) {
      reserved = Math.max(0, reserved - reservedUsd);
      spent += paidUsd;
    },
    spent: () => spent,
    reserved: () => reserved,
  };
}
