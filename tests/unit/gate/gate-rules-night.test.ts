import { describe, expect, it } from "vitest";
import { prng } from "../../../src/benchmark/split.ts";
import { bayesRule } from "../../../src/gate/rules/bayes.ts";
import { type GateSetup, runGateSync } from "../../../src/gate/rules/bayes-core.ts";
import { DEFAULT_BAYES } from "../../../src/gate/rules/bayes-stats.ts";
import {
  bankRounds,
  DEFAULT_NIGHT_BUDGET,
  type NightPlan,
  OPEN_NIGHT_ROUNDS,
  roundAlpha,
  runAllowance,
} from "../../../src/gate/rules/budget.ts";
import { holdoutVerdict, proposeHoldoutSize } from "../../../src/gate/rules/holdout-size.ts";
import { originalRule } from "../../../src/gate/rules/original.ts";
import { describeRewardModel, fitRewardModel } from "../../../src/gate/rules/reward-model.ts";
import { driveSync, INCUMBENT } from "../../../src/gate/rules/types.ts";
import { ids } from "../../helpers/paired-world.ts";

describe("the night's budget", () => {
  it("never spends more than the night's budget, over any number of rounds, candidates and limits", () => {
    const random = prng(42);
    for (let night = 0; night < 300; night++) {
      const maxIterations = random() < 0.3 ? null : 1 + Math.floor(random() * 60);
      const deadlineMs = random() < 0.5 ? null : 1000 + Math.floor(random() * 50_000);
      const budget = random() < 0.5 ? DEFAULT_NIGHT_BUDGET : random();
      const plan: NightPlan = {
        budget,
        spent: 0,
        roundsDone: 0,
        testedRounds: 0,
        maxIterations,
        deadlineMs,
        elapsedMs: 0,
      };
      // A night may run past its plan (a resumed run, a raised limit): the budget must still hold.
      for (let round = 0; round < 200; round++) {
        const { alpha } = roundAlpha(plan);
        expect(alpha).toBeGreaterThanOrEqual(0);
        const candidates = 1 + Math.floor(random() * 8);
        const tested = random() < 0.6;
        // However many candidates race, the round uses its alpha once (each arm's bar is K/alpha).
        if (tested && candidates > 0) plan.spent += alpha;
        plan.testedRounds += tested ? 1 : 0;
        plan.roundsDone += 1;
        plan.elapsedMs += Math.floor(random() * 2000);
        expect(plan.spent).toBeLessThanOrEqual(budget + 1e-12);
      }
    }
  });

  it("spreads the budget over the rounds expected to reach the held-out split", () => {
    const fresh: NightPlan = {
      budget: 0.1,
      spent: 0,
      roundsDone: 0,
      testedRounds: 0,
      maxIterations: 30,
      deadlineMs: null,
      elapsedMs: 0,
    };
    expect(roundAlpha(fresh).alpha).toBeCloseTo(0.1 / 15, 12);
    // Half the night gone, every round tested so far, a third of the budget spent.
    const later = { ...fresh, roundsDone: 15, testedRounds: 15, spent: 0.1 / 3 };
    expect(roundAlpha(later).alpha).toBeCloseTo((0.1 * (2 / 3)) / (15 * (16 / 17)), 12);
    // A deadline that leaves fewer rounds than the iteration limit raises the share.
    const deadline = { ...fresh, roundsDone: 10, testedRounds: 5, deadlineMs: 12_000, elapsedMs: 10_000 };
    expect(roundAlpha(deadline).roundsLeft).toBe(2);
    expect(roundAlpha({ ...fresh, maxIterations: null }).roundsLeft).toBe(OPEN_NIGHT_ROUNDS);
  });
});

