/**
 * The sequential Bayesian gate, pure: per-task "was this task fixed (or broken)?" evidence against the
 * incumbent's per-task history, a free first look at the train results, held-out looks at 50/75/100%, and
 * paired re-runs of the least certain task. No I/O: the shell in ../gate.ts runs what `nextAction` asks for
 * and feeds the results back with `applyResult`; the state is a fold of those results, so a resumed gate
 * replays its journaled results and continues where it stopped.
 */
import { prng } from "../../benchmark/split.ts";

export interface Counts {
  s: number;
  f: number;
}
/** Incumbent lineage's pass/fail pseudo-counts per task, one split. */
export type History = Record<string, Counts>;

export interface BayesParams {
  /** Beta prior on a task's pass rate. */
  a0: number;
  b0: number;
  /** Pass rate of a task the edit fixed / broke. */
  qFix: number;
  qBreak: number;
  /** Share of eligible tasks a good / bad edit fixes / breaks. */
  piFix: number;
  piBreak: number;
  /** Prior over edit types. */
  wNeutral: number;
  wGood: number;
  wBad: number;
  /** Reject at a look as soon as P(good) falls under this. */
  futility: number;
  /** Shares of the held-out split run at each look before the full pass; 0 is the train-only look. */
  looks: number[];
  /** After the full pass, re-run only while P(good) is inside these bands. */
  extraBand: [number, number];
  seqBand: [number, number];
  /** At most this many times N extra runs (candidate + incumbent pairs) per gate. */
  extraBudget: number;
  /** Bank: held-out runs over the whole run never exceed N * (iteration + 1 + bankSlack). null: no bank. */
  bankSlack: number | null;
  /** Accept iff P(good) > tau. */
  tau: number;
  /** Exponent on the train Bayes factor (0.5 when the proposer may overfit train). */
  trainWeight: number;
  /** On acceptance, share of the old incumbent's counts kept on tasks that did not change. */
  lambda: number;
  /** Accept only when the posterior expected gain is positive (edits that fix some tasks and break others). */
  gainGuard: boolean;
}

/** The recommended setting (B8: the core rule with the budget bank). */
export const DEFAULT_BAYES: BayesParams = {
  a0: 0.75,
  b0: 0.5,
  qFix: 0.9,
  qBreak: 0.1,
  piFix: 0.15,
  piBreak: 0.1,
  wNeutral: 0.75,
  wGood: 0.2,
  wBad: 0.05,
  futility: 0.2,
  looks: [0, 0.5, 0.75],
  extraBand: [0.2, 0.95],
  seqBand: [0.1, 0.9],
  extraBudget: 1.5,
  bankSlack: 2,
  tau: 0.55,
  trainWeight: 1,
  lambda: 0.3,
  gainGuard: true,
};

export interface Evidence {
  /** log of the good-vs-neutral / bad-vs-neutral factor of this task. */
  lg: number;
  lb: number;
  /** Posterior that the task was fixed / broken, given that the edit is good / bad. */
  rFixed: number;
  rBroken: number;
  /** Incumbent's predictive pass rate. */
  p: number;
}

