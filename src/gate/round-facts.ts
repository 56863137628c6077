/**
 * What a round's rule starts from, read from the journal once (the setup it makes is journaled, so a resumed
 * round never reads these again): the incumbent's histories, the benchmark's reward model, the night's error
 * budget and run bank, a trial base no other round has used, and the order seed.
 */
import { agentHashOf } from "../benchmark/agent-hash.ts";
import type { Config } from "../config/schema.ts";
import type { GateDecisionRow, Stores } from "../journal/stores.ts";
import type { SplitFile } from "../workspace/files.ts";
import { foldIntoHistory } from "./history.ts";
import { fitFromJournal, pinnedRewardModel, pinRewardModel } from "./reward-pin.ts";
import {
  bankRounds,
  DEFAULT_BANK_SLACK,
  DEFAULT_NIGHT_BUDGET,
  DEFAULT_ROUND_RUNS,
  roundAlpha,
  runAllowance,
  type ScreenTime,
} from "./rules/budget.ts";
import type { Sums } from "./rules/evidence.ts";
import type { RoundFacts } from "./rules/registry.ts";

/** The most a gate lets infrastructure errors take of its held-out runs before it refuses to decide. */
export const GATE_INFRA_LIMIT = 0.2;
/** Trial numbers of gate rounds start here, far above the baseline's and the loop's own trials. */
export const TRIAL_BASE_START = 1_000_000;
/** Trials one round may use per (arm, task); rounds' bases are this far apart. */
export const TRIAL_STRIDE = 1_000;
const NEXT_TRIAL_BASE = "gate_next_trial_base";

/** The night the round belongs to: its limits, from its start (the `gate` command outside a run: open). */
export interface Night {
  maxIterations: number | null;
  /** Epoch ms of the deadline, and of the run's start; null: none. */
  deadline: number | null;
  startedAt: number | null;
  now: number;
}

export type FactsConfig = Partial<
  Pick<
    Config,
    | "seed"
    | "trials"
    | "infra_error_share"
    | "gate_tau"
    | "gate_train_weight"
    | "gate_guard"
    | "gate_screen"
    | "gate_race_passes"
    | "gate_race_width"
    | "gate_night_budget"
    | "gate_bank_slack"
    | "gate_round_runs"
  >
>;

/** Seed of the held-out order: reproducible from the config's seed, the run and the iteration. */
export function orderSeed(seed: number, runId: string, iteration: number): number {
  return Number.parseInt(agentHashOf(`${seed}:${runId}:${iteration}`).slice(0, 8), 16);
}

/** A trial base no round of this experiment has used: a run of another round is never reused as a pair. */
export function allocateTrialBase(pins: Pick<Stores["pins"], "fact" | "putFact" | "transaction">): number {
  return pins.transaction(() => {
    const next = pins.fact(NEXT_TRIAL_BASE);
    const base = typeof next === "number" ? next : TRIAL_BASE_START;
    pins.putFact(NEXT_TRIAL_BASE, base + TRIAL_STRIDE);
    return base;
  });
}

const only = (h: Record<string, Sums>, ids: readonly string[]) =>
  Object.fromEntries(ids.filter((id) => h[id]).map((id) => [id, h[id]!]));

/**
 * The incumbent's histories with every run of it not counted yet folded in, except its fresh train runs of
 * this iteration: those come back apart (the rule weighs them as today's evidence; the round's end counts them).
 */
function histories(
  journal: Pick<Stores, "gateRecords">,
  incumbentHash: string,
  split: SplitFile,
): { history: RoundFacts["history"]; freshTrain: Record<string, number | null> } {
  const { gateRecords } = journal;
  const test = new Set(split.test);
  const train = new Set(split.train);
  const freshTrain: Record<string, number | null> = {};
  const kept = new Set<string>();
  const key = (r: { taskId: string; trial: number }) => `${r.taskId}\u0000${r.trial}`;
  for (const r of gateRecords.unfoldedResults(incumbentHash)) {
    if (r.split !== "train" || !train.has(r.taskId) || r.taskId in freshTrain) continue;
    freshTrain[r.taskId] = r.reward;
    kept.add(key(r));
  }
  foldIntoHistory(
    {
      transaction: (fn) => gateRecords.transaction(fn),
      unfoldedResults: (hash) =>
        gateRecords.unfoldedResults(hash).filter((r) => !(r.split === "train" && kept.has(key(r)))),
      markFolded: (hash, r) => gateRecords.markFolded(hash, r),
      addToHistory: (s, id, a, b) => gateRecords.addToHistory(s, id, a, b),
    },
    incumbentHash,
    (id) => (test.has(id) ? "test" : train.has(id) ? "train" : null),
  );
  return {
    history: {
      test: only(gateRecords.gateHistory("test"), split.test),
      train: only(gateRecords.gateHistory("train"), split.train),
    },
    freshTrain,
  };
}

