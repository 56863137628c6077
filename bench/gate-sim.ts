/**
 * Drives gate rules through their seam (src/gate/rules/types.ts) against a simulated world (gate-world.ts):
 * a baseline, then iterations of edit → the incumbent's and the candidate's train runs (free) → the gate.
 * Every rule sees the same world and the same edits for a seed; only held-out runs are counted.
 */

import { bayesRule } from "../src/gate/rules/bayes.ts";
import { updateHistories } from "../src/gate/rules/bayes-core.ts";
import { type Counts, DEFAULT_BAYES, fitPrior, type History } from "../src/gate/rules/bayes-stats.ts";
import { originalRule } from "../src/gate/rules/original.ts";
import { type Decision, driveSync, INCUMBENT, type Run } from "../src/gate/rules/types.ts";
import { pairedAgent } from "./gate-paired.ts";
import {
  draw,
  type Edit,
  type EditKind,
  type MixName,
  makeEdit,
  makeTasks,
  meanOf,
  type RewardKind,
  Rng,
  type Task,
} from "./gate-world.ts";

export interface World {
  name: string;
  kind: RewardKind;
  mix: MixName;
  n: number;
  /** Train tasks (default: as many as held-out). */
  nTrain?: number;
  /** The baseline was measured in a degraded hour: every success rate this much lower. */
  badHour?: number;
}

/** What a rule sees of the world at one gate. */
export interface GateView {
  world: World;
  iteration: number;
  iterations: number;
  testIds: string[];
  trainIds: string[];
  /** This iteration's incumbent train run and the candidate's (free). */
  trainIncumbent: number[];
  trainCandidate: number[];
  run: (r: Run) => number | null;
  rng: Rng;
}

export interface Baseline {
  test: number[];
  /** The baseline's train runs (prepare runs the train split twice). */
  train: number[][];
}

/** A rule with whatever it carries from one gate to the next (best score, histories, budget spent). */
export interface SimAgent {
  gate(view: GateView): Decision;
  /** After the decision: `accepted` says whether the candidate became the incumbent. */
  settle(view: GateView, decision: Decision, accepted: boolean): void;
}

export type RuleName = "original" | "bayes" | "paired";

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const counts = (xs: number[][], i: number): Counts => {
  let s = 0;
  let f = 0;
  for (const x of xs) {
    s += x[i] ?? 0;
    f += 1 - (x[i] ?? 0);
  }
  return { s, f };
};

function originalAgent(base: Baseline): SimAgent {
  let best = base.test.reduce((a, b) => a + b, 0) / base.test.length;
  return {
    gate: (v) => driveSync(originalRule, { candidate: "c", taskIds: v.testIds, best, trialBase: 0 }, v.run).decision,
    settle(_v, d, accepted) {
      const val = d.arms[0]?.valScore ?? null;
      if (accepted && val !== null) best = Math.max(best, val);
    },
  };
}

function bayesAgent(base: Baseline, testIds: string[], trainIds: string[]): SimAgent {
  let histTest: History = Object.fromEntries(testIds.map((id, i) => [id, counts([base.test], i)]));
  let histTrain: History = Object.fromEntries(trainIds.map((id, i) => [id, counts(base.train.slice(0, 1), i)]));
  let spent = testIds.length;
  let withInc: History = {};
  let last: ReturnType<typeof driveSync<Parameters<typeof bayesRule.start>[0], ReturnType<typeof bayesRule.start>>>;
  return {
    gate(v) {
      withInc = { ...histTrain };
      v.trainIds.forEach((id, i) => {
        const h = withInc[id] ?? { s: 0, f: 0 };
        const x = v.trainIncumbent[i] ?? 0;
        withInc[id] = { s: h.s + x, f: h.f + 1 - x };
      });
      const trainCandidate = Object.fromEntries(v.trainIds.map((id, i) => [id, v.trainCandidate[i] ?? 0]));
      const params = { ...DEFAULT_BAYES, ...fitPrior([histTest, withInc], DEFAULT_BAYES) };
      const gate = {
        params,
        testIds: v.testIds,
        orderSeed: Math.floor(v.rng.random() * 2 ** 31),
        trials: 1,
        histTest,
        histTrain: withInc,
        trainCandidate,
        testRunsSoFar: spent,
        iteration: v.iteration,
        infraLimit: 0.2,
      };
      last = driveSync(bayesRule, { candidate: "c", gate, trialBase: 0 }, v.run);
      spent += last.decision.heldOutRuns;
      return last.decision;
    },
    settle(v, _d, accepted) {
      const trainCounts: Record<string, Counts> = Object.fromEntries(
        v.trainIds.map((id, i) => [id, { s: v.trainCandidate[i] ?? 0, f: 1 - (v.trainCandidate[i] ?? 0) }]),
      );
      const next = updateHistories(last.state.gate, accepted, trainCounts);
      histTest = next.test;
      histTrain = accepted ? next.train : withInc;
    },
  };
}

