/**
 * The paired rule at a look (pure): a batch is complete, so the arms' evidence is recomputed, losers stop,
 * an arm that cleared every bar is accepted, or the next batch is planned.
 */
import { type Drift, driftCheck, pooled, recentered } from "./drift.ts";
import { type ArmCache, type ArmStats, armStats } from "./paired-stats.ts";
import { covers, type PairedParams, type PairedState, viewOf } from "./paired-types.ts";
import { barsUnmet, decisionOf, type Look, pairsNeeded } from "./paired-verdict.ts";
import { INCUMBENT, type Run, runKey } from "./types.ts";

/** The next batch: `fresh` tasks for the first time, `again` re-run; every live arm with the incumbent. */
export function schedule(state: PairedState, fresh: readonly string[], again: readonly string[]): PairedState {
  const scheduled = new Map(state.scheduled);
  const runs: Run[] = [];
  for (const taskId of [...fresh, ...again]) {
    const t = scheduled.get(taskId) ?? 0;
    scheduled.set(taskId, t + 1);
    for (const arm of [INCUMBENT, ...state.live]) runs.push({ arm, taskId, trial: state.setup.trialBase + t });
  }
  const pending = new Set(runs.map(runKey));
  return { ...state, scheduled, batch: runs, pending, firstPass: state.firstPass + fresh.length };
}

function statsOf(state: PairedState, drift: Drift): { stats: Map<string, ArmStats>; caches: Map<string, ArmCache> } {
  const { setup } = state;
  const input = {
    model: recentered(setup.model, drift),
    params: setup.params,
    taskIds: setup.taskIds,
    history: setup.history.test,
    view: viewOf(drift),
    bets: state.plan.bets,
    incumbent: state.draws.get(INCUMBENT)!,
  };
  const touched = new Set(state.batch.map((r) => r.taskId));
  const stats = new Map<string, ArmStats>();
  const caches = new Map(state.caches);
  for (const arm of state.live) {
    const st = armStats(input, state.draws.get(arm)!, state.caches.get(arm), touched);
    stats.set(arm, st);
    caches.set(arm, st.cache);
  }
  return { stats, caches };
}

export function futilityBar(p: PairedParams, coverage: number): number {
  return p.futility * Math.min(1, Math.max(0, (coverage - p.futilityFrom) / (1 - p.futilityFrom)));
}

/** A batch is complete: look, stop losers, accept, or plan the next batch. */
export function advance(state: PairedState): PairedState {
  const { setup, plan } = state;
  const p = setup.params;
  const n = plan.order.length;
  const incumbent = state.draws.get(INCUMBENT)!;
  const firstRuns = Object.fromEntries([...incumbent].map(([id, xs]) => [id, xs[0] ?? null]));
  const drift = pooled(plan.trainDrift, driftCheck(setup.model, setup.history.test, firstRuns, p), p);
  let s: PairedState = { ...state, drift };
  const { stats, caches } = statsOf(s, drift);
  s = { ...s, caches };
  if (s.infra / s.runs > setup.infraLimit) {
    const why = `${s.infra} of ${s.runs} held-out runs were infrastructure errors (limit ${Math.round(setup.infraLimit * 100)}%): no decision this round`;
    return { ...s, decision: decisionOf(s, stats, "infra", why) };
  }
  const reran = [...s.scheduled.values()].some((t) => t > 1);
  const stage = s.firstPass < n ? "look" : reran ? "rerun" : "full";
  s = { ...s, looks: [...s.looks, lookOf(s, stats)] };
  const stopped = [...s.stopped];
  const live: string[] = [];
  for (const arm of s.live) {
    const st = stats.get(arm)!;
    const bar = futilityBar(p, s.firstPass / n);
    if (st.summary.pImproved < bar) {
      const reason = `P(mean improved) ${st.summary.pImproved.toFixed(3)} < ${bar.toFixed(3)} after ${st.covered} of ${n} tasks`;
      stopped.push({ arm, stage, reason, stats: st, train: null });
    } else live.push(arm);
  }
  s = { ...s, live, stopped };
  const ready = live.filter((arm) => barsUnmet(s, stats.get(arm)!).length === 0);
  // Before an acceptance, every task the arm did worse on is paired again: a break must be looked at as
  // closely as the fixes that lifted the e-value.
  const audits = new Map(ready.map((arm) => [arm, auditTasks(s, arm)]));
  const eligible = ready.filter((arm) => audits.get(arm)!.length === 0);
  if (eligible.length > 0) return { ...s, decision: decisionOf(s, stats, stage, null, eligible) };
  if (live.length === 0) return { ...s, decision: decisionOf(s, stats, stage, "every candidate stopped") };
  const nextLook = p.looks.find((f) => covers(f, n) > s.firstPass) ?? 1;
  const fresh = plan.order.slice(s.firstPass, covers(nextLook, n));
  const room = plan.maxRuns - s.runs;
  const perTask = live.length + 1;
  const want = Math.max(1, Math.round(p.rerunShare * n));
  // Re-runs never take the runs the first pass still needs before an acceptance.
  const reserved = Math.max(0, pairsNeeded(s) - s.firstPass - fresh.length);
  const audit = [...new Set([...audits.values()].flat())];
  const slots = Math.max(0, Math.floor(room / perTask) - reserved);
  const again = [...audit.slice(0, slots), ...rerunPicks(s, stats, Math.min(want, slots - audit.length), audit)];
  if (fresh.length === 0 && again.length === 0) {
    const why =
      room < perTask
        ? `the round's ${plan.maxRuns} held-out runs are spent`
        : "no task is left whose re-run could settle the decision";
    return { ...s, decision: decisionOf(s, stats, room < perTask ? "budget" : stage, why) };
  }
  if (fresh.length * perTask > room) {
    return { ...s, decision: decisionOf(s, stats, "budget", `the round's ${plan.maxRuns} held-out runs are spent`) };
  }
  return schedule(s, fresh, again);
}

