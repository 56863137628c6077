import type { Reward } from "./types.ts";

export interface SplitResult {
  train: string[];
  test: string[];
  /** Infrastructure errors at baseline: in neither split. */
  excluded: string[];
  counts: { train: number; test: number; train_passing: number; test_passing: number; excluded: number };
}

/** mulberry32: small, fast and the same on every platform, which is all a reproducible split needs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Pure: a seeded train/test split stratified by baseline pass/fail, so both splits see the same
 * share of passing tasks. Ids are sorted first, so the input's key order does not matter.
 */
export function stratifiedSplit(baseline: Record<string, Reward>, seed: number, trainShare = 0.7): SplitResult {
  const ids = Object.keys(baseline).sort();
  const excluded = ids.filter((id) => baseline[id] === null);
  const passing = ids.filter((id) => typeof baseline[id] === "number" && baseline[id] >= 0.5);
  const failing = ids.filter((id) => typeof baseline[id] === "number" && baseline[id] < 0.5);
  const random = prng(seed);
  const train: string[] = [];
  const test: string[] = [];
  const stratum = (group: string[]): number => {
    const order = shuffled(group, random);
    const nTrain = Math.round(order.length * trainShare);
    train.push(...order.slice(0, nTrain));
    test.push(...order.slice(nTrain));
    return nTrain;
  };
  const trainPassing = stratum(passing);
  stratum(failing);
  train.sort();
  test.sort();
  return {
    train,
    test,
    excluded,
    counts: {
      train: train.length,
      test: test.length,
      train_passing: trainPassing,
      test_passing: passing.length - trainPassing,
      excluded: excluded.length,
    },
  };
}
