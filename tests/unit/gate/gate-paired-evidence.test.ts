import { describe, expect, it } from "vitest";
import {
  belief,
  breakScale,
  type Sums,
  shapePrior,
  summarize,
  type TaskEvidence,
  taskEvidence,
} from "../../../src/gate/rules/evidence.ts";
import { DEFAULT_PAIRED } from "../../../src/gate/rules/paired.ts";
import type { RewardModel } from "../../../src/gate/rules/reward-model.ts";

/** The prior a mostly failing binary benchmark fits at prepare (mean pass rate about 0.2). */
const FAILING: RewardModel = {
  kind: "binary",
  levels: [],
  dispersion: 1,
  prior: { a: 0.26, b: 0.93 },
  basis: { tasks: 200, runs: 300, repeatedTasks: 100 },
};
const KEEP = { weight: 1, shift: 0 };
const sums = (xs: number[]): Sums => ({ s: xs.reduce((a, b) => a + b, 0), f: xs.reduce((a, b) => a + 1 - b, 0) });

/** One held-out task: its history run, the incumbent's fresh runs and the candidate's, paired. */
type Task = [history: number[], incumbent: number[], candidate: number[]];

function evidenceOf(rows: Task[]): TaskEvidence[] {
  return rows.map(([h, x, c]) =>
    taskEvidence(FAILING, belief(FAILING, sums(h), KEEP, sums(x)), sums(c), DEFAULT_PAIRED),
  );
}

/** 100 tasks: `fixes` clear fixes, `breaks` breaks of the tasks that pass, and the noise of unchanged tasks. */
function failingMix(fixes: number, breaks: number): Task[] {
  const rows: Task[] = [];
  const add = (k: number, t: Task) => {
    for (let i = 0; i < k; i++) rows.push(t);
  };
  add(fixes, [[0], [0, 0, 0, 0], [1, 1, 1, 1]]);
  // Most breaks show (the incumbent passed in the batch); the rest hide behind an incumbent fail.
  add(Math.ceil((breaks * 7) / 12), [[1], [1, 1], [0, 0]]);
  add(Math.floor((breaks * 5) / 12), [[1], [0], [0]]);
  // Unchanged tasks: a few pairs disagree by chance, either way.
  add(4, [[0], [0], [1]]);
  add(2, [[0], [1], [0]]);
  add(100 - rows.length, [[0], [0], [0]]);
  return rows;
}

describe("the paired rule's evidence on a mostly failing mix", () => {
  it("a net-negative trade (6 fixes, 12 breaks of the tasks that pass) stays under the guard", () => {
    // The truth here is about −2 points: fixes lift 0.1 → 0.95, breaks drop 0.6 → 0.05.
    const { summary } = summarize(evidenceOf(failingMix(6, 12)), 100, DEFAULT_PAIRED);
    expect(summary.pImproved).toBeLessThan(DEFAULT_PAIRED.guard);
    expect(summary.pImproved).toBeLessThan(0.75);
  });

  it("the same fixes without the breaks still clear the guard, and more fixes clear it despite them", () => {
    expect(summarize(evidenceOf(failingMix(6, 0)), 100, DEFAULT_PAIRED).summary.pImproved).toBeGreaterThan(
      DEFAULT_PAIRED.guard,
    );
    // 10 fixes against the same 12 breaks is a real gain (about +1.9 points).
    expect(summarize(evidenceOf(failingMix(10, 12)), 100, DEFAULT_PAIRED).summary.pImproved).toBeGreaterThan(
      DEFAULT_PAIRED.guard,
    );
  });

  it("a priori an edit that changes anything is as likely to lower the mean as to raise it", () => {
    for (const rows of [failingMix(0, 0), failingMix(6, 12)]) {
      const evidence = evidenceOf(rows);
      const scale = breakScale(evidence);
      const prior = shapePrior(evidence, DEFAULT_PAIRED, scale);
      expect(prior.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      let expected = 0;
      DEFAULT_PAIRED.shapes.forEach((shape, j) => {
        for (const e of evidence) {
          const room = e.fixable ? shape.fix * (1 - e.mu) : 0;
          const loss = e.breakable ? shape.break * scale * e.mu * e.mu : 0;
          expected += prior[j]! * (room - loss);
        }
      });
      expect(Math.abs(expected)).toBeLessThan(1e-6);
      // The tilt is the least change from equal weights: every shape keeps some prior.
      for (const w of prior) expect(w).toBeGreaterThan(0);
    }
  });

  it("a break is placed where the incumbent passes: a task it always fails cannot hide one", () => {
    // In the trade above: task 6 is a break the batch shows, task 99 an unchanged task that failed throughout.
    const { perTask } = summarize(evidenceOf(failingMix(6, 12)), 100, DEFAULT_PAIRED);
    expect(perTask[6]!.rBreak).toBeGreaterThan(0.9);
    expect(perTask[99]!.rBreak).toBeLessThan(perTask[6]!.rBreak / 5);
  });
});