describe("the night's held-out runs", () => {
  it("a night never spends more than the original's N per iteration plus the slack, however rounds spend", () => {
    const random = prng(9);
    for (let night = 0; night < 100; night++) {
      const tasks = 10 + Math.floor(random() * 300);
      let spent = tasks;
      for (let round = 1; round <= 40; round++) {
        const candidates = 1 + Math.floor(random() * 4);
        const allowed = runAllowance({ tasks, round, spent, candidates, slack: 3, perRound: 4 });
        expect(allowed).toBeLessThanOrEqual((4 * tasks * (candidates + 1)) / 2);
        spent += random() < 0.5 ? allowed : Math.floor(random() * allowed);
        expect(spent).toBeLessThanOrEqual(tasks * (round + 1 + 3));
      }
    }
  });
});

describe("the held-out bank and a wide round's train screens", () => {
  it("a round of one earns one pass, as before; a wide round earns the share of a round its extra screens took", () => {
    expect(bankRounds(5, [])).toBe(5);
    // A round of four that took 30 min, 12 of them the three extra screens: 18 min is a round of one's work.
    expect(bankRounds(5, [{ roundMs: 30 * 60_000, extraMs: 12 * 60_000, extra: 3 }])).toBeCloseTo(5 + 12 / 18, 12);
    // Never more than one round per extra candidate, and nothing for a round its screens cannot explain.
    expect(bankRounds(2, [{ roundMs: 10, extraMs: 9, extra: 1 }])).toBe(3);
    expect(bankRounds(2, [{ roundMs: 9, extraMs: 9, extra: 1 }])).toBe(2);
    expect(bankRounds(2, [{ roundMs: 9, extraMs: 0, extra: 0 }])).toBe(2);
  });

  it("a night of wide rounds earns the bank of the rounds of one its hours would have held", () => {
    // Rounds of one take 16 min; a round of K takes 16 + 4(K - 1) (its extra screens, 4 min each).
    for (const k of [2, 4, 8]) {
      const per = 16 + 4 * (k - 1);
      const rounds = Math.floor((8 * 60) / per);
      const done = Array.from({ length: rounds }, () => ({
        roundMs: per * 60_000,
        extraMs: 4 * (k - 1) * 60_000,
        extra: k - 1,
      }));
      // Counted per round it would earn `rounds`: 10 for K = 8 where rounds of one hold 27.5 in those hours.
      expect(bankRounds(rounds, done)).toBeCloseTo((rounds * per) / 16, 9);
    }
  });
});

describe("fitRewardModel", () => {
  const twice = (f: (i: number) => [number, number], n = 40) => Object.fromEntries(ids(n).map((id, i) => [id, f(i)]));

  it("pass/fail rewards: binary, a run counts as one coin flip", () => {
    const m = fitRewardModel(twice((i) => [i % 2, i % 3 === 0 ? 1 : 0]));
    expect(m).toMatchObject({ kind: "binary", dispersion: 1 });
  });

  it("deterministic partial credit: a few levels, and a run says much more than a coin", () => {
    const m = fitRewardModel(twice((i) => (i % 3 === 0 ? [0.5, 0.5] : i % 3 === 1 ? [1, 1] : [0, 0.5])));
    expect(m.kind).toBe("levels");
    expect(m.levels).toEqual([0, 0.5, 1]);
    expect(m.dispersion).toBeLessThan(0.3);
    expect(describeRewardModel(m)).toMatch(/^rewards on 3 levels \(0, 0\.5, 1\); a run of a task is worth/);
  });

  it("continuous rewards with small jitter: continuous, low dispersion", () => {
    const random = prng(3);
    const m = fitRewardModel(
      twice((i) => {
        const mu = 0.2 + (0.6 * i) / 40;
        return [mu + 0.02 * (random() - 0.5), mu + 0.02 * (random() - 0.5)];
      }),
    );
    expect(m.kind).toBe("continuous");
    expect(m.dispersion).toBeLessThan(0.05);
  });

  it("one run per task: the noise cannot be measured, so a run counts as a coin; nulls are left out", () => {
    const m = fitRewardModel(Object.fromEntries(ids(40).map((id, i) => [id, [i % 4 === 0 ? null : 0.5]])));
    expect(m.dispersion).toBe(1);
    expect(m.basis).toEqual({ tasks: 30, runs: 30, repeatedTasks: 0 });
    expect(describeRewardModel(m)).toMatch(/too few tasks run twice/);
  });
});

