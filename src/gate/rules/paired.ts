/**
 * The paired rule (pure): candidates raced against the incumbent on shared, contemporaneous draws.
 *
 * - Train first (free): a candidate whose train runs show no improvement or harm stops there; train never
 *   accepts.
 * - Held-out, in batches: each batch runs every task it names on the incumbent and every live candidate
 *   together, so every comparison is a pair from one batch. The first pass walks a seeded order in looks;
 *   from the second batch on, re-runs go where the decision is least sure (a borderline break as readily
 *   as a borderline fix), and tasks whose fix would lift the e-value.
 * - Of several survivors, only as many race as the round's held-out runs pay for (`racePasses` per arm), the
 *   best by their paired train difference first (none, when not even one can): a race the runs cannot finish
 *   would spend them and decide nothing.
 * - An arm stops when its posterior P(mean improved) falls under `futility`. An arm is accepted when every
 *   task has a pair, its e-value reaches K/alpha (K: candidates raced), and P(mean improved) ≥ `guard`.
 *   At most one winner: the eligible arm with the largest expected change of the mean.
 * - The night's budget: alpha comes from budget.ts; under "no change" the e-value's chance of ever
 *   reaching K/alpha is at most alpha/K per arm, whatever the history, the looks and the re-runs.
 */
import { seededOrder } from "./bayes-core.ts";
import { driftCheck, recentered } from "./drift.ts";
import { type Bet, belief, betOn, mean } from "./evidence.ts";
import { advance, schedule } from "./paired-look.ts";
import { trainSummary } from "./paired-stats.ts";
import { covers, type PairedSetup, type PairedState, type Plan, viewOf } from "./paired-types.ts";
import { decisionOf, type StoppedArm } from "./paired-verdict.ts";
import { type Action, type GateRule, INCUMBENT, type RunOutcome, runKey } from "./types.ts";

export { DEFAULT_PAIRED, type PairedParams, type PairedSetup, type PairedState } from "./paired-types.ts";

/** z of the mean paired difference (candidate − incumbent) over the tasks both ran. */
export function pairedZ(incumbent: Record<string, number | null>, candidate: Record<string, number | null>): number {
  const d: number[] = [];
  for (const [id, c] of Object.entries(candidate)) {
    const x = incumbent[id];
    if (x === undefined || x === null) continue;
    d.push((c ?? 0) - x);
  }
  if (d.length < 2) return 0;
  const m = d.reduce((a, b) => a + b, 0) / d.length;
  const sd = Math.sqrt(d.reduce((a, x) => a + (x - m) ** 2, 0) / (d.length - 1));
  return sd > 0 ? (m / sd) * Math.sqrt(d.length) : m > 0 ? Number.POSITIVE_INFINITY : 0;
}

/**
 * The survivors a race can afford: a race the round's held-out runs cannot finish spends them and decides
 * nothing, so of several candidates only as many race as `racePasses` passes per arm pay for, at most
 * `raceWidth`, the best by their train evidence first, and none when not even one can: the round's runs stay
 * in the bank for the next round. Train evidence is independent of the held-out draws, so the e-value's bar
 * for the arms raced (K/alpha, K the number raced) keeps its guarantee whichever are chosen. A round of one
 * candidate races it whatever the bank holds (today's loop).
 */
function affordable(setup: PairedSetup, live: readonly string[]): string[] {
  const { racePasses: passes, raceWidth } = setup.params;
  const n = setup.taskIds.length;
  if (setup.candidates.length <= 1 || !(passes > 0) || n === 0) return [...live];
  const width = raceWidth > 0 ? raceWidth : live.length;
  const m = Math.max(0, Math.min(live.length, width, Math.floor(setup.maxRuns / (passes * n)) - 1));
  const z = (arm: string) => pairedZ(setup.train.incumbent, setup.train.candidates[arm] ?? {});
  return [...live].sort((a, b) => z(b) - z(a) || a.localeCompare(b)).slice(0, m);
}

/** The round's runs for the arms raced: `roundRuns` passes per raced pair, never more than the setup's. */
export function racedAllowance(setup: PairedSetup, raced: number): number {
  const per = setup.params.roundRuns;
  if (!(per > 0)) return setup.maxRuns;
  return Math.min(setup.maxRuns, Math.floor((per * setup.taskIds.length * (Math.max(1, raced) + 1)) / 2));
}

