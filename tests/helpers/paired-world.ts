/**
 * A small world with known truth for the paired rule's tests: tasks with success rates and reward levels,
 * a baseline, and the setup a shell would build from it.
 */
import { prng } from "../../src/benchmark/split.ts";
import type { Sums } from "../../src/gate/rules/evidence.ts";
import { DEFAULT_PAIRED, type PairedSetup } from "../../src/gate/rules/paired.ts";
import { fitRewardModel } from "../../src/gate/rules/reward-model.ts";
import { INCUMBENT, type Run } from "../../src/gate/rules/types.ts";

export interface Task {
  p: number;
  lo: number;
  hi: number;
}

export const ids = (n: number, prefix = "t") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

export function draw(t: Task, random: () => number, shift = 0): number {
  return random() < Math.max(0, t.p - shift) ? t.hi : t.lo;
}

export const sums = (xs: number[]): Sums => ({
  s: xs.reduce((a, b) => a + b, 0),
  f: xs.reduce((a, b) => a + 1 - b, 0),
});

/** Half the tasks usually fail, half usually pass; `levels` gives deterministic partial credit instead. */
export function tasks(n: number, kind: "binary" | "levels" = "binary"): Task[] {
  return Array.from({ length: n }, (_, i) =>
    kind === "binary"
      ? { p: i % 2 ? 0.92 : 0.1, lo: 0, hi: 1 }
      : // A partial-credit task: always 0.5 unless fixed (then 1), or always 1 unless broken (then 0.5).
        { p: i % 2 ? 0.97 : 0.03, lo: 0.5, hi: 1 },
  );
}

export interface WorldSetup {
  setup: PairedSetup;
  run: (r: Run) => number | null;
}

/**
 * The setup a shell builds: two baseline runs of train and one of held-out (`badHour`: the baseline measured
 * that much lower), this iteration's incumbent and candidate train runs, and an oracle for held-out runs.
 */
export function world(o: {
  seed: number;
  test: Task[];
  candidate: Task[];
  train?: Task[];
  trainCandidate?: Task[];
  badHour?: number;
  alpha?: number;
  candidates?: string[];
  arms?: Record<string, Task[]>;
  maxRuns?: number;
}): WorldSetup {
  const random = prng(o.seed);
  const train = o.train ?? o.test;
  const shift = o.badHour ?? 0;
  const testIds = ids(o.test.length);
  const trainIds = ids(train.length, "r");
  const runs: Record<string, number[]> = {};
  trainIds.forEach((id, i) => {
    runs[id] = [draw(train[i]!, random, shift), draw(train[i]!, random, shift)];
  });
  testIds.forEach((id, i) => {
    runs[id] = [draw(o.test[i]!, random, shift)];
  });
  const candidates = o.candidates ?? ["c"];
  const arms: Record<string, Task[]> = { [INCUMBENT]: o.test, ...(o.arms ?? { c: o.candidate }) };
  const trainCand = o.trainCandidate ?? train;
  const setup: PairedSetup = {
    candidates,
    taskIds: testIds,
    orderSeed: o.seed,
    trialBase: 100,
    model: fitRewardModel(runs),
    history: {
      test: Object.fromEntries(testIds.map((id) => [id, sums(runs[id]!)])),
      train: Object.fromEntries(trainIds.map((id) => [id, sums(runs[id]!)])),
    },
    train: {
      incumbent: Object.fromEntries(trainIds.map((id, i) => [id, draw(train[i]!, random)])),
      candidates: Object.fromEntries(
        candidates.map((c) => [c, Object.fromEntries(trainIds.map((id, i) => [id, draw(trainCand[i]!, random)]))]),
      ),
    },
    alpha: o.alpha ?? 0.01,
    maxRuns: o.maxRuns ?? 4 * o.test.length,
    infraLimit: 0.2,
    params: DEFAULT_PAIRED,
  };
  const index = new Map(testIds.map((id, i) => [id, i]));
  return { setup, run: (r) => draw(arms[r.arm]![index.get(r.taskId)!]!, random) };
}

/** Tasks with `count` of the usually failing ones fixed (to 0.95), or of the usually passing ones broken. */
export function changed(ts: Task[], fixes: number, breaks = 0): Task[] {
  const out = ts.map((t) => ({ ...t }));
  let f = fixes;
  let b = breaks;
  for (const t of out) {
    if (t.p < 0.5 && f > 0) {
      t.p = 0.95;
      f -= 1;
    } else if (t.p > 0.5 && b > 0) {
      t.p = 0.05;
      b -= 1;
    }
  }
  return out;
}
