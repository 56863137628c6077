import { describe, expect, it } from "vitest";
import { budgetExhausted, budgetLeft, withinBudget } from "../../../src/budget.ts";

describe("the budget rule", () => {
  it.each([
    [null, 1e9, 1e9, true],
    [5, 0, 0, true],
    [5, 4, 1, true],
    [5, 4, 1.01, false],
    [5, 5, 0, false],
    [5, 6, 0, false],
  ])("limit %j, spent %j, next call up to %j: may start %j", (limit, spent, next, expected) => {
    expect(withinBudget(limit, spent, next)).toBe(expected);
  });

  it("says what is left and why it stopped", () => {
    expect(budgetLeft(null, 3)).toBeNull();
    expect(budgetLeft(5, 3)).toBe(2);
    const error = budgetExhausted(5, 5.123456, " and more");
    expect(error.code).toBe("BUDGET_EXHAUSTED");
    expect(error.message).toBe("budget_usd 5 reached: $5.1235 spent and more; raise budget_usd to continue");
  });
});
