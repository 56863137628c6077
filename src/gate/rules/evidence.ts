/**
 * Per-task evidence of the paired rule, pure. Two kinds, kept apart on purpose:
 *
 * - The *bet* (e-value): on a pair of runs of one task made in the same batch, the candidate's and the
 *   incumbent's rewards are exchangeable when the edit changed nothing, so a factor 2·σ(κ·d) of their
 *   difference d has mean 1 whatever the task's rate. The incumbent's history only chooses κ and how much
 *   to bet on each task; a stale history costs power, never validity.
 * - The *belief* (posterior): did this task get fixed, broken, or stay? The incumbent's history (weighted
 *   by the drift check) and its fresh runs are the reference. It orders re-runs, stops losers early and
 *   states the expected change of the mean with its uncertainty; it never accepts on its own.
 */
import type { Counts } from "./bayes-stats.ts";
import { lbeta, type RewardModel } from "./reward-model.ts";

export interface EvidenceParams {
  /** A task whose incumbent mean is below this can be fixed; above `breakAbove`, broken. */
  fixBelow: number;
  breakAbove: number;
  /**
   * Shapes an edit that changes anything may take: the share of the eligible tasks it fixes and the share
   * it breaks, weighted a priori by `shapePrior` (no lean up or down). A mix of sizes and of trades keeps the
   * posterior honest about how much changed: with one fixed share, a big fix would be read as a small one.
   */
  shapes: { fix: number; break: number }[];
  /** Shares of the fixable tasks the e-value bets were fixed (a mixture over them: e-values average). */
  betShares: number[];
  /** Where a fix is assumed to take a task, as a share of its room up (κ of the bet). */
  betReach: number;
  /** Most the bet stakes on one pair: the factor stays within [2(1−θ), 2θ]. */
  thetaMax: number;
}

/** A fix takes a task this share of the way up (a break: down); averaged over all four. */
const STEPS = [0.3, 0.55, 0.8, 0.95];

/** The incumbent's mean on a task, as a Beta in pseudo-runs. */
export interface Belief {
  a: number;
  b: number;
}

/** Sums of rewards in reward units: s = Σr, f = Σ(1 − r). */
export type Sums = Counts;

export const mean = (b: Belief): number => b.a / (b.a + b.b);

/** How much of a task's history to believe (the drift check): its weight, and the shift to move the rest by. */
export interface HistoryView {
  weight: number;
  /** Logit shift of the world since the history was measured; the history not kept whole is moved by it. */
  shift: number;
}

/** The history moved by the world's shift keeps this much of its weight: its ranking of tasks still tells. */
const SHIFTED_TRUST = 0.5;

/** The history as far as the drift check keeps it: the rest moved by the world's shift and half trusted. */
export function keptHistory(history: Sums | undefined, view: HistoryView): Sums {
  const hs = history?.s ?? 0;
  const hf = history?.f ?? 0;
  const n = hs + hf;
  if (view.weight >= 1 || view.shift === 0 || n <= 0) return { s: view.weight * hs, f: view.weight * hf };
  const mu = (hs + 0.5) / (n + 1);
  const moved = 1 / (1 + Math.exp(-(Math.log(mu / (1 - mu)) + view.shift)));
  const k = (1 - view.weight) * SHIFTED_TRUST * n;
  return { s: view.weight * hs + k * moved, f: view.weight * hf + k * (1 - moved) };
}

/** The incumbent's belief on a task: prior, the history the drift check keeps, fresh runs in full. */
export function belief(model: RewardModel, history: Sums | undefined, view: HistoryView, fresh?: Sums): Belief {
  const w = 1 / model.dispersion;
  const kept = keptHistory(history, view);
  return {
    a: model.prior.a + w * (kept.s + (fresh?.s ?? 0)),
    b: model.prior.b + w * (kept.f + (fresh?.f ?? 0)),
  };
}

