/** The paired rule as the loop would drive it: a night's budget, histories carried from gate to gate. */
import {
  DEFAULT_BANK_SLACK,
  DEFAULT_NIGHT_BUDGET,
  DEFAULT_ROUND_RUNS,
  roundAlpha,
  runAllowance,
} from "../src/gate/rules/budget.ts";
import type { Sums } from "../src/gate/rules/evidence.ts";
import { DEFAULT_PAIRED, type PairedParams, type PairedState, pairedRule } from "../src/gate/rules/paired.ts";
import { nextHistories } from "../src/gate/rules/paired-history.ts";
import { fitRewardModel } from "../src/gate/rules/reward-model.ts";
import { driveSync } from "../src/gate/rules/types.ts";
import type { Baseline, SimAgent } from "./gate-sim.ts";

/**
 * What the bench drives the paired rule with; `--set key=value` and `--slack n` change it. The bank: held-out
 * runs over the night never run ahead of the original's (N per iteration, N for the baseline) by more than
 * `bankSlack` times N, so the night as a whole spends no more than the original's rule.
 */
export const pairedBench: { params: PairedParams; bankSlack: number; perGate: number } = {
  params: DEFAULT_PAIRED,
  bankSlack: DEFAULT_BANK_SLACK,
  perGate: DEFAULT_ROUND_RUNS,
};

const sums = (xs: number[]): Sums => ({ s: xs.reduce((a, b) => a + b, 0), f: xs.reduce((a, b) => a + 1 - b, 0) });

export function pairedAgent(base: Baseline, testIds: string[], trainIds: string[]): SimAgent {
  const { params, bankSlack, perGate } = pairedBench;
  // prepare's fit: the baseline's runs, the train split run twice so that the noise can be measured.
  const runs: Record<string, number[]> = {};
  testIds.forEach((id, i) => {
    runs[id] = [base.test[i]!];
  });
  trainIds.forEach((id, i) => {
    runs[id] = base.train.map((r) => r[i]!);
  });
  let model = fitRewardModel(runs);
  let history = {
    test: Object.fromEntries(testIds.map((id) => [id, sums(runs[id]!)])),
    train: Object.fromEntries(trainIds.map((id) => [id, sums(runs[id]!)])),
  };
  const n = testIds.length;
  let spent = 0;
  let tested = 0;
  let heldOut = n;
  let last: PairedState | null = null;
  return {
    gate(v) {
      const { alpha } = roundAlpha({
        budget: DEFAULT_NIGHT_BUDGET,
        spent,
        roundsDone: v.iteration - 1,
        testedRounds: tested,
        maxIterations: v.iterations,
        deadlineMs: null,
        elapsedMs: 0,
      });
      const setup = {
        candidates: ["c"],
        taskIds: testIds,
        orderSeed: Math.floor(v.rng.random() * 2 ** 31),
        trialBase: v.iteration * 1000,
        model,
        history,
        train: {
          incumbent: Object.fromEntries(v.trainIds.map((id, i) => [id, v.trainIncumbent[i] ?? null])),
          candidates: { c: Object.fromEntries(v.trainIds.map((id, i) => [id, v.trainCandidate[i] ?? null])) },
        },
        alpha,
        maxRuns: runAllowance({
          tasks: n,
          round: v.iteration,
          spent: heldOut,
          candidates: 1,
          slack: bankSlack,
          perRound: perGate,
        }),
        infraLimit: 0.2,
        params,
      };
      const out = driveSync(pairedRule, setup, (r) => v.run(r));
      last = out.state;
      return out.decision;
    },
    settle(_v, d) {
      spent += d.alphaUsed;
      tested += d.alphaUsed > 0 ? 1 : 0;
      heldOut += d.heldOutRuns;
      if (last) ({ model, ...history } = nextHistories(last, d));
    },
  };
}
