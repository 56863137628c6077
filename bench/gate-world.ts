/**
 * Simulated benchmarks with known truth, for measuring gate rules. A task has a hidden success rate p (drawn
 * from a pass-rate mix) and two reward levels: a run succeeds with probability p and scores `hi`, else `lo`
 * (binary: 0 and 1; three-level: two of 0, 0.5, 1; continuous: levels anywhere, plus jitter). An edit moves
 * the success rates; its true effect is the change of the mean reward over the tasks.
 */
import { prng } from "../src/benchmark/split.ts";

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  random(): number {
    return this.next();
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)] as T;
  }
  uniform(a: number, b: number): number {
    return a + (b - a) * this.random();
  }
  gauss(mu: number, sigma: number): number {
    const u = 1 - this.random();
    return mu + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
    }
    return xs;
  }
}

export type RewardKind = "binary" | "levels" | "continuous";

/** Pass-rate mixes: the one the `bayes` defaults were tuned on, a flat one, and a mostly failing one. */
export const MIXES = {
  bimodal: [0.92, 0.92, 0.15, 0.5, 0.6],
  flat: [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9],
  failing: [0.02, 0.05, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6],
} as const;
export type MixName = keyof typeof MIXES;

export interface Task {
  p: number;
  lo: number;
  hi: number;
}

/** Three-level tasks: most give partial credit on failure or top out at partial credit. */
const LEVEL_PAIRS: [number, number][] = [
  [0, 1],
  [0, 0.5],
  [0.5, 1],
];
/** Jitter of a continuous reward around its level. */
const JITTER = 0.04;

export function makeTasks(n: number, mix: MixName, kind: RewardKind, rng: Rng): Task[] {
  return Array.from({ length: n }, () => {
    const p = rng.pick(MIXES[mix]);
    if (kind === "binary") return { p, lo: 0, hi: 1 };
    if (kind === "levels") {
      const [lo, hi] = rng.pick(LEVEL_PAIRS);
      return { p, lo, hi };
    }
    // Partial credit: a failed run still scores something, a successful one is not always perfect.
    const lo = rng.uniform(0.05, 0.6);
    return { p, lo, hi: Math.min(1, lo + rng.uniform(0.15, 0.45)) };
  });
}

export const taskMean = (t: Task): number => t.lo + t.p * (t.hi - t.lo);
export const meanOf = (ts: readonly Task[]): number => ts.reduce((a, t) => a + taskMean(t), 0) / ts.length;

/** One run of a task; `shift` lowers the success rate (a degraded hour). */
export function draw(t: Task, kind: RewardKind, rng: Rng, shift = 0): number {
  const r = rng.random() < Math.max(0, t.p - shift) ? t.hi : t.lo;
  if (kind !== "continuous") return r;
  return Math.min(1, Math.max(0, r + rng.gauss(0, JITTER)));
}

const withP = (ts: readonly Task[], f: (t: Task, i: number) => number): Task[] =>
  ts.map((t, i) => ({ ...t, p: f(t, i) }));

/** Raises random usually-failing tasks to 0.95 until the mean reward rose by `size`. */
export function fix(ts: readonly Task[], rng: Rng, size: number): Task[] {
  const out = ts.map((t) => ({ ...t }));
  let need = size * ts.length;
  for (const i of rng.shuffle(out.map((_, i) => i).filter((i) => out[i]!.p < 0.9 && out[i]!.hi > out[i]!.lo))) {
    if (need <= 1e-9) break;
    const t = out[i]!;
    const dp = Math.min(0.95 - t.p, need / (t.hi - t.lo));
    t.p += dp;
    need -= dp * (t.hi - t.lo);
  }
  return out;
}

/** Lowers random usually-passing tasks to 0.05 until the mean reward fell by `size`. */
export function harm(ts: readonly Task[], rng: Rng, size: number): Task[] {
  const out = ts.map((t) => ({ ...t }));
  let need = size * ts.length;
  for (const i of rng.shuffle(out.map((_, i) => i).filter((i) => out[i]!.p > 0.1 && out[i]!.hi > out[i]!.lo))) {
    if (need <= 1e-9) break;
    const t = out[i]!;
    const dp = Math.min(t.p - 0.05, need / (t.hi - t.lo));
    t.p -= dp;
    need -= dp * (t.hi - t.lo);
  }
  return out;
}