/** What one task's runs say, before the edit's shape is weighed in. */
export interface TaskEvidence {
  fixable: boolean;
  breakable: boolean;
  /** log of the mean likelihood ratio of the candidate's runs, "fixed" (or "broken") against "unchanged". */
  fixLog: number;
  breakLog: number;
  /** Change of the task's mean if fixed (broken), posterior-weighted over how far, and its square. */
  up: number;
  up2: number;
  down: number;
  down2: number;
  /** The incumbent's mean on the task (its belief, fresh runs included). */
  mu: number;
}

export function logSumExp(xs: readonly number[]): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of xs) if (x > m) m = x;
  if (m === Number.NEGATIVE_INFINITY) return m;
  let sum = 0;
  for (const x of xs) sum += Math.exp(x - m);
  return m + Math.log(sum);
}

/** Mean likelihood ratio over the levels qs (log), and each level's posterior weight. */
function alternatives(s: number, f: number, l0: number, qs: number[]): { log: number; weights: number[] } {
  const logs = qs.map((q) => s * Math.log(q) + f * Math.log(1 - q) - l0);
  const log = logSumExp(logs) - Math.log(qs.length);
  return { log, weights: logs.map((l) => Math.exp(l - log) / qs.length) };
}

export function taskEvidence(model: RewardModel, inc: Belief, cand: Sums, p: EvidenceParams): TaskEvidence {
  const w = 1 / model.dispersion;
  const mu = mean(inc);
  const s = w * cand.s;
  const f = w * cand.f;
  // "Unchanged": the candidate's runs come from the incumbent's own (uncertain) mean.
  const l0 = lbeta(inc.a + s, inc.b + f) - lbeta(inc.a, inc.b);
  const ups = STEPS.map((u) => Math.min(0.995, mu + (1 - mu) * u));
  const downs = STEPS.map((u) => Math.max(0.005, mu * (1 - u)));
  const fixed = alternatives(s, f, l0, ups);
  const broken = alternatives(s, f, l0, downs);
  let up = 0;
  let up2 = 0;
  let down = 0;
  let down2 = 0;
  for (let k = 0; k < STEPS.length; k++) {
    const u = ups[k]! - mu;
    const d = downs[k]! - mu;
    up += fixed.weights[k]! * u;
    up2 += fixed.weights[k]! * u * u;
    down += broken.weights[k]! * d;
    down2 += broken.weights[k]! * d * d;
  }
  return {
    fixable: mu < p.fixBelow,
    breakable: mu > p.breakAbove,
    fixLog: fixed.log,
    breakLog: broken.log,
    up,
    up2,
    down,
    down2,
    mu,
  };
}

export interface TaskChange {
  /** Posterior P(fixed), P(broken), and the task's expected change with its sd (the edit's shape weighed in). */
  rFix: number;
  rBreak: number;
  mean: number;
  sd: number;
}

export interface ChangeSummary {
  /** P(the edit changed anything), the posterior expected change of the mean, its sd, P(mean improved). */
  pChanged: number;
  meanDelta: number;
  sdDelta: number;
  pImproved: number;
}

const MEAN_STEP = STEPS.reduce((a, b) => a + b, 0) / STEPS.length;

/**
 * The shapes' prior weights: as close to equal as can be (least KL divergence, an exponential tilt) while an
 * edit that changes anything is a priori as likely to lower the mean as to raise it. With equal weights, on a
 * mostly failing benchmark every fix shape moves the mean far more than a break shape (more room up than
 * down), so the prior expected an edit to gain several points and read the noise of unchanged tasks as
 * fixes: a net-negative trade passed the guard. Uses the incumbent's beliefs only, never the candidate's runs.
 */