describe("the sealed holdout's size and verdict", () => {
  const model = fitRewardModel(Object.fromEntries(ids(20).map((id, i) => [id, [i % 2, (i + 1) % 2]])));

  it("proposes more tasks for a smaller gain, fewer with more trials of the final agent", () => {
    const at = (gain: number, trials: number) =>
      proposeHoldoutSize({ model, taskMeans: [0.2, 0.5, 0.8, 0.9], gain, trials }).tasks;
    expect(at(0.05, 1)).toBeGreaterThan(at(0.1, 1));
    expect(at(0.05, 4)).toBeLessThan(at(0.05, 1));
    expect(at(0.05, 1)).toBeGreaterThan(100);
  });

  it.each([
    [{ diff: 0.1, low: 0.02, high: 0.18, tasks: 60 }, 0.1, "improved", null],
    [{ diff: -0.1, low: -0.18, high: -0.02, tasks: 60 }, 0.1, "worse", null],
    [{ diff: 0.0, low: -0.03, high: 0.03, tasks: 400 }, 0.25, "no detectable change", null],
    [{ diff: 0.05, low: -0.22, high: 0.31, tasks: 20 }, 0.25, "too small to tell", 90],
  ] as const)("%o against a claimed %f: %s", (h, claim, verdict, tasksToTell) => {
    const v = holdoutVerdict(h, claim);
    expect(v.verdict).toBe(verdict);
    expect(v.tasksToTell).toBe(tasksToTell);
  });
});

describe("the seam: the original's rule and the bayes rule drive like the new one", () => {
  it("the original's rule accepts at least the best, and runs the candidate once per task", () => {
    const taskIds = ids(10);
    const run = (r: { taskId: string }) => (Number(r.taskId.slice(1)) < 6 ? 1 : 0);
    const yes = driveSync(originalRule, { candidate: "c", taskIds, best: 0.6, trialBase: 0 }, run);
    expect(yes.decision).toMatchObject({ winner: "c", heldOutRuns: 10 });
    expect(yes.decision.arms[0]!.valScore).toBeCloseTo(0.6, 12);
    const no = driveSync(originalRule, { candidate: "c", taskIds, best: 0.61, trialBase: 0 }, run);
    expect(no.decision.winner).toBeNull();
  });

  it("the bayes rule through the seam decides exactly as it does on its own", () => {
    for (let seed = 0; seed < 6; seed++) {
      const testIds = ids(30);
      const gate: GateSetup = {
        params: DEFAULT_BAYES,
        testIds,
        orderSeed: seed,
        trials: 1,
        histTest: Object.fromEntries(testIds.map((id, i) => [id, i % 2 ? { s: 2, f: 0 } : { s: 0, f: 2 }])),
        histTrain: {},
        trainCandidate: {},
        testRunsSoFar: 30,
        iteration: 1,
        infraLimit: 0.2,
      };
      // Deterministic answers by (who, task, trial), so both drives see the same world.
      const answer = (who: string, taskId: string, trial: number) => {
        const r = prng(seed * 1000 + Number(taskId.slice(1)) * 37 + trial * 7 + (who === INCUMBENT ? 1 : 0))();
        return r < (Number(taskId.slice(1)) % 3 === 0 ? 0.9 : 0.4) ? 1 : 0;
      };
      // Both number a pair's runs 1000 + its index, and first-pass runs by their trial.
      const alone = runGateSync(gate, (who, taskId, trial) =>
        answer(who === "incumbent" ? INCUMBENT : "c", taskId, trial),
      );
      const seam = driveSync(bayesRule, { candidate: "c", gate, trialBase: 0 }, (r) =>
        answer(r.arm, r.taskId, r.trial),
      );
      expect(seam.decision.winner !== null).toBe(alone.decision!.accept);
      expect(seam.decision.heldOutRuns).toBe(alone.testRuns);
      expect(seam.decision.arms[0]!.figures.pGood).toBeCloseTo(alone.decision!.pGood, 12);
    }
  });
});
