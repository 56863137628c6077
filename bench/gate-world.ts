/**
 * A simulated benchmark with known truth, for measuring gate rules: tasks with hidden pass rates, edits that
 * are neutral (small per-task noise), good (+5 points: a few usually-failing tasks fixed) or harmful (−3..−8
 * points: a few usually-passing tasks broken). The candidate's and the incumbent's train runs of each
 * iteration are free, as in the loop. The gate rules measured are the project's real decision code.
 */
import {
  type BayesParams,
  type Counts,
  DEFAULT_BAYES,
  fitPrior,
  type History,
  prng,
  runGateSync,
  updateHistories,
} from "../src/gate/rule/bayes.ts";

const POOL = [0.92, 0.92, 0.15, 0.5, 0.6];

class Rng {
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
    const v = this.random();
    return mu + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
    }
    return xs;
  }
}

const makeTasks = (n: number, rng: Rng): number[] => Array.from({ length: n }, () => rng.pick(POOL));

function improve(ps: number[], rng: Rng, delta: number): number[] {
  const out = [...ps];
  let need = delta * out.length;
  const idx = rng.shuffle(
    out
      .map((p, i) => [p, i] as const)
      .filter(([p]) => p < 0.9)
      .map(([, i]) => i),
  );
  for (const i of idx) {
    if (need <= 0) break;
    const gain = Math.min(0.95 - (out[i] as number), need);
    out[i] = (out[i] as number) + gain;
    need -= gain;
  }
  return out;
}

function harm(ps: number[], rng: Rng, delta: number): number[] {
  const out = [...ps];
  let need = delta * out.length;
  const idx = rng.shuffle(
    out
      .map((p, i) => [p, i] as const)
      .filter(([p]) => p > 0.1)
      .map(([, i]) => i),
  );
  for (const i of idx) {
    if (need <= 0) break;
    const d = Math.min((out[i] as number) - 0.05, need);
    out[i] = (out[i] as number) - d;
    need -= d;
  }
  return out;
}

const neutral = (ps: number[], rng: Rng): number[] =>
  ps.map((p) => Math.min(0.98, Math.max(0.02, p + rng.gauss(0, 0.03))));

export type RuleName = "original" | "bayes";

export interface WorldOptions {
  n: number;
  iterations: number;
  /** Shares of good and harmful edits; the rest are neutral. */
  good: number;
  harmful: number;
  params?: BayesParams;
}

