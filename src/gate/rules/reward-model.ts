/**
 * The benchmark's rewards on their own scale. A run's reward r in [0, 1] counts as r/φ passes and (1−r)/φ
 * fails of the task's mean reward, where the dispersion φ is the within-task variance over μ(1−μ): 1 for a
 * pass/fail benchmark (a run is a coin), near 0 for one whose runs of a task agree (a deterministic partial
 * score of 0.5 is not a 50% coin, so one run of it says a lot). Fitted from the incumbent's repeated runs.
 */
import { lgamma } from "./bayes-stats.ts";

export type RewardKind = "binary" | "levels" | "continuous";

export interface RewardModel {
  kind: RewardKind;
  /** The distinct rewards seen, for `levels`; empty otherwise. */
  levels: number[];
  /** Within-task variance over μ(1−μ); a run is worth 1/φ pseudo-runs of the task's mean. */
  dispersion: number;
  /** Beta prior over a task's mean reward (in pseudo-runs), fitted to how the tasks' means spread. */
  prior: { a: number; b: number };
  /** What the fit rests on, for `gate --explain`. */
  basis: { tasks: number; runs: number; repeatedTasks: number };
}

/** More distinct rewards than this and the benchmark counts as continuous. */
export const MAX_LEVELS = 6;
/** The fit needs this many tasks run at least twice; fewer, and a run counts as a coin (φ = 1). */
export const MIN_REPEATED_TASKS = 10;
const MIN_DISPERSION = 0.02;
/** A prior this weak (in pseudo-runs) when the spread of the tasks cannot be measured. */
const DEFAULT_STRENGTH = 1.25;
/**
 * Never a prior stronger than this: from two runs per task the spread of the tasks' means is measured
 * poorly, and a prior that calls every task alike makes a break of a rarely failing task invisible.
 */
export const MAX_STRENGTH = 6;

export const lbeta = (a: number, b: number): number => lgamma(a) + lgamma(b) - lgamma(a + b);

function kindOf(values: number[]): { kind: RewardKind; levels: number[] } {
  const distinct = [...new Set(values.map((v) => Math.round(v * 1e6) / 1e6))].sort((a, b) => a - b);
  if (distinct.every((v) => v === 0 || v === 1)) return { kind: "binary", levels: [] };
  if (distinct.length <= MAX_LEVELS) return { kind: "levels", levels: distinct };
  return { kind: "continuous", levels: [] };
}

/**
 * The reward model of a benchmark from the incumbent's runs per task (any split; infrastructure errors as
 * null are left out). `prepare` should run the baseline twice on at least the train split, so that enough
 * tasks have two runs to measure the within-task noise; with one run per task, φ = 1 (as noisy as a coin).
 */
export function fitRewardModel(runs: Record<string, readonly (number | null)[]>): RewardModel {
  const tasks = Object.values(runs)
    .map((xs) => xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x)))
    .filter((xs) => xs.length > 0);
  const all = tasks.flat();
  const { kind, levels } = kindOf(all);
  const repeated = tasks.filter((xs) => xs.length >= 2);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const basis = { tasks: tasks.length, runs: all.length, repeatedTasks: repeated.length };
  const m = all.length > 0 ? Math.min(0.99, Math.max(0.01, mean(tasks.map(mean)))) : 0.5;
  const fallback: RewardModel = {
    kind,
    levels,
    dispersion: 1,
    prior: { a: m * DEFAULT_STRENGTH, b: (1 - m) * DEFAULT_STRENGTH },
    basis,
  };
  if (repeated.length < MIN_REPEATED_TASKS) return fallback;

  // Within: Σ(r − r̄)² against Σ n r̄(1 − r̄), whose expectations are (n−1)φμ(1−μ) and (n−φ)μ(1−μ).
  let ss = 0;
  let spread = 0;
  let nSum = 0;
  let withinOverN = 0;
  for (const xs of repeated) {
    const r = mean(xs);
    const s = xs.reduce((a, x) => a + (x - r) ** 2, 0);
    ss += s;
    spread += xs.length * r * (1 - r);
    nSum += xs.length;
    withinOverN += s / (xs.length - 1) / xs.length;
  }
  const nBar = nSum / repeated.length;
  const ratio = spread > 0 ? ss / spread : 0;
  const fitted = (nBar * ratio) / (nBar - 1 + ratio);
  const dispersion = kind === "binary" ? 1 : Math.min(1, Math.max(MIN_DISPERSION, fitted));

  // Between: the variance of the tasks' means less what their own noise adds (method of moments).
  const means = repeated.map(mean);
  const mr = mean(means);
  const varMeans = means.reduce((a, x) => a + (x - mr) ** 2, 0) / Math.max(1, means.length - 1);
  const between = varMeans - withinOverN / repeated.length;
  const strength = between > 1e-6 ? Math.min(MAX_STRENGTH, Math.max(0.2, (m * (1 - m)) / between - 1)) : MAX_STRENGTH;
  return { kind, levels, dispersion, prior: { a: m * strength, b: (1 - m) * strength }, basis };
}

/** One line for `gate --explain`. */
export function describeRewardModel(m: RewardModel): string {
  const scale =
    m.kind === "binary"
      ? "pass/fail rewards"
      : m.kind === "levels"
        ? `rewards on ${m.levels.length} levels (${m.levels.join(", ")})`
        : "continuous rewards in [0, 1]";
  const noise =
    m.basis.repeatedTasks < MIN_REPEATED_TASKS
      ? "too few tasks run twice to measure the noise, so a run counts as a coin"
      : `a run of a task is worth ${(1 / m.dispersion).toFixed(1)} coin flips of its mean (dispersion ${m.dispersion.toFixed(3)}, from ${m.basis.repeatedTasks} tasks run twice or more)`;
  const mean = m.prior.a / (m.prior.a + m.prior.b);
  return `${scale}; ${noise}; task means spread around ${mean.toFixed(2)} (prior strength ${(m.prior.a + m.prior.b).toFixed(2)})`;
}