export const neutral = (ts: readonly Task[], rng: Rng): Task[] =>
  withP(ts, (t) => Math.min(0.98, Math.max(0.02, t.p + rng.gauss(0, 0.03))));

/** A thin improvement: every task's success rate up by the same amount, until the mean rose by `size`. */
export function thin(ts: readonly Task[], size: number): Task[] {
  const out = ts.map((t) => ({ ...t }));
  let need = size * ts.length;
  for (let round = 0; round < 50 && need > 1e-9; round++) {
    const room = out.filter((t) => t.p < 0.97 && t.hi > t.lo);
    if (room.length === 0) break;
    const step = need / room.reduce((a, t) => a + (t.hi - t.lo), 0);
    for (const t of room) {
      const dp = Math.min(0.97 - t.p, step);
      t.p += dp;
      need -= dp * (t.hi - t.lo);
    }
  }
  return out;
}

/**
 * A trade: breaks 12% of the tasks (the most reliable ones) and fixes up to 9% among the usually failing
 * ones, as many as keep the mean `net` (about 2 points) below where it was.
 */
export function trade(ts: readonly Task[], rng: Rng, net = 0.02): Task[] {
  const n = ts.length;
  const out = ts.map((t) => ({ ...t }));
  const idx = rng.shuffle(out.map((_, i) => i).filter((i) => out[i]!.hi > out[i]!.lo));
  const breaks = [...idx].sort((a, b) => out[b]!.p - out[a]!.p).slice(0, Math.max(1, Math.round(0.12 * n)));
  let room = -net * n;
  for (const i of breaks) {
    const t = out[i]!;
    room += (t.p - 0.05) * (t.hi - t.lo);
    t.p = 0.05;
  }
  const fixes = idx.filter((i) => out[i]!.p < 0.5 && !breaks.includes(i)).slice(0, Math.max(1, Math.round(0.09 * n)));
  for (const i of fixes) {
    const t = out[i]!;
    if (room <= 1e-9) break;
    const dp = Math.min(0.95 - t.p, room / (t.hi - t.lo));
    t.p += dp;
    room -= dp * (t.hi - t.lo);
  }
  return out;
}

/** Train-only: fixes up to `share` of the train tasks the incumbent just failed; nothing else changes. */
export function trainOnly(train: readonly Task[], failed: readonly number[], rng: Rng, share = 0.15): Task[] {
  const out = train.map((t) => ({ ...t }));
  for (const i of rng.shuffle([...failed]).slice(0, Math.round(share * train.length))) out[i]!.p = 0.95;
  return out;
}

export type EditKind = "neutral" | "fix" | "thin" | "trade" | "trainOnly" | "harmful";

/** The size of a fix edit (`--fix`): 7.5 points by default, 8 for the issues' graded figures. */
export const editSizes = { fix: 0.075 };

export interface Edit {
  kind: EditKind;
  test: Task[];
  train: Task[];
}

/** An edit of the given kind, acting on held-out and train tasks alike (train-only: on train only). */
export function makeEdit(
  kind: EditKind,
  test: readonly Task[],
  train: readonly Task[],
  trainFailed: readonly number[],
  rng: Rng,
  fixSize = editSizes.fix,
): Edit {
  switch (kind) {
    case "neutral":
      return { kind, test: neutral(test, rng), train: neutral(train, rng) };
    case "fix":
      return { kind, test: fix(test, rng, fixSize), train: fix(train, rng, fixSize) };
    case "thin":
      return { kind, test: thin(test, 0.03), train: thin(train, 0.03) };
    case "trade":
      return { kind, test: trade(test, rng), train: trade(train, rng) };
    case "trainOnly":
      return { kind, test: test.map((t) => ({ ...t })), train: trainOnly(train, trainFailed, rng) };
    case "harmful": {
      const d = rng.uniform(0.03, 0.08);
      return { kind, test: harm(test, rng, d), train: harm(train, rng, d) };
    }
  }
}
