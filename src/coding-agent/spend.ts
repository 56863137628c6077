/**
 * The coding agent's money: each call's worst case reserved against budget_usd before it is made (concurrent
 * sessions must not each see the whole budget left), and a warning as the run's spend passes 50% and 80%.
 */
import { budgetExhausted, withinBudget } from "../budget.ts";
import type { Stores } from "../journal/stores.ts";
import { type MessageParams, type PriceOverrides, worstCaseCostUsd } from "../llm/client.ts";

const BUDGET_WARNINGS = [0.5, 0.8];

export class CodingSpend {
  /** Reservations of calls still in flight. */
  private reserved = 0;
  private readonly warned = new Map<string, Set<number>>();

  constructor(
    private readonly o: {
      ledger: Stores["ledger"];
      log: { warn(obj: object, msg: string): void };
      budgetUsd: number | null;
      prices: PriceOverrides | undefined;
    },
  ) {}

  /** Reserves the call's worst case against the budget; returns what to release once it is paid. */
  reserve(runId: string, params: MessageParams): number {
    const { budgetUsd, ledger, prices } = this.o;
    const { model } = params;
    if (budgetUsd === null) return 0;
    const spent = ledger.spend(runId).totalUsd;
    // ~3 characters per token over-estimates the input, so the reservation is an upper bound.
    const estimate = Math.ceil(JSON.stringify(params).length / 3);
    const worst = worstCaseCostUsd(model, estimate, params.max_tokens, prices);
    if (!withinBudget(budgetUsd, spent + this.reserved, worst)) {
      const held = this.reserved > 0 ? `, calls in flight may cost up to $${this.reserved.toFixed(4)}` : "";
      throw budgetExhausted(budgetUsd, spent, `${held} and the next coding call may cost up to $${worst.toFixed(4)}`);
    }
    this.reserved += worst;
    return worst;
  }

  release(held: number): void {
    this.reserved -= held;
  }

  warn(runId: string): void {
    const { budgetUsd, ledger, log } = this.o;
    if (budgetUsd === null) return;
    const spent = ledger.spend(runId).totalUsd;
    const done = this.warned.get(runId) ?? new Set<number>();
    this.warned.set(runId, done);
    for (const share of BUDGET_WARNINGS) {
      if (spent >= share * budgetUsd && !done.has(share)) {
        done.add(share);
        log.warn(
          { spentUsd: spent, budgetUsd },
          `LLM spend passed ${share * 100}% of budget_usd ($${spent.toFixed(4)} of $${budgetUsd})`,
        );
      }
    }
  }
}