export function makeAgent(rule: RuleName, base: Baseline, testIds: string[], trainIds: string[]): SimAgent {
  if (rule === "original") return originalAgent(base);
  if (rule === "bayes") return bayesAgent(base, testIds, trainIds);
  return pairedAgent(base, testIds, trainIds);
}

export interface GateRecord {
  kind: EditKind;
  gain: number;
  accepted: boolean;
  runs: number;
  /** Rejected before any held-out run by the memorisation check (an id table the check can read). */
  memorised?: boolean;
}

/**
 * One seeded night: a baseline, then `kinds.length` gates, each proposing an edit of the given kind.
 * `seed` fixes the world and the edits; every rule sees the same ones.
 */
export function runNight(
  rule: RuleName,
  w: World,
  seed: number,
  kinds: readonly EditKind[],
  planned = 30,
): GateRecord[] {
  const world = new Rng(seed);
  const measure = new Rng(seed * 7919 + 17);
  const nTrain = w.nTrain ?? w.n;
  let test = makeTasks(w.n, w.mix, w.kind, world);
  let train = makeTasks(nTrain, w.mix, w.kind, world);
  const testIds = ids(w.n, "t");
  const trainIds = ids(nTrain, "r");
  const shift = w.badHour ?? 0;
  const base: Baseline = {
    test: test.map((t) => draw(t, w.kind, measure, shift)),
    train: [0, 1].map(() => train.map((t) => draw(t, w.kind, measure, shift))),
  };
  const agent = makeAgent(rule, base, testIds, trainIds);
  const index = new Map(testIds.map((id, i) => [id, i]));
  const out: GateRecord[] = [];
  kinds.forEach((kind, it) => {
    const trainIncumbent = train.map((t) => draw(t, w.kind, measure));
    const failed = trainIncumbent
      .map((r, i) => [r, i] as const)
      .filter(([r]) => r < 0.5)
      .map(([, i]) => i);
    const edit: Edit = makeEdit(kind, test, train, failed, world);
    const trainCandidate = edit.train.map((t) => draw(t, w.kind, measure));
    const gain = meanOf(edit.test) - meanOf(test);
    const arms: Record<string, Task[]> = { [INCUMBENT]: test, c: edit.test };
    const view: GateView = {
      world: w,
      iteration: it + 1,
      iterations: planned,
      testIds,
      trainIds,
      trainIncumbent,
      trainCandidate,
      rng: measure,
      run: (r) => draw(arms[r.arm === INCUMBENT ? INCUMBENT : "c"]![index.get(r.taskId)!]!, w.kind, measure),
    };
    const decision = agent.gate(view);
    const accepted = decision.winner !== null;
    agent.settle(view, decision, accepted);
    out.push({ kind, gain, accepted, runs: decision.heldOutRuns });
    if (accepted) {
      test = edit.test;
      train = edit.train;
    }
  });
  return out;
}

export const meanTrue = meanOf;
