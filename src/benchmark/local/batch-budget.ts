/**
 * A batch's money as the pool sees it: the spend metered from its tasks' replies against what the run had left
 * when the batch started, and the stop a call the gateway found no room for asks for.
 */
import { withinBudget } from "../../budget.ts";
import { HarnessError } from "../../errors.ts";

export class BatchBudget {
  private spent = 0;
  /** Set once a call found no room in the run's budget: no task starts after it; those in flight finish. */
  stop: HarnessError | null = null;

  constructor(private readonly leftUsd: number | null) {}

  add(usd: number): void {
    this.spent += usd;
  }

  refused(reason: string): void {
    this.stop ??= new HarnessError("BUDGET_EXHAUSTED", reason);
  }

  /** Why no task may start now, or null. */
  refusal(): HarnessError | null {
    if (withinBudget(this.leftUsd, this.spent)) return null;
    return new HarnessError(
      "BUDGET_EXHAUSTED",
      `budget reached: $${this.spent.toFixed(4)} spent by the agent under test, $${this.leftUsd?.toFixed(4)} was left`,
    );
  }
}
