/**
 * The sequential Bayesian gate, pure: a free first look at the train results, held-out looks at 50/75/100%,
 * and paired re-runs of the least certain task, over the per-task evidence of bayes-stats.ts. No I/O: the
 * shell in bayes.ts runs what `nextAction` asks for and feeds the results back with `applyResult`; the state
 * is a fold of those results, so a resumed gate replays its journaled results and continues where it stopped.
 */
import { prng } from "../../benchmark/split.ts";
import {
  type BayesParams,
  type Counts,
  type Evidence,
  expectedGain,
  type History,
  type Posterior,
  posteriorOf,
  sumEv,
  taskEvidence,
} from "./bayes-stats.ts";

// The split's generator: the order of held-out tasks must replay exactly from its seed.
export { prng };

export function seededOrder(ids: readonly string[], seed: number): string[] {
  const random = prng(seed);
  const out = [...ids].sort();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as string, out[i] as string];
  }
  return out;
}

export interface GateSetup {
  params: BayesParams;
  /** Held-out task ids (any order: the gate orders them by `orderSeed`). */
  testIds: string[];
  orderSeed: number;
  /** Candidate runs per held-out task in the first pass. */
  trials: number;
  /** Incumbent history on the held-out split, before this gate. */
  histTest: History;
  /** Incumbent history on train, including this iteration's incumbent train run. */
  histTrain: History;
  /** The candidate's train results (null: infrastructure error, counted as a fail). */
  trainCandidate: Record<string, number | null>;
  /** Held-out runs spent over the run so far (baseline included); the bank counts from it. */
  testRunsSoFar: number;
  /** Iterations of the run so far, this one included (the bank's allowance grows by N per iteration). */
  iteration: number;
  /** Largest share of held-out runs that may end in an infrastructure error before the gate refuses. */
  infraLimit: number;
}

export type Stage = "train" | "look" | "full" | "extra" | "infra";

export interface Look {
  /** Share of the held-out split run when this look was taken (0: train evidence only). */
  fraction: number;
  tasksRun: number;
  pGood: number;
  pBad: number;
}

export interface Decision {
  accept: boolean;
  stage: Stage;
  pGood: number;
  pBad: number;
  expectedGain: number;
  reason: string;
}

export type Action =
  | { kind: "run"; tasks: { taskId: string; trial: number }[] }
  | { kind: "pair"; taskId: string; index: number }
  | { kind: "decide"; decision: Decision };

export type GateResult =
  | { who: "candidate"; taskId: string; trial: number; reward: number | null }
  | { who: "pair"; taskId: string; index: number; candidate: number | null; incumbent: number | null };

export interface GateState {
  setup: GateSetup;
  order: string[];
  /** Candidate's held-out observations. */
  obs: Map<string, Counts>;
  ev: Map<string, Evidence>;
  /** Incumbent history on the held-out split, updated by this gate's paired re-runs. */
  histTest: History;
  train: { lg: number; lb: number };
  trainEv: Map<string, Evidence>;
  /** Candidate first-pass (task, trial) results received. */
  firstDone: Set<string>;
  lookIdx: number;
  looks: Look[];
  phase: "first" | "extra" | "done";
  extraBudget: number;
  pairs: number;
  testRuns: number;
  infraErrors: number;
  decision: Decision | null;
}

const trialKey = (taskId: string, trial: number): string => `${taskId}\u0000${trial}`;

function copyHistory(h: History): History {
  const out: History = {};
  for (const [k, v] of Object.entries(h)) out[k] = { s: v.s, f: v.f };
  return out;
}

function addReward(c: Counts, reward: number): void {
  c.s += reward;
  c.f += 1 - reward;
}

export function startGate(setup: GateSetup): GateState {
  const g = setup.params;
  const trainEv = new Map<string, Evidence>();
  for (const [id, r] of Object.entries(setup.trainCandidate)) {
    // As on the held-out split: an infrastructure error never helps the candidate.
    const reward = r ?? 0;
    trainEv.set(id, taskEvidence(setup.histTrain[id], reward, 1 - reward, g));
  }
  return {
    setup,
    order: seededOrder(setup.testIds, setup.orderSeed),
    obs: new Map(),
    ev: new Map(),
    histTest: copyHistory(setup.histTest),
    train: sumEv(trainEv.values()),
    trainEv,
    firstDone: new Set(),
    lookIdx: 0,
    looks: [],
    phase: "first",
    extraBudget: 0,
    pairs: 0,
    testRuns: 0,
    infraErrors: 0,
    decision: null,
  };
}

export function currentPosterior(state: GateState): Posterior {
  return posteriorOf(sumEv(state.ev.values()), state.train, state.setup.params);
}

