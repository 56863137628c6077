/** The paired rule as the loop would drive it: a night's budget, histories carried from gate to gate. */
import {
  bankRounds,
  DEFAULT_BANK_SLACK,
  DEFAULT_NIGHT_BUDGET,
  DEFAULT_ROUND_RUNS,
  roundAlpha,
  runAllowance,
  type ScreenTime,
} from "../src/gate/rules/budget.ts";
import type { Sums } from "../src/gate/rules/evidence.ts";
import {
  DEFAULT_PAIRED,
  type PairedParams,
  type PairedSetup,
  type PairedState,
  pairedRule,
} from "../src/gate/rules/paired.ts";
import { nextHistories } from "../src/gate/rules/paired-history.ts";
import { fitRewardModel } from "../src/gate/rules/reward-model.ts";
import { type Decision, driveSync } from "../src/gate/rules/types.ts";
import type { Baseline, SimAgent } from "./gate-sim.ts";

/**
 * What the bench drives the paired rule with; `--set key=value` and `--slack n` change it. The bank: held-out
 * runs over the night never run ahead of the original's (N per iteration, N for the baseline) by more than
 * `bankSlack` times N, so the night as a whole spends no more than the original's rule.
 */
export const pairedBench: {
  params: PairedParams;
  bankSlack: number;
  perGate: number;
  nightBudget: number;
  /** The held-out bank credits a wide round's extra train screens (the product's way), or counts rounds only. */
  bank: "screens" | "rounds";
} = {
  params: DEFAULT_PAIRED,
  bankSlack: DEFAULT_BANK_SLACK,
  perGate: DEFAULT_ROUND_RUNS,
  nightBudget: DEFAULT_NIGHT_BUDGET,
  bank: "screens",
};

const sums = (xs: number[]): Sums => ({ s: xs.reduce((a, b) => a + b, 0), f: xs.reduce((a, b) => a + 1 - b, 0) });

/** What one round of a night tells the book: its number, the night's clock, and the train runs of every arm. */
export interface RoundView {
  round: number;
  plannedRounds: number | null;
  deadlineMs: number | null;
  elapsedMs: number;
  orderSeed: number;
  trainIncumbent: Record<string, number | null>;
  trainCandidates: Record<string, Record<string, number | null>>;
  /** How long the candidates' train screens took this round (simulated time; 0: not timed). */
  screenMs?: number;
}

/**
 * The paired rule's books across a night, as the loop keeps them: the reward model fitted at prepare, the
 * incumbent's histories, the night's error budget and its held-out run bank. One book serves K candidates.
 */
export class PairedBook {
  private model;
  private history;
  private spent = 0;
  private tested = 0;
  private heldOut: number;
  /** Decided rounds' times as the journal would hold them (ScreenTime), the last gate's time, this round's. */
  private readonly screens: ScreenTime[] = [];
  private lastGateAt = 0;
  private current: { at: number; screenMs: number; arms: number } | null = null;

  constructor(
    base: Baseline,
    private readonly testIds: string[],
    trainIds: string[],
  ) {
    // prepare's fit: the baseline's runs, the train split run twice so that the noise can be measured.
    const runs: Record<string, number[]> = {};
    testIds.forEach((id, i) => {
      runs[id] = [base.test[i]!];
    });
    trainIds.forEach((id, i) => {
      runs[id] = base.train.map((r) => r[i]!);
    });
    this.model = fitRewardModel(runs);
    this.history = {
      test: Object.fromEntries(testIds.map((id) => [id, sums(runs[id]!)])),
      train: Object.fromEntries(trainIds.map((id) => [id, sums(runs[id]!)])),
    };
    this.heldOut = testIds.length;
  }

  setup(v: RoundView): PairedSetup {
    const { params, bankSlack, perGate, nightBudget } = pairedBench;
    const candidates = Object.keys(v.trainCandidates);
    this.current = { at: v.elapsedMs, screenMs: v.screenMs ?? 0, arms: candidates.length };
    const { alpha } = roundAlpha({
      budget: nightBudget,
      spent: this.spent,
      roundsDone: v.round - 1,
      testedRounds: this.tested,
      maxIterations: v.plannedRounds,
      deadlineMs: v.deadlineMs,
      elapsedMs: v.elapsedMs,
    });
    return {
      candidates,
      taskIds: this.testIds,
      orderSeed: v.orderSeed,
      trialBase: v.round * 1000,
      model: this.model,
      history: this.history,
      train: { incumbent: v.trainIncumbent, candidates: v.trainCandidates },
      alpha,
      maxRuns: runAllowance({
        tasks: this.testIds.length,
        round: bankRounds(v.round, pairedBench.bank === "screens" ? this.screens : []),
        spent: this.heldOut,
        candidates: candidates.length,
        slack: bankSlack,
        perRound: perGate,
      }),
      infraLimit: 0.2,
      params,
    };
  }

  settle(state: PairedState, d: Decision): void {
    this.spent += d.alphaUsed;
    this.tested += d.alphaUsed > 0 ? 1 : 0;
    this.heldOut += d.heldOutRuns;
    const c = this.current;
    if (c && c.arms > 1 && c.screenMs > 0)
      this.screens.push({
        roundMs: c.at - this.lastGateAt,
        extraMs: (c.screenMs * (c.arms - 1)) / c.arms,
        extra: c.arms - 1,
      });
    if (c) this.lastGateAt = c.at;
    ({ model: this.model, ...this.history } = nextHistories(state, d));
  }
}

const byId = (ids: string[], xs: number[]) => Object.fromEntries(ids.map((id, i) => [id, xs[i] ?? null]));

export function pairedAgent(base: Baseline, testIds: string[], trainIds: string[]): SimAgent {
  const book = new PairedBook(base, testIds, trainIds);
  let last: PairedState | null = null;
  return {
    gate(v) {
      const setup = book.setup({
        round: v.iteration,
        plannedRounds: v.iterations,
        deadlineMs: null,
        elapsedMs: 0,
        orderSeed: Math.floor(v.rng.random() * 2 ** 31),
        trainIncumbent: byId(v.trainIds, v.trainIncumbent),
        trainCandidates: { c: byId(v.trainIds, v.trainCandidate) },
      });
      const out = driveSync(pairedRule, setup, (r) => v.run(r));
      last = out.state;
      return out.decision;
    },
    settle(_v, d) {
      if (last) book.settle(last, d);
    },
  };
}