/** Tasks where the arm's pairs, summed, went against it and that have fewer than `auditTrials` pairs. */
function auditTasks(s: PairedState, arm: string): string[] {
  const p = s.setup.params;
  const inc = s.draws.get(INCUMBENT)!;
  const mine = s.draws.get(arm)!;
  const out: string[] = [];
  for (const id of s.plan.order.slice(0, s.firstPass)) {
    const c = mine.get(id) ?? [];
    const x = inc.get(id) ?? [];
    let d = 0;
    let pairs = 0;
    for (let t = 0; t < c.length; t++) {
      if (c[t] === undefined || x[t] === undefined) continue;
      d += (c[t] ?? 0) - (x[t] ?? 1);
      pairs += 1;
    }
    if (d < 0 && pairs < p.auditTrials && (s.scheduled.get(id) ?? 0) < p.maxTrials) out.push(id);
  }
  return out;
}

function lookOf(s: PairedState, stats: Map<string, ArmStats>): Look {
  return {
    tasks: s.firstPass,
    runs: s.runs,
    driftZ: s.drift.z,
    arms: [...stats].map(([arm, st]) => ({ arm, logE: st.logE, pImproved: st.summary.pImproved })),
  };
}

/**
 * Tasks to run again: those where a fix would lift an arm's e-value (it is short of the bar), and those
 * whose change is least certain in either direction (P(mean improved) short of the guard), alternating.
 */
function rerunPicks(s: PairedState, stats: Map<string, ArmStats>, m: number, taken: readonly string[]): string[] {
  if (m <= 0) return [];
  const p = s.setup.params;
  const open = s.plan.order
    .slice(0, s.firstPass)
    .filter((id) => (s.scheduled.get(id) ?? 0) < p.maxTrials && !taken.includes(id));
  const lift = new Map<string, number>();
  const doubt = new Map<string, number>();
  for (const [, st] of stats) {
    const needE = st.logE < s.plan.threshold;
    const needG = st.summary.pImproved < p.guard;
    for (const id of open) {
      const c = st.changes.get(id)!;
      // A re-run lifts the e-value faster on a task the incumbent rarely passes (more pairs disagree).
      const room = (1 - (s.plan.means.get(id) ?? 0.5)) ** 2;
      if (needE && s.plan.bets.get(id)?.eligible && c.rFix >= p.liftFloor)
        lift.set(id, Math.max(lift.get(id) ?? 0, c.rFix * room));
      if (needG) doubt.set(id, Math.max(doubt.get(id) ?? 0, c.sd));
    }
  }
  const byScore = (x: Map<string, number>, floor: number) =>
    [...x]
      .filter(([, v]) => v > floor)
      .sort((a, b) => b[1] - a[1])
      .map(([id]) => id);
  const lists = [byScore(lift, 0), byScore(doubt, p.doubtFloor)];
  const out: string[] = [];
  for (let i = 0; out.length < m && (i < lists[0]!.length || i < lists[1]!.length); i++) {
    for (const list of lists) {
      const id = list[i];
      if (id !== undefined && !out.includes(id) && out.length < m) out.push(id);
    }
  }
  return out;
}