/** Look fractions in order, the full pass (1) last. */
function lookFractions(g: BayesParams): number[] {
  return [...new Set([...g.looks.filter((f) => f >= 0 && f < 1), 1])].sort((a, b) => a - b);
}

const pct = (x: number): string => `${Math.round(x * 100)}%`;

function decide(state: GateState, stage: Stage, accept: boolean, reason: string): Action {
  const p = currentPosterior(state);
  const gain = expectedGain(state.ev.values(), p, state.setup.params);
  state.decision = { accept, stage, pGood: p.good, pBad: p.bad, expectedGain: gain, reason };
  state.phase = "done";
  return { kind: "decide", decision: state.decision };
}

function infraShare(state: GateState): number {
  return state.testRuns === 0 ? 0 : state.infraErrors / state.testRuns;
}

function mostUncertain(state: GateState): { taskId: string; u: number } | null {
  let best: { taskId: string; u: number } | null = null;
  for (const id of state.order) {
    const e = state.ev.get(id);
    if (!e) continue;
    const u = e.rFixed * (1 - e.rFixed);
    if (!best || u > best.u) best = { taskId: id, u };
  }
  return best;
}

function finalDecision(state: GateState, stage: Stage): Action {
  const g = state.setup.params;
  const p = currentPosterior(state);
  const gain = expectedGain(state.ev.values(), p, g);
  if (p.good <= g.tau) {
    return decide(state, stage, false, `P(improvement) ${p.good.toFixed(3)} is not above ${g.tau}`);
  }
  if (g.gainGuard && gain <= 0) {
    return decide(
      state,
      stage,
      false,
      `P(improvement) ${p.good.toFixed(3)} but the expected gain ${gain.toFixed(4)} is not positive (fixes and breaks)`,
    );
  }
  return decide(state, stage, true, `P(improvement) ${p.good.toFixed(3)} > ${g.tau}`);
}

/** What the shell should do next. Idempotent: asking twice without a result returns the same action. */
export function nextAction(state: GateState): Action {
  const { setup } = state;
  const g = setup.params;
  if (state.decision) return { kind: "decide", decision: state.decision };
  if (state.testRuns > 0 && infraShare(state) > setup.infraLimit) {
    return decide(
      state,
      "infra",
      false,
      `${state.infraErrors} of ${state.testRuns} held-out runs were infrastructure errors (limit ${pct(setup.infraLimit)}): no decision on this split`,
    );
  }
  const n = state.order.length;
  const fractions = lookFractions(g);
  if (state.phase === "first") {
    while (state.lookIdx < fractions.length) {
      const frac = fractions[state.lookIdx] as number;
      const upto = Math.ceil(frac * n);
      const todo: { taskId: string; trial: number }[] = [];
      for (const id of state.order.slice(0, upto))
        for (let t = 0; t < setup.trials; t++)
          if (!state.firstDone.has(trialKey(id, t))) todo.push({ taskId: id, trial: t });
      if (todo.length > 0) return { kind: "run", tasks: todo };
      // The look: every task up to here has reported.
      const p = currentPosterior(state);
      state.looks.push({ fraction: frac, tasksRun: upto, pGood: p.good, pBad: p.bad });
      state.lookIdx += 1;
      if (frac < 1 && p.good < g.futility) {
        return decide(
          state,
          frac === 0 ? "train" : "look",
          false,
          frac === 0
            ? `train evidence alone: P(improvement) ${p.good.toFixed(3)} < ${g.futility}, no held-out run spent`
            : `look at ${pct(frac)}: P(improvement) ${p.good.toFixed(3)} < ${g.futility}`,
        );
      }
    }
    if (n === 0) return decide(state, "full", false, "the held-out split is empty");
    const p = currentPosterior(state);
    if (p.good > g.extraBand[0] && p.good < g.extraBand[1] && g.extraBudget > 0) {
      let budget = Math.floor(g.extraBudget * n);
      if (g.bankSlack !== null) {
        const allowance = n * (setup.iteration + 1 + g.bankSlack) - (setup.testRunsSoFar + state.testRuns);
        budget = Math.max(0, Math.min(budget, allowance));
      }
      state.extraBudget = budget;
      state.phase = "extra";
    } else {
      return finalDecision(state, "full");
    }
  }
  // Paired re-runs of the least certain task.
  const p = currentPosterior(state);
  if (state.pairs * 2 + 2 > state.extraBudget || p.good <= g.seqBand[0] || p.good >= g.seqBand[1]) {
    return finalDecision(state, "extra");
  }
  const pick = mostUncertain(state);
  if (!pick || pick.u < 0.01) return finalDecision(state, "extra");
  return { kind: "pair", taskId: pick.taskId, index: state.pairs };
}

