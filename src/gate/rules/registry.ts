/**
 * The rules the shell drives through the seam (types.ts), by the name `gate_rule` gives them. Each entry is
 * pure: how the rule's setup is made from the round's facts (gathered once by the shell, journaled with the
 * setup), what the incumbent's history becomes after the round, and the round in words for `gate --explain`.
 * Adding a rule is one file in this folder and one line here. (`original` keeps its own one-pass shell:
 * src/gate/original-round.ts.)
 */
import {
  type BayesSeamSetup,
  type BayesSeamState,
  bayesHistories,
  bayesParams,
  bayesRule,
  explainBayes,
} from "./bayes.ts";
import type { Sums } from "./evidence.ts";
import { DEFAULT_PAIRED, type PairedParams, type PairedSetup, type PairedState, pairedRule } from "./paired.ts";
import { explainRound } from "./paired-explain.ts";
import { nextHistories } from "./paired-history.ts";
import type { RewardModel } from "./reward-model.ts";
import type { Decision, GateRule, RunOutcome } from "./types.ts";

/**
 * What the shell knows when a round starts: ids, numbers and the settings, never task content. The paired
 * rule's setup is these facts and its parameters; the other rules read what they need of them.
 */
export interface RoundFacts extends Omit<PairedSetup, "params"> {
  /** Held-out runs spent so far in the night (the baseline's included), and this round's number (1: the first). */
  testRunsSoFar: number;
  round: number;
  /** The night's error budget (`gate_night_budget`) and what the rounds before this one spent of it. */
  night: { budget: number; spentBefore: number };
  settings: RuleSettings;
}

/** The config keys the rules read. */
export interface RuleSettings {
  trials: number;
  gate_tau?: number;
  gate_train_weight?: number;
  gate_guard?: number;
  gate_screen?: number;
  gate_race_passes?: number;
  gate_race_width?: number;
  gate_round_runs?: number;
}

export interface NextHistory {
  test: Record<string, Sums>;
  train: Record<string, Sums>;
  /** The reward model the next round starts from (unchanged when absent). */
  model?: RewardModel;
}

export interface RuleEntry<Setup, State> {
  rule: GateRule<Setup, State>;
  setupOf(facts: RoundFacts): Setup;
  /** The incumbent's history after the round; `decision.winner` is the arm actually accepted (null: none). */
  after(state: State, decision: Decision): NextHistory;
  /** The round in words; ids and numbers only. */
  explain(state: State, decision: Decision, runs: readonly RunOutcome[]): string;
}

const plus = (a: Sums | undefined, x: number | null | undefined): Sums =>
  x === null || x === undefined ? (a ?? { s: 0, f: 0 }) : { s: (a?.s ?? 0) + x, f: (a?.f ?? 0) + 1 - x };

/** Histories with this iteration's incumbent train runs counted in (the bayes rule reads them so). */
function withTrain(history: Record<string, Sums>, fresh: Record<string, number | null>): Record<string, Sums> {
  const out = { ...history };
  for (const [id, x] of Object.entries(fresh)) out[id] = plus(out[id], x);
  return out;
}

export function pairedParams(s: RuleSettings): PairedParams {
  return {
    ...DEFAULT_PAIRED,
    ...(s.gate_guard === undefined ? {} : { guard: s.gate_guard }),
    ...(s.gate_screen === undefined ? {} : { screen: s.gate_screen }),
    ...(s.gate_race_passes === undefined ? {} : { racePasses: s.gate_race_passes }),
    ...(s.gate_race_width === undefined ? {} : { raceWidth: s.gate_race_width }),
    ...(s.gate_round_runs === undefined ? {} : { roundRuns: s.gate_round_runs }),
  };
}

const paired: RuleEntry<PairedSetup, PairedState> = {
  rule: pairedRule,
  setupOf: (f) => ({
    candidates: f.candidates,
    taskIds: f.taskIds,
    orderSeed: f.orderSeed,
    trialBase: f.trialBase,
    model: f.model,
    history: f.history,
    train: f.train,
    alpha: f.alpha,
    maxRuns: f.maxRuns,
    infraLimit: f.infraLimit,
    params: pairedParams(f.settings),
  }),
  after: (state, decision) => nextHistories(state, decision),
  explain: (state, decision) => explainRound(state, decision),
};

const bayes: RuleEntry<BayesSeamSetup, BayesSeamState> = {
  rule: bayesRule,
  setupOf: (f) => {
    const candidate = f.candidates[0]!;
    const histTrain = withTrain(f.history.train, f.train.incumbent);
    return {
      candidate,
      trialBase: f.trialBase,
      gate: {
        params: bayesParams(f.settings, [f.history.test, histTrain]),
        testIds: f.taskIds,
        orderSeed: f.orderSeed,
        trials: f.settings.trials,
        histTest: f.history.test,
        histTrain,
        trainCandidate: f.train.candidates[candidate] ?? {},
        testRunsSoFar: f.testRunsSoFar,
        iteration: f.round,
        infraLimit: f.infraLimit,
      },
    };
  },
  after: (state, decision) => afterBayes(state, decision),
  explain: (state, decision, runs) => explainBayes(state, decision, runs),
};

function afterBayes(state: BayesSeamState, decision: Decision): NextHistory {
  const train: Record<string, Sums> = {};
  for (const [id, r] of Object.entries(state.setup.gate.trainCandidate)) if (r !== null) train[id] = plus(undefined, r);
  return bayesHistories(state, decision.winner !== null, train);
}

/** Rules driven through the seam, by `gate_rule`. */
export const SEAM_RULES = { paired, bayes } as const;
export type SeamRuleName = keyof typeof SEAM_RULES;

export function seamRule(name: string): RuleEntry<unknown, unknown> | null {
  return (SEAM_RULES as Record<string, RuleEntry<unknown, unknown>>)[name] ?? null;
}