export function shapePrior(evidence: readonly TaskEvidence[], p: EvidenceParams, scale: number): number[] {
  let up = 0;
  let down = 0;
  for (const e of evidence) {
    if (e.fixable) up += (1 - e.mu) * MEAN_STEP;
    if (e.breakable) down += scale * e.mu * e.mu * MEAN_STEP;
  }
  const change = p.shapes.map((s) => s.fix * up - s.break * down);
  const tilted = (lambda: number): number[] => {
    const z = logSumExp(change.map((c) => -lambda * c));
    return change.map((c) => Math.exp(-lambda * c - z));
  };
  const drift = (lambda: number): number => tilted(lambda).reduce((a, w, j) => a + w * change[j]!, 0);
  // The prior mean change falls as lambda rises; when every shape moves the mean one way, lean to the least.
  const bound = 50 / Math.max(1e-9, ...change.map(Math.abs));
  let lo = -bound;
  let hi = bound;
  if (drift(lo) < 0) return tilted(lo);
  if (drift(hi) > 0) return tilted(hi);
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (drift(mid) > 0) lo = mid;
    else hi = mid;
  }
  return tilted((lo + hi) / 2);
}

/**
 * A break needs a pass to lose: within a shape, the chance that a task was broken is in proportion to the
 * incumbent's mean on it (the shape's share on average over the breakable tasks). Spread evenly, a shape's
 * breaks landed mostly on tasks that rarely pass, where a break is worth little, and the breaks of the tasks
 * that do pass (a trade's) read as noise. Fixes stay spread evenly over the fixable tasks: what a fix is worth
 * already grows with its room. Returns the factor on a task's mean.
 */
export function breakScale(evidence: readonly TaskEvidence[]): number {
  let sum = 0;
  let n = 0;
  for (const e of evidence) {
    if (!e.breakable) continue;
    sum += e.mu;
    n += 1;
  }
  return sum > 0 ? n / sum : 1;
}

/**
 * The edit's change of the mean over all `tasks` (tasks without evidence sit at their prior), mixing over
 * "nothing changed" and the shapes (weights from `shapePrior`), each weighed by how well it explains every
 * task's runs.
 */
export function summarize(
  evidence: readonly TaskEvidence[],
  tasks: number,
  p: EvidenceParams & { priorChanged: number },
): { summary: ChangeSummary; perTask: TaskChange[] } {
  const k = p.shapes.length;
  const t = evidence.length;
  // Per shape and task: P(fixed), P(broken), E[change], E[change²], under that shape.
  const rf = new Float64Array(k * t);
  const rb = new Float64Array(k * t);
  const m1 = new Float64Array(k * t);
  const m2 = new Float64Array(k * t);
  const logW = new Float64Array(k);
  const shapeMean = new Float64Array(k);
  const shapeVar = new Float64Array(k);
  const scale = breakScale(evidence);
  const prior = shapePrior(evidence, p, scale);
  for (let j = 0; j < k; j++) {
    const shape = p.shapes[j]!;
    let logG = 0;
    let m = 0;
    let v = 0;
    for (let i = 0; i < t; i++) {
      const e = evidence[i]!;
      const pi = e.fixable ? shape.fix : 0;
      // "Unchanged" stays possible on every task, however likely a break.
      const beta = e.breakable ? Math.min(0.95 - pi, shape.break * scale * e.mu) : 0;
      // log((1−π−β) + π·RF + β·RB), computed against its largest term.
      const a0 = Math.log(Math.max(1e-12, 1 - pi - beta));
      const a1 = pi > 0 ? Math.log(pi) + e.fixLog : Number.NEGATIVE_INFINITY;
      const a2 = beta > 0 ? Math.log(beta) + e.breakLog : Number.NEGATIVE_INFINITY;
      const top = Math.max(a0, a1, a2);
      const g = top + Math.log(Math.exp(a0 - top) + Math.exp(a1 - top) + Math.exp(a2 - top));
      const x = j * t + i;
      rf[x] = Math.exp(a1 - g);
      rb[x] = Math.exp(a2 - g);
      m1[x] = rf[x]! * e.up + rb[x]! * e.down;
      m2[x] = rf[x]! * e.up2 + rb[x]! * e.down2;
      logG += g;
      m += m1[x]!;
      v += Math.max(0, m2[x]! - m1[x]! ** 2);
    }
    logW[j] = Math.log(p.priorChanged * prior[j]!) + logG;
    shapeMean[j] = m / tasks;
    shapeVar[j] = v / (tasks * tasks);
  }
  const norm = logSumExp([Math.log(1 - p.priorChanged), ...logW]);
  const w = [...logW].map((l) => Math.exp(l - norm));
  let meanDelta = 0;
  let second = 0;
  let pImproved = 0;
  for (let j = 0; j < k; j++) {
    const m = shapeMean[j]!;
    const v = shapeVar[j]!;
    meanDelta += w[j]! * m;
    second += w[j]! * (v + m * m);
    pImproved += w[j]! * (v > 0 ? normalCdf(m / Math.sqrt(v)) : m > 0 ? 1 : 0);
  }
  const perTask: TaskChange[] = [];
  for (let i = 0; i < t; i++) {
    let rFix = 0;
    let rBreak = 0;
    let m = 0;
    let s2 = 0;
    for (let j = 0; j < k; j++) {
      const x = j * t + i;
      rFix += w[j]! * rf[x]!;
      rBreak += w[j]! * rb[x]!;
      m += w[j]! * m1[x]!;
      s2 += w[j]! * m2[x]!;
    }
    perTask.push({ rFix, rBreak, mean: m, sd: Math.sqrt(Math.max(0, s2 - m * m)) });
  }
  const pChanged = w.reduce((a, b) => a + b, 0);
  const sdDelta = Math.sqrt(Math.max(0, second - meanDelta * meanDelta));
  return { summary: { pChanged, meanDelta, sdDelta, pImproved }, perTask };
}

