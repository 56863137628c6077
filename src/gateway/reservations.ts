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

/**
 * `spentUsd` is either what was spent before (settled calls are added to it), or where the spend is read
 * from each time: the journal's ledger, which every paid call reaches before its reservation is settled,
 * so the coding agent's spend and other batches' count too and a settled call is not counted twice.
 */
export function createRunBudget(limitUsd: number | null, spentUsd: number | (() => number) = 0): RunBudget {
  const read = typeof spentUsd === "function" ? spentUsd : null;
  let spent = typeof spentUsd === "number" ? spentUsd : 0;
  let reserved = 0;
  const spentNow = () => (read ? read() : spent);
  return {
    reserve(usd) {
      if (!withinBudget(limitUsd, spentNow() + reserved, usd)) return false;
      reserved += usd;
      return true;
    },
    settle(reservedUsd, paidUsd) {
      reserved = Math.max(0, reserved - reservedUsd);
      if (!read) spent += paidUsd;
    },
    spent: spentNow,
    reserved: () => reserved,
  };
}