const LANCZOS = [
  676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Γ(x) for x > 0 (Lanczos, g = 7): accurate to ~1e-13, which is far below what the gate resolves. */
export function lgamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  const z = x - 1;
  let a = 0.99999999999980993;
  for (let i = 0; i < LANCZOS.length; i++) a += (LANCZOS[i] as number) / (z + i + 1);
  const t = z + LANCZOS.length - 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

const lbeta = (a: number, b: number): number => lgamma(a) + lgamma(b) - lgamma(a + b);

/** Evidence that the candidate's s passes / f fails on one task mean it was fixed (or broken). */
export function taskEvidence(h: Counts | undefined, s: number, f: number, g: BayesParams = DEFAULT_BAYES): Evidence {
  const a = (h?.s ?? 0) + g.a0;
  const b = (h?.f ?? 0) + g.b0;
  const p = a / (a + b);
  const l0 = lbeta(a + s, b + f) - lbeta(a, b);
  const rf = Math.exp(s * Math.log(g.qFix) + f * Math.log(1 - g.qFix) - l0);
  const rb = Math.exp(s * Math.log(g.qBreak) + f * Math.log(1 - g.qBreak) - l0);
  // Only a task the incumbent usually fails can be fixed, only one it usually passes can be broken.
  const pf = p < g.qFix - 0.1 ? g.piFix : 0;
  const pb = p > g.qBreak + 0.1 ? g.piBreak : 0;
  const gf = 1 - pf + pf * rf;
  const gb = 1 - pb + pb * rb;
  return { lg: Math.log(gf), lb: Math.log(gb), rFixed: (pf * rf) / gf, rBroken: (pb * rb) / gb, p };
}

export interface Posterior {
  good: number;
  bad: number;
}

/** P(good), P(bad) from summed log factors (train tempered by trainWeight). */
export function posteriorOf(
  test: { lg: number; lb: number },
  train: { lg: number; lb: number },
  g: BayesParams = DEFAULT_BAYES,
): Posterior {
  const LG = test.lg + g.trainWeight * train.lg;
  const LB = test.lb + g.trainWeight * train.lb;
  const m = Math.max(0, LG, LB);
  const n = g.wNeutral * Math.exp(-m);
  const good = g.wGood * Math.exp(LG - m);
  const bad = g.wBad * Math.exp(LB - m);
  return { good: good / (n + good + bad), bad: bad / (n + good + bad) };
}

const sumEv = (evs: Iterable<Evidence>): { lg: number; lb: number } => {
  let lg = 0;
  let lb = 0;
  for (const e of evs) {
    lg += e.lg;
    lb += e.lb;
  }
  return { lg, lb };
};

export function posterior(trainEv: Evidence[], testEv: Evidence[], g: BayesParams = DEFAULT_BAYES): Posterior {
  return posteriorOf(sumEv(testEv), sumEv(trainEv), g);
}

/** Posterior expected change of the mean pass rate on the tasks observed: Σ r_fixed·(qFix−p) + r_broken·(qBreak−p). */
export function expectedGain(evs: Iterable<Evidence>, post: Posterior, g: BayesParams = DEFAULT_BAYES): number {
  let gain = 0;
  let n = 0;
  for (const e of evs) {
    gain += post.good * e.rFixed * (g.qFix - e.p) + post.bad * e.rBroken * (g.qBreak - e.p);
    n += 1;
  }
  return n === 0 ? 0 : gain / n;
}

/**
 * The Beta prior on a task's pass rate, fitted to the incumbent's own history (failure mode 3: the prior's
 * shape matters while the history is thin). Only tasks run at least twice say how much a task's runs agree
 * with each other (the intra-class correlation rho); a deterministic benchmark (rho near 1) gets a U-shaped
 * prior, so one pass on an always-failing task is strong evidence. Too few such tasks: the default prior.
 */
export function fitPrior(histories: History[], g: BayesParams = DEFAULT_BAYES): { a0: number; b0: number } {
  const tasks: Counts[] = [];
  for (const h of histories) for (const c of Object.values(h)) if (c.s + c.f >= 1.5) tasks.push(c);
  const k = tasks.length;
  if (k < 10) return { a0: g.a0, b0: g.b0 };
  const N = tasks.reduce((n, c) => n + c.s + c.f, 0);
  const mean = tasks.reduce((n, c) => n + c.s, 0) / N;
  if (mean <= 0 || mean >= 1) return { a0: g.a0, b0: g.b0 };
  let between = 0;
  let within = 0;
  let sq = 0;
  for (const c of tasks) {
    const n = c.s + c.f;
    const p = c.s / n;
    between += n * (p - mean) ** 2;
    within += n * p * (1 - p);
    sq += n * n;
  }
  const msb = between / (k - 1);
  const msw = N > k ? within / (N - k) : 0;
  const n0 = (N - sq / N) / (k - 1);
  const rho = msb + (n0 - 1) * msw > 0 ? (msb - msw) / (msb + (n0 - 1) * msw) : 0;
  const r = Math.min(0.99, Math.max(0.01, rho));
  const strength = Math.max(0.2, (1 - r) / r);
  // Only ever sharper than the default, which was tuned on a noisy benchmark: a noisier one keeps it.
  if (strength >= g.a0 + g.b0) return { a0: g.a0, b0: g.b0 };
  return { a0: mean * strength, b0: (1 - mean) * strength };
}

// ---------------------------------------------------------------- the sequential procedure

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