/** Feeds one result back. Results of actions that were not asked for are an error (a replay out of step). */
export function applyResult(state: GateState, r: GateResult): GateState {
  const g = state.setup.params;
  if (r.who === "candidate") {
    const key = trialKey(r.taskId, r.trial);
    if (state.firstDone.has(key)) return state;
    state.firstDone.add(key);
    state.testRuns += 1;
    // An infrastructure error counts as a fail: were it left out, an agent that provokes rate limits on the
    // tasks it would fail (flooding the endpoint) would leave only its good answers in the evidence.
    if (r.reward === null) state.infraErrors += 1;
    const c = state.obs.get(r.taskId) ?? { s: 0, f: 0 };
    addReward(c, r.reward ?? 0);
    state.obs.set(r.taskId, c);
    state.ev.set(r.taskId, taskEvidence(state.histTest[r.taskId], c.s, c.f, g));
    return state;
  }
  if (r.index !== state.pairs) throw new Error(`gate replay out of step: pair ${r.index}, expected ${state.pairs}`);
  state.pairs += 1;
  state.testRuns += 2;
  state.infraErrors += (r.candidate === null ? 1 : 0) + (r.incumbent === null ? 1 : 0);
  // Without the incumbent's side there is no pair; the candidate's own error is its fail, as above.
  if (r.incumbent === null) return state;
  const c = state.obs.get(r.taskId) ?? { s: 0, f: 0 };
  addReward(c, r.candidate ?? 0);
  state.obs.set(r.taskId, c);
  const h = state.histTest[r.taskId] ?? { s: 0, f: 0 };
  addReward(h, r.incumbent);
  state.histTest[r.taskId] = h;
  state.ev.set(r.taskId, taskEvidence(h, c.s, c.f, g));
  return state;
}

/** Runs the whole procedure against a synchronous oracle (the simulation bench and tests use it). */
export function runGateSync(
  setup: GateSetup,
  run: (who: "candidate" | "incumbent", taskId: string, trial: number) => number | null,
): GateState {
  const state = startGate(setup);
  for (;;) {
    const a = nextAction(state);
    if (a.kind === "decide") return state;
    if (a.kind === "run") {
      for (const t of a.tasks)
        applyResult(state, { who: "candidate", ...t, reward: run("candidate", t.taskId, t.trial) });
    } else {
      const trial = 1000 + a.index;
      const candidate = run("candidate", a.taskId, trial);
      const incumbent = run("incumbent", a.taskId, trial);
      applyResult(state, { who: "pair", taskId: a.taskId, index: a.index, candidate, incumbent });
    }
  }
}

// ---------------------------------------------------------------- history after the decision

/**
 * The incumbent histories after a gate (pure). Rejected: the held-out history keeps the incumbent's paired
 * re-runs, nothing of the candidate. Accepted: a task the candidate changed starts over from the candidate's
 * counts; every other task keeps lambda of the old counts plus the candidate's.
 */
export function updateHistories(
  state: GateState,
  accepted: boolean,
  trainCounts: Record<string, Counts>,
): { test: History; train: History } {
  const g = state.setup.params;
  if (!accepted) return { test: state.histTest, train: state.setup.histTrain };
  const forget = (hist: History, obs: Map<string, Counts> | Record<string, Counts>): History => {
    const get = (id: string) => (obs instanceof Map ? obs.get(id) : obs[id]);
    const out: History = {};
    const ids = new Set([...Object.keys(hist), ...(obs instanceof Map ? obs.keys() : Object.keys(obs))]);
    for (const id of ids) {
      const h = hist[id] ?? { s: 0, f: 0 };
      const c = get(id);
      if (!c) {
        out[id] = { s: h.s * g.lambda, f: h.f * g.lambda };
        continue;
      }
      const e = taskEvidence(h, c.s, c.f, g);
      out[id] =
        e.rFixed > 0.5 || e.rBroken > 0.5 ? { s: c.s, f: c.f } : { s: g.lambda * h.s + c.s, f: g.lambda * h.f + c.f };
    }
    return out;
  };
  return { test: forget(state.histTest, state.obs), train: forget(state.setup.histTrain, trainCounts) };
}

/** Mean reward of the candidate's held-out first-pass results (the val_score the results.tsv row shows). */
export function candidateMean(state: GateState): number | null {
  let s = 0;
  let n = 0;
  for (const c of state.obs.values()) {
    s += c.s;
    n += c.s + c.f;
  }
  return n === 0 ? null : s / n;
}