/**
 * Each decided round's time (from the gate of the round before, or the night's start) and what its extra
 * candidates' train screens took of it, as the round journaled them (details.screen).
 */
function screenTimes(decided: readonly GateDecisionRow[], startedAt: number | null): ScreenTime[] {
  const out: ScreenTime[] = [];
  let last = startedAt;
  for (const d of decided) {
    const screen = d.details.screen as { ms?: unknown; arms?: unknown } | undefined;
    const ms = typeof screen?.ms === "number" ? screen.ms : 0;
    const arms = typeof screen?.arms === "number" ? screen.arms : 1;
    if (last !== null && arms > 1 && ms > 0)
      out.push({ roundMs: d.createdAt - last, extraMs: (ms * (arms - 1)) / arms, extra: arms - 1 });
    last = d.createdAt;
  }
  return out;
}

/** The share of the night's budget and of its held-out runs this round may use, from the night's decisions. */
function nightShare(
  decided: readonly GateDecisionRow[],
  config: FactsConfig,
  night: Night,
  tasks: number,
  candidates: number,
): { alpha: number; maxRuns: number; testRunsSoFar: number; round: number; budget: number; spent: number } {
  const alphaOf = (d: GateDecisionRow) => (typeof d.details.alphaUsed === "number" ? d.details.alphaUsed : 0);
  const spentRuns = decided.reduce((n, d) => n + d.testRuns, 0);
  const budget = config.gate_night_budget ?? DEFAULT_NIGHT_BUDGET;
  const spent = decided.reduce((a, d) => a + alphaOf(d), 0);
  const { alpha } = roundAlpha({
    budget,
    spent,
    roundsDone: decided.length,
    testedRounds: decided.filter((d) => alphaOf(d) > 0).length,
    maxIterations: night.maxIterations,
    deadlineMs: night.deadline === null || night.startedAt === null ? null : night.deadline - night.startedAt,
    elapsedMs: night.startedAt === null ? 0 : Math.max(0, night.now - night.startedAt),
  });
  const maxRuns = runAllowance({
    tasks,
    round: bankRounds(decided.length + 1, screenTimes(decided, night.startedAt)),
    // The baseline's pass over the held-out split counts, as in the original's spending.
    spent: tasks + spentRuns,
    candidates,
    slack: config.gate_bank_slack ?? DEFAULT_BANK_SLACK,
    perRound: config.gate_round_runs ?? DEFAULT_ROUND_RUNS,
  });
  return { alpha, maxRuns, testRunsSoFar: tasks + spentRuns, round: decided.length + 1, budget, spent };
}

export function roundFacts(o: {
  journal: Pick<Stores, "gateRecords" | "pins" | "taskResults">;
  config: FactsConfig;
  night: Night;
  runId: string;
  iteration: number;
  split: SplitFile;
  incumbentHash: string;
  /** Each candidate's train run this iteration, by arm id. */
  trainOf: Record<string, Record<string, number | null>>;
}): RoundFacts {
  const { journal, config, split } = o;
  const { history, freshTrain } = histories(journal, o.incumbentHash, split);
  let model = pinnedRewardModel(journal.pins);
  if (!model) {
    model = fitFromJournal(journal.taskResults, o.incumbentHash);
    pinRewardModel(journal.pins, model);
  }
  const decided = journal.gateRecords
    .gateDecisions(o.runId)
    .filter((d) => d.status === "decided" && d.iteration < o.iteration);
  const candidates = Object.keys(o.trainOf);
  const share = nightShare(decided, config, o.night, split.test.length, candidates.length);
  return {
    candidates,
    taskIds: [...split.test],
    orderSeed: orderSeed(config.seed ?? 0, o.runId, o.iteration),
    trialBase: allocateTrialBase(journal.pins),
    history,
    train: { incumbent: freshTrain, candidates: o.trainOf },
    model,
    alpha: share.alpha,
    maxRuns: share.maxRuns,
    infraLimit: Math.min(GATE_INFRA_LIMIT, config.infra_error_share ?? GATE_INFRA_LIMIT),
    testRunsSoFar: share.testRunsSoFar,
    round: share.round,
    night: { budget: share.budget, spentBefore: share.spent },
    settings: {
      trials: config.trials ?? 1,
      ...(config.gate_tau === undefined ? {} : { gate_tau: config.gate_tau }),
      ...(config.gate_train_weight === undefined ? {} : { gate_train_weight: config.gate_train_weight }),
      ...(config.gate_guard === undefined ? {} : { gate_guard: config.gate_guard }),
      ...(config.gate_screen === undefined ? {} : { gate_screen: config.gate_screen }),
      ...(config.gate_race_passes === undefined ? {} : { gate_race_passes: config.gate_race_passes }),
      ...(config.gate_race_width === undefined ? {} : { gate_race_width: config.gate_race_width }),
      ...(config.gate_round_runs === undefined ? {} : { gate_round_runs: config.gate_round_runs }),
    },
  };
}