/** What the e-value stakes on a task, fixed before its first pair: whether it bets at all, and the scale κ. */
export interface Bet {
  eligible: boolean;
  kappa: number;
}

const logit = (x: number): number => Math.log(x / (1 - x));

export function betOn(model: RewardModel, inc: Belief, p: EvidenceParams): Bet {
  const mu = Math.min(0.99, Math.max(0.01, mean(inc)));
  if (mu >= p.fixBelow) return { eligible: false, kappa: 0 };
  const reach = Math.min(0.995, mu + (1 - mu) * p.betReach);
  return { eligible: true, kappa: (logit(reach) - logit(mu)) / model.dispersion };
}

/**
 * log of the factor one pair adds to the task's running product: 2·σ(κ·(candidate − incumbent)), kept
 * within [2(1−θ), 2θ]. Its mean is 1 when the two runs are exchangeable, for any κ. A missing reward
 * (infrastructure error) on either side counts as the worst for the candidate and never raises the factor.
 */
export function pairLogFactor(bet: Bet, candidate: number | null, incumbent: number | null, thetaMax: number): number {
  if (!bet.eligible) return 0;
  const c = candidate ?? 0;
  const x = incumbent ?? 1;
  const theta = 1 / (1 + Math.exp(-bet.kappa * (c - x)));
  const factor = 2 * Math.min(thetaMax, Math.max(1 - thetaMax, theta));
  return Math.log(candidate === null || incumbent === null ? Math.min(1, factor) : factor);
}

/**
 * The arm's e-value from each paired eligible task's log product of pair factors: for each share π the
 * product over tasks of (1 − π + π·product), averaged over the shares. Each term has mean 1 under "no
 * change" (the tasks' pairs are independent, each factor has mean 1), so their average does too.
 */
export function armLogE(pairsLog: readonly number[], shares: readonly number[]): number {
  const terms = shares.map((pi) => {
    let sum = -Math.log(shares.length);
    for (const l of pairsLog) sum += logSumExp([Math.log(1 - pi), Math.log(pi) + l]);
    return sum;
  });
  return logSumExp(terms);
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; ample for a decision threshold). */
export function normalCdf(z: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(z)) / Math.SQRT2);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-(z * z) / 2);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}
