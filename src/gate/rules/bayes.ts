/**
 * The `bayes` rule (its pure core bayes-core.ts, unchanged) through the seam, one candidate: its first-pass
 * runs are the candidate's alone, its paired re-runs ask for the candidate and the incumbent on one task together.
 * The underlying state is mutable, so every step works on a copy.
 */
import {
  applyResult,
  candidateMean,
  type GateResult,
  type GateSetup,
  type GateState,
  nextAction,
  startGate,
  updateHistories,
} from "./bayes-core.ts";
import { type BayesRound, bayesLines } from "./bayes-explain.ts";
import { type BayesParams, type Counts, DEFAULT_BAYES, fitPrior, type History } from "./bayes-stats.ts";
import { type Action, type Decision, type GateRule, INCUMBENT, type Run, type RunOutcome, runKey } from "./types.ts";

export interface BayesSeamSetup {
  candidate: string;
  gate: GateSetup;
  trialBase: number;
}

export interface BayesSeamState {
  setup: BayesSeamSetup;
  gate: GateState;
  /** One side of a pair that arrived before the other. */
  halfPair: RunOutcome | null;
  seen: ReadonlySet<string>;
}

/** Pairs use trials from here on, so they never meet a first-pass trial. */
const PAIR_OFFSET = 1000;

function copyGate(g: GateState): GateState {
  const counts = (m: Map<string, Counts>) => new Map([...m].map(([k, c]) => [k, { s: c.s, f: c.f }]));
  const hist: Record<string, Counts> = {};
  for (const [k, c] of Object.entries(g.histTest)) hist[k] = { s: c.s, f: c.f };
  return {
    ...g,
    obs: counts(g.obs),
    ev: new Map(g.ev),
    histTest: hist,
    firstDone: new Set(g.firstDone),
    looks: [...g.looks],
  };
}

function decisionOf(state: BayesSeamState, g: GateState): Decision {
  const d = g.decision!;
  const { candidate } = state.setup;
  return {
    winner: d.accept ? candidate : null,
    arms: [
      {
        arm: candidate,
        verdict: d.accept ? "winner" : "rejected",
        stage: d.stage === "extra" ? "rerun" : d.stage,
        reason: d.reason,
        valScore: candidateMean(g),
        improvement: null,
        figures: { pGood: d.pGood, pBad: d.pBad, expectedGain: d.expectedGain },
        runs: g.testRuns - g.pairs,
      },
    ],
    alphaUsed: 0,
    heldOutRuns: g.testRuns,
    infraErrors: g.infraErrors,
    stage: d.stage === "extra" ? "rerun" : d.stage,
    reason: d.reason,
  };
}

function toRuns(state: BayesSeamState, g: GateState): Action {
  const a = nextAction(g);
  const { candidate, trialBase } = state.setup;
  if (a.kind === "decide") return { kind: "decide", decision: decisionOf(state, g) };
  const runs: Run[] =
    a.kind === "run"
      ? a.tasks.map((t) => ({ arm: candidate, taskId: t.taskId, trial: trialBase + t.trial }))
      : [candidate, INCUMBENT].map((arm) => ({ arm, taskId: a.taskId, trial: trialBase + PAIR_OFFSET + a.index }));
  return { kind: "run", runs: runs.filter((r) => !state.seen.has(runKey(r))) };
}

function feed(setup: BayesSeamSetup, r: RunOutcome, other: RunOutcome | null): GateResult | "wait" {
  const index = r.trial - setup.trialBase - PAIR_OFFSET;
  if (index < 0) return { who: "candidate", taskId: r.taskId, trial: r.trial - setup.trialBase, reward: r.reward };
  if (!other) return "wait";
  const [c, i] = r.arm === INCUMBENT ? [other, r] : [r, other];
  return { who: "pair", taskId: r.taskId, index, candidate: c.reward, incumbent: i.reward };
}

export const bayesRule: GateRule<BayesSeamSetup, BayesSeamState> = {
  name: "bayes",
  start: (setup) => ({ setup, gate: startGate(setup.gate), halfPair: null, seen: new Set() }),
  next: (state) => toRuns(state, copyGate(state.gate)),
  apply(state, results) {
    const g = copyGate(state.gate);
    const seen = new Set(state.seen);
    let half = state.halfPair;
    for (const r of results) {
      if (seen.has(runKey(r))) continue;
      seen.add(runKey(r));
      nextAction(g);
      const other = half && half.taskId === r.taskId && half.trial === r.trial && half.arm !== r.arm ? half : null;
      const res = feed(state.setup, r, other);
      if (res === "wait") {
        half = r;
        continue;
      }
      if (other) half = null;
      applyResult(g, res);
    }
    return { setup: state.setup, gate: g, halfPair: half, seen };
  },
};

/** The rule's parameters from the config, its prior fitted to the incumbent's histories. */
export function bayesParams(
  s: { gate_tau?: number | undefined; gate_train_weight?: number | undefined },
  histories: History[],
): BayesParams {
  const p = {
    ...DEFAULT_BAYES,
    tau: s.gate_tau ?? DEFAULT_BAYES.tau,
    trainWeight: s.gate_train_weight ?? DEFAULT_BAYES.trainWeight,
  };
  return { ...p, ...fitPrior(histories, p) };
}

/** The incumbent's histories after the round (the winner's counts when one was accepted). */
export function bayesHistories(
  state: BayesSeamState,
  accepted: boolean,
  trainCounts: Record<string, Counts>,
): { test: History; train: History } {
  return updateHistories(state.gate, accepted, trainCounts);
}

/** The journaled runs as the rule saw them: first-pass runs, and pairs with both sides. */
function asResults(setup: BayesSeamSetup, runs: readonly RunOutcome[]): BayesRound["results"] {
  const out: BayesRound["results"][number][] = [];
  const incumbent = new Map<string, number | null>();
  for (const r of runs) if (r.arm === INCUMBENT) incumbent.set(`${r.taskId}\u0000${r.trial}`, r.reward);
  for (const r of runs) {
    if (r.arm === INCUMBENT) continue;
    const index = r.trial - setup.trialBase - PAIR_OFFSET;
    if (index < 0) {
      out.push({
        kind: "candidate",
        taskId: r.taskId,
        trial: r.trial - setup.trialBase,
        reward: r.reward,
        incumbentReward: null,
      });
      continue;
    }
    const key = `${r.taskId}\u0000${r.trial}`;
    if (incumbent.has(key))
      out.push({
        kind: "pair",
        taskId: r.taskId,
        trial: index,
        reward: r.reward,
        incumbentReward: incumbent.get(key) ?? null,
      });
  }
  return out;
}

export function explainBayes(state: BayesSeamState, decision: Decision, runs: readonly RunOutcome[]): string {
  const g = state.gate;
  const d = g.decision;
  const arm = decision.arms[0];
  const round: BayesRound = {
    setup: state.setup.gate,
    looks: g.looks,
    reason: d?.reason ?? decision.reason,
    extraBudget: g.extraBudget,
    decided: d !== null,
    stage: d?.stage ?? null,
    testRuns: g.testRuns,
    infraErrors: g.infraErrors,
    pGood: arm?.figures.pGood ?? null,
    pBad: arm?.figures.pBad ?? null,
    expectedGain: arm?.figures.expectedGain ?? null,
    results: asResults(state.setup, runs),
    alsoReasons: [],
  };
  return `${bayesLines(round).join("\n")}\n`;
}
