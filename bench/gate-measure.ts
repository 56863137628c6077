/**
 * The figures of one rule in one world: first gates per kind of edit (each seed: a baseline, one edit, one
 * gate), and 30-iteration nights (all neutral; and a realistic mix of edits).
 */
import { type RuleName, runNight, type World } from "./gate-sim.ts";
import type { EditKind } from "./gate-world.ts";

export interface Options {
  seeds: number;
  nights: number;
  seed0: number;
  iterations: number;
}

/** A night's edits: mostly no change or harm, some fixes, some that only help the train tasks seen failing. */
export const NIGHT_MIX: [EditKind, number][] = [
  ["fix", 0.15],
  ["thin", 0.05],
  ["neutral", 0.45],
  ["harmful", 0.2],
  ["trade", 0.05],
  ["trainOnly", 0.1],
];

export interface Figures {
  /** Accept rate per first gate, by kind of edit (neutral: only edits whose true gain is ≤ 0.005). */
  accept: Partial<Record<EditKind, number>>;
  /** Held-out runs per first gate, by kind of edit. */
  runs: Partial<Record<EditKind, number>>;
  /** Accepted no-change edits per all-neutral night, and the share of nights with at least one. */
  nightFalse: number;
  nightAny: number;
  /** Realistic nights: true gain of the morning's agent, accepted edits that were no-change or harmful, runs. */
  gain: number;
  gainSe: number;
  nightBad: number;
  nightRuns: number;
}

function mixed(seed: number, iterations: number): EditKind[] {
  let x = (seed * 2654435761) >>> 0;
  const next = () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = Math.imul(x ^ (x >>> 15), x | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: iterations }, () => {
    let u = next();
    for (const [kind, p] of NIGHT_MIX) {
      if (u < p) return kind;
      u -= p;
    }
    return "neutral";
  });
}

const noChange = (kind: EditKind, gain: number) => gain <= 0.005 && kind !== "trade" && kind !== "harmful";

export function measure(rule: RuleName, w: World, kinds: readonly EditKind[], o: Options): Figures {
  const accept: Partial<Record<EditKind, number>> = {};
  const runs: Partial<Record<EditKind, number>> = {};
  for (const kind of kinds) {
    let acc = 0;
    let n = 0;
    let r = 0;
    for (let s = o.seed0; s < o.seed0 + o.seeds; s++) {
      const g = runNight(rule, w, s, [kind], o.iterations)[0]!;
      r += g.runs;
      // Only edits that truly change nothing count as neutral; a trade only when it truly loses.
      if (kind === "neutral" && g.gain > 0.005) continue;
      if (kind === "trade" && g.gain >= 0) continue;
      n += 1;
      acc += g.accepted ? 1 : 0;
    }
    accept[kind] = n > 0 ? acc / n : Number.NaN;
    runs[kind] = r / o.seeds;
  }
  let nightFalse = 0;
  let nightAny = 0;
  const gains: number[] = [];
  let nightBad = 0;
  let nightRuns = 0;
  for (let s = o.seed0; s < o.seed0 + o.nights; s++) {
    const neutralNight = runNight(rule, w, 100_000 + s, Array(o.iterations).fill("neutral"), o.iterations);
    const f = neutralNight.filter((g) => g.accepted && g.gain <= 0.005).length;
    nightFalse += f;
    nightAny += f > 0 ? 1 : 0;
    const night = runNight(rule, w, 200_000 + s, mixed(s, o.iterations), o.iterations);
    gains.push(night.reduce((a, g) => a + (g.accepted ? g.gain : 0), 0));
    nightBad += night.filter((g) => g.accepted && (noChange(g.kind, g.gain) || g.gain < -0.005)).length;
    nightRuns += night.reduce((a, g) => a + g.runs, 0);
  }
  const k = Math.max(1, o.nights);
  const gain = gains.reduce((a, b) => a + b, 0) / k;
  const sd = Math.sqrt(gains.reduce((a, x) => a + (x - gain) ** 2, 0) / k);
  return {
    accept,
    runs,
    nightFalse: nightFalse / k,
    nightAny: nightAny / k,
    gain,
    gainSe: sd / Math.sqrt(k),
    nightBad: nightBad / k,
    nightRuns: nightRuns / k,
  };
}