function start(setup: PairedSetup): PairedState {
  const p = setup.params;
  const trainDrift = driftCheck(setup.model, setup.history.train, setup.train.incumbent, p);
  const model = recentered(setup.model, trainDrift);
  const bets = new Map<string, Bet>();
  const means = new Map<string, number>();
  for (const id of setup.taskIds) {
    const b = belief(model, setup.history.test[id], viewOf(trainDrift));
    bets.set(id, betOn(model, b, p));
    means.set(id, mean(b));
  }
  const stopped: StoppedArm[] = [];
  const live: string[] = [];
  for (const arm of setup.candidates) {
    const train = setup.train.candidates[arm] ?? {};
    const s = trainSummary(model, p, setup.history.train, viewOf(trainDrift), setup.train.incumbent, train);
    // The model-free paired difference on train can overrule the model's "no change" (never its "accept").
    if (s && s.pImproved < p.screen && pairedZ(setup.train.incumbent, train) < p.screenRescue) {
      const why = s.meanDelta < 0 ? "harm" : "no change";
      stopped.push({
        arm,
        stage: "train",
        reason: `train evidence shows ${why}: P(mean improved) ${s.pImproved.toFixed(3)} < ${p.screen}, no held-out run spent`,
        stats: null,
        train: s,
      });
    } else live.push(arm);
  }
  const raced = affordable(setup, live);
  for (const arm of live.filter((a) => !raced.includes(a))) {
    stopped.push({
      arm,
      stage: "budget",
      reason: `not raced: the round's ${setup.maxRuns} held-out runs pay for a race of ${raced.length} of the ${live.length} train survivors, ranked by their paired train difference${raced.length > 0 && raced.length === setup.params.raceWidth ? ` (at most ${raced.length} race)` : ""}`,
      stats: null,
      train: null,
    });
  }
  const plan: Plan = {
    order: seededOrder(setup.taskIds, setup.orderSeed),
    bets,
    means,
    trainDrift,
    raced,
    threshold: Math.log(Math.max(1, raced.length) / setup.alpha),
    maxRuns: racedAllowance(setup, raced.length),
  };
  const state: PairedState = {
    setup,
    plan,
    draws: new Map([INCUMBENT, ...raced].map((a) => [a, new Map()])),
    scheduled: new Map(),
    batch: [],
    pending: new Set(),
    firstPass: 0,
    live: raced,
    stopped,
    looks: [],
    runs: 0,
    infra: 0,
    drift: trainDrift,
    caches: new Map(),
    decision: null,
  };
  // With nothing left of the night's budget no arm could be accepted: no held-out run is worth making.
  const why =
    live.length === 0
      ? "no candidate survived the train screen"
      : raced.length === 0
        ? `the round's ${setup.maxRuns} held-out runs cannot pay for a race of even one of the ${live.length} train survivors; they stay in the night's bank`
        : setup.taskIds.length === 0
          ? "the held-out split is empty"
          : !(setup.alpha > 0)
            ? "the night's error budget is spent: no acceptance is possible this round"
            : null;
  return why
    ? {
        ...state,
        decision: decisionOf(
          state,
          new Map(),
          live.length > 0 && (raced.length === 0 || !(setup.alpha > 0)) ? "budget" : "train",
          why,
        ),
      }
    : schedule(state, plan.order.slice(0, covers(p.looks[0] ?? 1, plan.order.length)), []);
}

function apply(state: PairedState, results: readonly RunOutcome[]): PairedState {
  let s = state;
  // Copy-on-write once per call, not per result: the caller's state is never touched.
  let draws: Map<string, Map<string, (number | null | undefined)[]>> | null = null;
  let pending: Set<string> | null = null;
  for (const r of results) {
    if (s.decision) break;
    const index = r.trial - s.setup.trialBase;
    if ((draws ?? s.draws).get(r.arm)?.get(r.taskId)?.[index] !== undefined) continue;
    const key = runKey(r);
    if (!(pending ?? s.pending).has(key))
      throw new Error(`gate replay out of step: ${r.arm} ${r.taskId} trial ${r.trial}`);
    if (!draws || !pending) {
      draws = new Map([...s.draws].map(([arm, m]) => [arm, new Map(m) as Map<string, (number | null | undefined)[]>]));
      pending = new Set(s.pending);
    }
    const arm = draws.get(r.arm)!;
    const xs = [...(arm.get(r.taskId) ?? [])];
    xs[index] = r.reward;
    arm.set(r.taskId, xs);
    pending.delete(key);
    s = { ...s, draws, pending, runs: s.runs + 1, infra: s.infra + (r.reward === null ? 1 : 0) };
    if (pending.size === 0) {
      s = advance(s);
      draws = null;
      pending = null;
    }
  }
  return s;
}

export const pairedRule: GateRule<PairedSetup, PairedState> = {
  name: "paired",
  start,
  next(state): Action {
    if (state.decision) return { kind: "decide", decision: state.decision };
    const runs = state.batch.filter((r) => state.pending.has(runKey(r)));
    return { kind: "run", runs };
  },
  apply,
};
