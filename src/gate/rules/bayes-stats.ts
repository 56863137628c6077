/**
 * The Bayesian gate's statistics, pure: per-task "was this task fixed (or broken)?" evidence against the
 * incumbent's per-task pass/fail history, the posterior over good / bad / neutral, the expected gain, and
 * the prior fitted to the histories. The sequential procedure over them is bayes-core.ts.
 */
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

/** The summed log factors of some tasks' evidence. */
export const sumEv = (evs: Iterable<Evidence>): { lg: number; lb: number } => {
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
