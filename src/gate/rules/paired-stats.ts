/**
 * What the paired rule knows about one arm at a look, pure: its e-value against the incumbent (pairs of the
 * same task from the same batch only), its posterior change of the mean, its first-pass score and paired
 * improvement. Recomputed from the draws at every look, so a replay cannot drift from a live run.
 */
import {
  armLogE,
  type Bet,
  belief,
  type ChangeSummary,
  type EvidenceParams,
  type HistoryView,
  pairLogFactor,
  type Sums,
  summarize,
  type TaskChange,
  type TaskEvidence,
  taskEvidence,
} from "./evidence.ts";
import type { RewardModel } from "./reward-model.ts";
import type { Interval } from "./types.ts";

/** Rewards of one arm by task, indexed by trial (the shell's trial minus the round's base). */
export type Draws = ReadonlyMap<string, readonly (number | null | undefined)[]>;

export interface ArmStats {
  logE: number;
  summary: ChangeSummary;
  /** Per task: the change belief (fixed / broken), for re-run choices and the next history. */
  changes: Map<string, TaskChange>;
  /** Tasks with at least one pair. */
  covered: number;
  valScore: number | null;
  improvement: (Interval & { tasks: number }) | null;
}

export interface StatsInput {
  model: RewardModel;
  params: EvidenceParams & { priorChanged: number };
  taskIds: readonly string[];
  history: Record<string, Sums>;
  /** How much of the held-out history the drift check keeps, and the world's shift since. */
  view: HistoryView;
  bets: ReadonlyMap<string, Bet>;
  incumbent: Draws;
}

export function sumsOf(xs: readonly (number | null | undefined)[], nullAs: number | null): Sums {
  let s = 0;
  let f = 0;
  for (const x of xs) {
    const r = x === undefined ? undefined : (x ?? nullAs);
    if (r === undefined || r === null) continue;
    s += r;
    f += 1 - r;
  }
  return { s, f };
}

/** Paired first-pass difference (candidate − incumbent) over the tasks both ran, with a normal 95% interval. */
function pairedInterval(arm: Draws, inc: Draws): (Interval & { tasks: number }) | null {
  const d: number[] = [];
  for (const [id, xs] of arm) {
    const c = xs[0];
    const x = inc.get(id)?.[0];
    if (c === undefined || x === undefined || x === null) continue;
    d.push((c ?? 0) - x);
  }
  if (d.length === 0) return null;
  const m = d.reduce((a, b) => a + b, 0) / d.length;
  const sd = d.length > 1 ? Math.sqrt(d.reduce((a, x) => a + (x - m) ** 2, 0) / (d.length - 1)) : 0;
  const half = (1.96 * sd) / Math.sqrt(d.length);
  return { mean: m, low: m - half, high: m + half, tasks: d.length };
}

/** What one task's draws say for an arm: depends on that task's draws, its history and the drift weight only. */
export interface TaskRecord {
  evidence: TaskEvidence;
  /** Sum of the pairs' log factors; null when the task has no pair yet. */
  pairs: number | null;
  /** The arm's first reward on the task (undefined: not run). */
  first: number | null | undefined;
}

/** Per-task records of an arm at a drift weight, kept between looks so that a look recomputes only what changed. */
export interface ArmCache {
  view: HistoryView;
  prior: { a: number; b: number };
  tasks: ReadonlyMap<string, TaskRecord>;
}

function taskRecord(input: StatsInput, id: string, cand: readonly (number | null | undefined)[]): TaskRecord {
  const { model, params } = input;
  const inc = input.incumbent.get(id) ?? [];
  const b = belief(model, input.history[id], input.view, sumsOf(inc, null));
  const bet = input.bets.get(id);
  let pairs: number | null = null;
  for (let t = 0; t < cand.length; t++) {
    if (cand[t] === undefined || inc[t] === undefined) continue;
    pairs = (pairs ?? 0) + (bet ? pairLogFactor(bet, cand[t] ?? null, inc[t] ?? null, params.thetaMax) : 0);
  }
  // A candidate's infrastructure error counts as its worst reward: it never helps.
  return { evidence: taskEvidence(model, b, sumsOf(cand, 0), params), pairs, first: cand[0] };
}

/**
 * The arm's figures at a look. With a cache at the same drift weight, only the `touched` tasks (those run
 * since) are recomputed; the result is the same as without it.
 */
export function armStats(
  input: StatsInput,
  arm: Draws,
  cache?: ArmCache,
  touched?: ReadonlySet<string>,
): ArmStats & { cache: ArmCache } {
  const reuse =
    cache !== undefined &&
    touched !== undefined &&
    cache.view.weight === input.view.weight &&
    cache.view.shift === input.view.shift &&
    cache.prior.a === input.model.prior.a &&
    cache.prior.b === input.model.prior.b;
  const tasks = new Map<string, TaskRecord>();
  const evidence: TaskEvidence[] = [];
  const pairsLog: number[] = [];
  let covered = 0;
  let first = 0;
  let firstN = 0;
  for (const id of input.taskIds) {
    const kept = reuse && !touched.has(id) ? cache.tasks.get(id) : undefined;
    const rec = kept ?? taskRecord(input, id, arm.get(id) ?? []);
    tasks.set(id, rec);
    evidence.push(rec.evidence);
    if (rec.pairs !== null) {
      covered += 1;
      if (input.bets.get(id)?.eligible) pairsLog.push(rec.pairs);
    }
    if (rec.first !== undefined) {
      first += rec.first ?? 0;
      firstN += 1;
    }
  }
  const { summary, perTask } = summarize(evidence, input.taskIds.length, input.params);
  return {
    logE: armLogE(pairsLog, input.params.betShares),
    summary,
    changes: new Map(input.taskIds.map((id, i) => [id, perTask[i]!])),
    covered,
    // As the shell records it (round.ts firstPassMean): a first pass cut short has none.
    valScore: firstN > 0 && firstN === input.taskIds.length ? first / firstN : null,
    improvement: pairedInterval(arm, input.incumbent),
    cache: { view: input.view, prior: input.model.prior, tasks },
  };
}

/** The train screen of one candidate: P(the mean improved on train), from its train run and the incumbent's. */
export function trainSummary(
  model: RewardModel,
  params: EvidenceParams & { priorChanged: number },
  history: Record<string, Sums>,
  view: HistoryView,
  incumbent: Record<string, number | null>,
  candidate: Record<string, number | null>,
): ChangeSummary | null {
  const evidence: TaskEvidence[] = [];
  for (const [id, r] of Object.entries(candidate)) {
    const x = incumbent[id];
    const fresh = x === undefined || x === null ? undefined : { s: x, f: 1 - x };
    const b = belief(model, history[id], view, fresh);
    evidence.push(taskEvidence(model, b, { s: r ?? 0, f: 1 - (r ?? 0) }, params));
  }
  return evidence.length === 0 ? null : summarize(evidence, evidence.length, params).summary;
}