export interface SeedStats {
  falseAccepts: number;
  neutrals: number;
  trueAccepts: number;
  goods: number;
  harmfulAccepts: number;
  harmfuls: number;
  gain: number;
  testRuns: number;
}

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** One seeded run of `iterations` gates with the given rule. */
export function runWorld(rule: RuleName, seed: number, o: WorldOptions): SeedStats {
  const world = new Rng(seed);
  const measure = new Rng(seed * 7919 + 1);
  const { n } = o;
  const testIds = ids(n, "t");
  const trainIds = ids(n, "r");
  let inc = makeTasks(n, world);
  let incT = makeTasks(n, world);
  const start = inc.reduce((a, b) => a + b, 0) / n;
  let testRuns = 0;
  const bern = (p: number) => (measure.random() < p ? 1 : 0);
  const st: SeedStats = {
    falseAccepts: 0,
    neutrals: 0,
    trueAccepts: 0,
    goods: 0,
    harmfulAccepts: 0,
    harmfuls: 0,
    gain: 0,
    testRuns: 0,
  };

  // Baseline: one run of every held-out task.
  const baseline = inc.map((p) => {
    testRuns += 1;
    return bern(p);
  });
  let best = baseline.reduce<number>((a, b) => a + b, 0) / n;
  let histTest: History = Object.fromEntries(
    testIds.map((id, i) => [id, { s: baseline[i] ?? 0, f: 1 - (baseline[i] ?? 0) }]),
  );
  let histTrain: History = {};
  const params = o.params ?? DEFAULT_BAYES;

  for (let it = 1; it <= o.iterations; it++) {
    const u = world.random();
    let kind: "good" | "harm" | "neutral";
    let cand: number[];
    let candT: number[];
    if (u < o.good) {
      kind = "good";
      cand = improve(inc, world, 0.05);
      candT = improve(incT, world, 0.05);
    } else if (u < o.good + o.harmful) {
      kind = "harm";
      const d = world.uniform(0.03, 0.08);
      cand = harm(inc, world, d);
      candT = harm(incT, world, d);
    } else {
      kind = "neutral";
      cand = neutral(inc, world);
      candT = neutral(incT, world);
    }
    const gain = (cand.reduce((a, b) => a + b, 0) - inc.reduce((a, b) => a + b, 0)) / n;
    const trainInc = incT.map(bern);
    const trainCand = candT.map(bern);

    let accepted: boolean;
    if (rule === "original") {
      let s = 0;
      for (const p of cand) {
        s += bern(p);
        testRuns += 1;
      }
      const v = s / n;
      accepted = v >= best;
      if (accepted) best = Math.max(best, v);
    } else {
      const withInc: History = { ...histTrain };
      trainIds.forEach((id, i) => {
        const h = withInc[id] ?? { s: 0, f: 0 };
        withInc[id] = { s: h.s + (trainInc[i] ?? 0), f: h.f + 1 - (trainInc[i] ?? 0) };
      });
      const trainCandidate = Object.fromEntries(trainIds.map((id, i) => [id, trainCand[i] ?? 0]));
      const index = new Map(testIds.map((id, i) => [id, i]));
      const state = runGateSync(
        {
          params: { ...params, ...fitPrior([histTest, withInc], params) },
          testIds,
          orderSeed: Math.floor(measure.random() * 2 ** 31),
          trials: 1,
          histTest,
          histTrain: withInc,
          trainCandidate,
          testRunsSoFar: testRuns,
          iteration: it,
          infraLimit: 0.2,
        },
        (who, taskId) => bern(((who === "candidate" ? cand : inc)[index.get(taskId) as number] as number) ?? 0),
      );
      testRuns += state.testRuns;
      accepted = state.decision?.accept ?? false;
      const trainCounts: Record<string, Counts> = Object.fromEntries(
        trainIds.map((id, i) => [id, { s: trainCand[i] ?? 0, f: 1 - (trainCand[i] ?? 0) }]),
      );
      const next = updateHistories(state, accepted, trainCounts);
      histTest = next.test;
      histTrain = accepted ? next.train : withInc;
    }

    if (kind === "good") {
      st.goods += 1;
      st.trueAccepts += accepted ? 1 : 0;
    } else if (kind === "harm") {
      st.harmfuls += 1;
      st.harmfulAccepts += accepted ? 1 : 0;
    } else if (gain <= 0.005) {
      st.neutrals += 1;
      st.falseAccepts += accepted ? 1 : 0;
    }
    if (accepted) {
      inc = cand;
      incT = candT;
    }
  }
  st.gain = inc.reduce((a, b) => a + b, 0) / n - start;
  st.testRuns = testRuns;
  return st;
}

export interface Summary {
  falseAccept: number;
  trueAccept: number;
  harmfulAccept: number;
  gain: number;
  gainSe: number;
  testRuns: number;
}

export function evaluate(rule: RuleName, seeds: number, o: WorldOptions, seed0 = 0): Summary {
  let fa = 0;
  let nb = 0;
  let ta = 0;
  let ng = 0;
  let ha = 0;
  let nh = 0;
  const gains: number[] = [];
  const runs: number[] = [];
  for (let s = seed0; s < seed0 + seeds; s++) {
    const st = runWorld(rule, s, o);
    fa += st.falseAccepts;
    nb += st.neutrals;
    ta += st.trueAccepts;
    ng += st.goods;
    ha += st.harmfulAccepts;
    nh += st.harmfuls;
    gains.push(st.gain);
    runs.push(st.testRuns);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const g = mean(gains);
  const sd = Math.sqrt(mean(gains.map((x) => (x - g) ** 2)));
  return {
    falseAccept: fa / Math.max(1, nb),
    trueAccept: ta / Math.max(1, ng),
    harmfulAccept: nh ? ha / nh : Number.NaN,
    gain: g,
    gainSe: sd / Math.sqrt(gains.length),
    testRuns: mean(runs),
  };
}
