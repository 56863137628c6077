/**
 * The simulated night's world, with known truth: tasks with hidden success rates (bench/gate-world.ts), a
 * coding model whose edits have a known distribution of true effects, and the latencies and prices of a
 * real night. The agent's versions are kept here by id; the truth of a version is its tasks' success rates.
 *
 * The failure clusters: every task belongs to one of `clusters` failure patterns. A fix addresses the
 * pattern its session's hypothesis named, so once a pattern's failing tasks are fixed, more fixes of it
 * change nothing. An analysis anchored by the learnings keeps the pattern of the last accepted fix (with
 * probability `anchor`); a fresh one reads the failing train tasks and names the next pattern.
 */
import { NIGHT_MIX } from "./gate-measure.ts";
import type { EditKind, MixName, RewardKind, Task } from "./gate-world.ts";
import { fix, makeEdit, makeTasks, meanOf, Rng } from "./gate-world.ts";

export interface WorldParams {
  kind: RewardKind;
  mix: MixName;
  trainTasks: number;
  heldOutTasks: number;
  holdoutTasks: number;
  clusters: number;
  /** A fix's size in points of mean reward over every unseen task (when its pattern has that much left). */
  fixSize: number;
  /** Chance an anchored analysis keeps the pattern of the last accepted fix. */
  anchor: number;
  /** What the coding model's edits truly do, by kind (weights). */
  editMix: [EditKind, number][];
  taskMs: number;
  taskUsd: number;
  concurrency: number;
  analyzeMs: number;
  analyzeUsd: number;
  /** A coding session's duration is uniform in this range. */
  sessionMs: [number, number];
  sessionUsd: number;
  hours: number;
  budgetUsd: number;
}

export const WORLD: WorldParams = {
  kind: "binary",
  mix: "flat",
  trainTasks: 100,
  heldOutTasks: 100,
  holdoutTasks: 60,
  clusters: 6,
  fixSize: 0.05,
  anchor: 0.8,
  editMix: NIGHT_MIX,
  taskMs: 30_000,
  taskUsd: 0.02,
  concurrency: 16,
  analyzeMs: 120_000,
  analyzeUsd: 0.3,
  sessionMs: [120_000, 360_000],
  sessionUsd: 0.8,
  hours: 8,
  budgetUsd: 300,
};

export interface Version {
  id: string;
  /** Held-out then sealed-holdout tasks: everything the coding model never sees. */
  unseen: Task[];
  train: Task[];
  kind: EditKind | "baseline";
  pattern: number;
}

/** The truth of a night: the tasks of every version, and the noisy runs that measure them. */
export class World {
  readonly versions = new Map<string, Version>();
  readonly testIds: string[];
  readonly holdoutIds: string[];
  readonly trainIds: string[];
  private readonly edits: Rng;
  /** Measurement noise: its own stream, so every policy sees the same edits for a seed. */
  readonly noise: Rng;

  constructor(
    readonly params: WorldParams,
    seed: number,
  ) {
    const rng = new Rng(seed);
    this.edits = new Rng(seed * 7919 + 11);
    this.noise = new Rng(seed * 104729 + 3);
    const unseen = makeTasks(params.heldOutTasks + params.holdoutTasks, params.mix, params.kind, rng);
    const train = makeTasks(params.trainTasks, params.mix, params.kind, rng);
    this.testIds = Array.from({ length: params.heldOutTasks }, (_, i) => `t${i}`);
    this.holdoutIds = Array.from({ length: params.holdoutTasks }, (_, i) => `h${i}`);
    this.trainIds = Array.from({ length: params.trainTasks }, (_, i) => `r${i}`);
    this.versions.set("v0", { id: "v0", unseen, train, kind: "baseline", pattern: -1 });
  }

  version(id: string): Version {
    const v = this.versions.get(id);
    if (!v) throw new Error(`no version ${id}`);
    return v;
  }

