import { describe, expect, it } from "vitest";
import { acceptanceReason, holdoutSummary, holdoutVerdict, tasksToTell } from "../../../src/verdicts.ts";

describe("the sealed holdout's verdict, from its interval and the gain the night claims", () => {
  it.each([
    [{ diff: 0.15, low: 0.02, high: 0.28 }, 0.1, "improved"],
    [{ diff: -0.2, low: -0.35, high: -0.05 }, 0.1, "worse"],
    // Across zero, and wide enough to hold the claimed +0.25: it cannot tell a false gain from a real one.
    [{ diff: 0.05, low: -0.17, high: 0.27 }, 0.25, "too small to tell"],
    // Across zero, but narrow enough to rule the claimed gain out.
    [{ diff: 0.01, low: -0.03, high: 0.05 }, 0.25, "no detectable change"],
    // Nothing claimed (no acceptance): an interval across zero found nothing.
    [{ diff: 0, low: -0.3, high: 0.3 }, 0, "no detectable change"],
    [{ diff: 0, low: -0.3, high: 0.3 }, null, "no detectable change"],
  ] as const)("%o with a claimed gain of %s: %s", (interval, claimed, verdict) => {
    expect(holdoutVerdict(interval, claimed)).toBe(verdict);
  });

  it("says how many sealed tasks would tell the claimed gain from none", () => {
    const h = { tasks: 20, baseline: 0.45, final: 0.5, diff: 0.05, low: -0.17, high: 0.27 };
    // Half-width 0.22 against a claimed 0.11: four times the tasks.
    expect(tasksToTell(h, 0.11)).toBe(80);
    expect(tasksToTell(h, 0)).toBeNull();
    const s = holdoutSummary(h, { claimedGain: 0.11, sealedTasks: 20 });
    expect(s.verdict).toBe("too small to tell");
    expect(s.line).toBe(
      "too small to tell: 0.4500 → 0.5000 (+0.0500, 95% interval -0.1700 to +0.2700) on 20 sealed task(s) no gate ever saw; " +
        "the interval spans the night's claimed +0.1100: about 80 sealed tasks (or 4 trials each) would tell a gain that size from none",
    );
  });

  it("without a score: how many tasks wait sealed, or that none were sealed", () => {
    expect(holdoutSummary(null, { claimedGain: 0.1, sealedTasks: 12 })).toEqual({
      verdict: null,
      scored: false,
      line: "12 task(s) sealed away; scored once, at the end of the run",
    });
    expect(holdoutSummary(null, { claimedGain: 0.1, sealedTasks: 0 }).line).toMatch(/^none sealed/);
  });
});

describe("an acceptance's reason, in one line", () => {
  const gate = { valScore: 0.72, suitePassed: 5, suiteTotal: 5 };
  it.each([
    [gate, 0.6, "val_score 0.7200 (best before 0.6000), suite 5/5 passed"],
    [
      { ...gate, pGood: 0.9371, testRuns: 23, stage: "extra" },
      0.6,
      "P(improvement) 0.937 with 23 held-out run(s), val_score 0.7200 (best before 0.6000), suite 5/5 passed",
    ],
    // Accepted at an unchanged val_score: the line says what the decision rested on.
    [
      { ...gate, valScore: 0.5, pGood: 0.93, testRuns: 30, stage: "extra" },
      0.5,
      "P(improvement) 0.930 with 30 held-out run(s), val_score 0.5000 (best before 0.5000), suite 5/5 passed; " +
        "val_score not above the best: accepted on the per-task paired evidence after the paired re-runs",
    ],
    // A gate that records the paired improvement and why its candidate won: both are said.
    [
      {
        ...gate,
        improvement: { diff: 0.08, low: 0.01, high: 0.15 },
        why: "won the race:\n2 of 3 candidates stopped early",
      },
      0.6,
      "val_score 0.7200 (best before 0.6000), improvement +0.0800, 95% interval +0.0100 to +0.1500, suite 5/5 passed; won the race: 2 of 3 candidates stopped early",
    ],
  ])("%o", (g, best, line) => {
    expect(acceptanceReason(g, best)).toBe(line);
  });
});
