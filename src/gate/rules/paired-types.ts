/** The paired rule's settings, setup and state (./paired.ts): types and defaults only. */
import { type Drift, type DriftParams, logitShift } from "./drift.ts";
import type { Bet, EvidenceParams, HistoryView, Sums } from "./evidence.ts";
import type { ArmCache, Draws } from "./paired-stats.ts";
import type { Look, StoppedArm } from "./paired-verdict.ts";
import type { RewardModel } from "./reward-model.ts";
import type { Decision, Run } from "./types.ts";

export interface PairedParams extends EvidenceParams, DriftParams {
  /** Prior probability that an edit changes anything at all. */
  priorChanged: number;
  /**
   * Train screen: stop a candidate whose P(mean improved on train) is below `screen`, unless its paired
   * train difference (candidate − incumbent, model-free) has a z of at least `screenRescue`.
   */
  screen: number;
  screenRescue: number;
  /**
   * Held-out: stop an arm whose P(mean improved) falls below a bar that rises from 0, when `futilityFrom` of
   * the tasks are paired, to `futility` when all are (a real fix shows late; a no-change edit never does).
   */
  futility: number;
  futilityFrom: number;
  /**
   * Accept only at P(mean improved) at least this (besides the e-value). 0.95, not 0.9: with a posterior
   * that does not lean up (evidence.ts), the higher bar cost a +7.5-point fix at most 1.5 points in the
   * bench's worlds and cut the −2-point trades accepted on a mostly failing mix from 3.5% to 2.3%.
   */
  guard: number;
  /**
   * Accept only when the paired first pass (every task once, candidate and incumbent in one batch, no
   * re-run chosen by the rule) improved the mean by more than this: the model-free check on the model.
   */
  firstPassFloor: number;
  /** Share of the held-out tasks the first pass has covered at each look. */
  looks: number[];
  /** Tasks re-run per batch, as a share of the held-out tasks. */
  rerunShare: number;
  /** A task is re-run for the e-value only when P(fixed) is at least this; for doubt, when its sd is. */
  liftFloor: number;
  doubtFloor: number;
  /** Runs of one task per arm, at most. */
  maxTrials: number;
  /**
   * Of several train-screen survivors, race only as many as the round's held-out runs pay for at this many
   * passes per arm, incumbent included (the best by their paired train difference first; at least one).
   * 0: race every survivor.
   */
  racePasses: number;
  /**
   * Of the survivors the round can pay for, race at most this many, the best on train first (0: all it pays
   * for). Each arm raced raises every raced arm's bar (K/alpha) and shares the round's runs.
   */
  raceWidth: number;
  /**
   * The round's cap, in passes over the held-out split per raced candidate and incumbent pair: a round
   * of four candidates that races one spends what a round of one would, never the allowance of four.
   */
  roundRuns: number;
  /** On acceptance, share of the old incumbent's history kept on tasks the winner did not change. */
  lambda: number;
  /** Share of the held-out tasks that must have a pair before an arm may be accepted. */
  coverage: number;
  /** Before an acceptance, tasks the arm did worse on than the incumbent have at least this many pairs. */
  auditTrials: number;
}

export const DEFAULT_PAIRED: PairedParams = {
  fixBelow: 0.8,
  breakAbove: 0.05,
  shapes: [
    { fix: 0.05, break: 0.02 },
    { fix: 0.15, break: 0.02 },
    { fix: 0.3, break: 0.02 },
    { fix: 0.6, break: 0.02 },
    { fix: 0.02, break: 0.1 },
    { fix: 0.02, break: 0.3 },
    { fix: 0.15, break: 0.1 },
    { fix: 0.3, break: 0.3 },
  ],
  betShares: [0.05, 0.15, 0.3],
  betReach: 0.9,
  thetaMax: 0.99,
  keepBelow: 2.5,
  dropAbove: 4,
  priorChanged: 0.5,
  screen: 0.2,
  screenRescue: 2,
  futility: 0.35,
  futilityFrom: 0.3,
  guard: 0.95,
  firstPassFloor: 0,
  looks: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
  rerunShare: 0.05,
  liftFloor: 0.3,
  doubtFloor: 0.05,
  maxTrials: 8,
  racePasses: 2,
  raceWidth: 1,
  roundRuns: 4,
  lambda: 0.3,
  coverage: 1,
  auditTrials: 2,
};

export interface PairedSetup {
  /** Candidate arm ids (one: today's loop; K: a race). */
  candidates: string[];
  /** Held-out task ids; run in the order of `orderSeed`. */
  taskIds: string[];
  orderSeed: number;
  /** The round's first trial number: every run's trial is this plus its index for the task. */
  trialBase: number;
  model: RewardModel;
  /** The incumbent lineage's earlier runs per task, as reward sums (train: not this iteration's run). */
  history: { test: Record<string, Sums>; train: Record<string, Sums> };
  /** This iteration's train runs: the incumbent's and each candidate's (free evidence). */
  train: { incumbent: Record<string, number | null>; candidates: Record<string, Record<string, number | null>> };
  /** This round's share of the night's error budget (budget.ts). */
  alpha: number;
  /** Held-out runs this round may spend, all arms and the incumbent together. */
  maxRuns: number;
  /** Largest share of held-out runs that may be infrastructure errors before the round refuses to decide. */
  infraLimit: number;
  params: PairedParams;
}

/** Fixed at the start from the setup alone, so a replay derives the same. */
export interface Plan {
  order: string[];
  bets: ReadonlyMap<string, Bet>;
  /** The incumbent's mean per task as the history has it (after the drift check). */
  means: ReadonlyMap<string, number>;
  trainDrift: Drift;
  raced: string[];
  threshold: number;
  /** Held-out runs this round may spend: the setup's, capped for the arms actually raced. */
  maxRuns: number;
}

export interface PairedState {
  setup: PairedSetup;
  plan: Plan;
  /** Arm → task → rewards by trial index. */
  draws: ReadonlyMap<string, Draws>;
  /** Times each task has been scheduled (its next trial index). */
  scheduled: ReadonlyMap<string, number>;
  batch: readonly Run[];
  /** Keys of the current batch's runs not received yet. */
  pending: ReadonlySet<string>;
  firstPass: number;
  live: readonly string[];
  stopped: readonly StoppedArm[];
  looks: readonly Look[];
  runs: number;
  infra: number;
  drift: Drift;
  /** Per-arm task records of the last look (a cache: recomputing without it gives the same). */
  caches: ReadonlyMap<string, ArmCache>;
  decision: Decision | null;
}

export const viewOf = (d: Drift): HistoryView => ({ weight: d.weight, shift: d.weight < 1 ? logitShift(d) : 0 });

export const covers = (frac: number, n: number) => Math.min(n, Math.ceil(frac * n - 1e-9));