  /** Mean true reward over every unseen task: the score the morning's agent truly has. */
  truth(id: string): number {
    return meanOf(this.version(id).unseen);
  }

  /** One run of a task by id (t…: held-out, h…: sealed holdout, r…: train). */
  run(versionId: string, taskId: string): number {
    const v = this.version(versionId);
    const i = Number(taskId.slice(1));
    const t = taskId[0] === "r" ? v.train[i]! : v.unseen[taskId[0] === "h" ? this.params.heldOutTasks + i : i]!;
    const r = this.noise.random() < t.p ? t.hi : t.lo;
    return this.params.kind === "continuous" ? Math.min(1, Math.max(0, r + this.noise.gauss(0, 0.04))) : r;
  }

  clusterOf = (i: number): number => i % this.params.clusters;

  /** Patterns by how many train tasks failed in the given run, most first. */
  patternsByFailures(trainRun: Record<string, number | null>): number[] {
    const failing = Array.from({ length: this.params.clusters }, () => 0);
    this.trainIds.forEach((id, i) => {
      if ((trainRun[id] ?? 0) < 0.5) failing[this.clusterOf(i)]! += 1;
    });
    return failing
      .map((n, c) => [n, c] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .map(([, c]) => c);
  }

  /** The hypotheses of a round: the analysis's pattern first, then the next ones by failures. */
  hypotheses(o: {
    k: number;
    anchored: number | null;
    fresh: boolean;
    trainRun: Record<string, number | null>;
  }): number[] {
    const byFailures = this.patternsByFailures(o.trainRun);
    let first = byFailures[0]!;
    if (o.fresh) first = byFailures.find((c) => c !== o.anchored) ?? first;
    else if (o.anchored !== null && this.edits.random() < this.params.anchor) first = o.anchored;
    return [first, ...byFailures.filter((c) => c !== first)].slice(0, o.k);
  }

  /** One coding session's edit of the incumbent, on a hypothesis; its true effect is drawn from the mix. */
  edit(parentId: string, id: string, pattern: number, trainRun: Record<string, number | null>): Version {
    const parent = this.version(parentId);
    const kind = this.drawKind();
    const failed = this.trainIds
      .map((tid, i) => [trainRun[tid] ?? 0, i] as const)
      .filter(([r]) => r < 0.5)
      .map(([, i]) => i);
    let unseen: Task[];
    let train: Task[];
    if (kind === "fix") {
      unseen = this.fixPattern(parent.unseen, pattern);
      train = this.fixPattern(parent.train, pattern);
    } else {
      const e = makeEdit(kind, parent.unseen, parent.train, failed, this.edits);
      unseen = e.test;
      train = e.train;
    }
    const v: Version = { id, unseen, train, kind, pattern };
    this.versions.set(id, v);
    return v;
  }

  private drawKind(): EditKind {
    let u = this.edits.random();
    for (const [kind, p] of this.params.editMix) {
      if (u < p) return kind;
      u -= p;
    }
    return "neutral";
  }

  /** A fix of one pattern: its failing tasks raised until the mean over all tasks rose by `fixSize`. */
  private fixPattern(tasks: readonly Task[], pattern: number): Task[] {
    const members = tasks.map((_, i) => i).filter((i) => this.clusterOf(i) === pattern);
    const fixed = fix(
      members.map((i) => tasks[i]!),
      this.edits,
      (this.params.fixSize * tasks.length) / members.length,
    );
    const out = tasks.map((t) => ({ ...t }));
    members.forEach((i, j) => {
      out[i] = fixed[j]!;
    });
    return out;
  }
}

/** How an accepted edit counts in the morning: a true gain, or a bad accept of one of three kinds. */
export function classify(world: World, parentId: string, id: string): "gain" | "no-change" | "harmful" | "train-only" {
  const gain = world.truth(id) - world.truth(parentId);
  if (gain < -0.005) return "harmful";
  if (gain > 0.005) return "gain";
  return world.version(id).kind === "trainOnly" ? "train-only" : "no-change";
}
