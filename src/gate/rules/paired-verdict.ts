/**
 * The paired rule's decision, pure: one verdict per arm (ids and numbers only), at most one winner, and the
 * share of the night's budget the round used.
 */
import type { ChangeSummary } from "./evidence.ts";
import type { ArmStats } from "./paired-stats.ts";
import type { PairedState } from "./paired-types.ts";
import type { ArmVerdict, Decision, Stage } from "./types.ts";

export interface StoppedArm {
  arm: string;
  stage: Stage;
  reason: string;
  stats: ArmStats | null;
  /** The train screen's summary, for an arm stopped there. */
  train: ChangeSummary | null;
}

/** One look: how far the first pass was, and each live arm's evidence (for `gate --explain`). */
export interface Look {
  tasks: number;
  runs: number;
  driftZ: number;
  arms: { arm: string; logE: number; pImproved: number }[];
}

const runsOf = (state: PairedState, arm: string): number =>
  [...(state.draws.get(arm)?.values() ?? [])].reduce((n, xs) => n + xs.filter((x) => x !== undefined).length, 0);

function figures(state: PairedState, st: ArmStats | null, train: ChangeSummary | null): Record<string, number> {
  const out: Record<string, number> = { threshold: state.plan.threshold, driftWeight: state.drift.weight };
  if (train) {
    out.trainPImproved = train.pImproved;
    out.trainMeanDelta = train.meanDelta;
  }
  if (st) {
    out.logE = st.logE;
    out.pImproved = st.summary.pImproved;
    out.pChanged = st.summary.pChanged;
    out.meanDelta = st.summary.meanDelta;
    out.sdDelta = st.summary.sdDelta;
    out.tasksPaired = st.covered;
  }
  return out;
}

function verdictOf(
  state: PairedState,
  arm: string,
  verdict: ArmVerdict["verdict"],
  stage: Stage,
  reason: string,
  st: ArmStats | null,
  train: ChangeSummary | null = null,
): ArmVerdict {
  return {
    arm,
    verdict,
    stage,
    reason,
    valScore: st?.valScore ?? null,
    improvement: st?.improvement ?? null,
    figures: figures(state, st, train),
    runs: runsOf(state, arm),
  };
}

/** Tasks that must have a pair before an arm may be accepted. */
export const pairsNeeded = (state: PairedState): number =>
  Math.ceil(state.setup.params.coverage * state.setup.taskIds.length - 1e-9);

/**
 * The acceptance bars an arm has not reached, in words (none: it may be accepted, once its breaks are audited).
 * The one statement of the bars: the look accepts by it, and an undecided round says what was missing by it.
 */
export function barsUnmet(state: PairedState, st: ArmStats): string[] {
  const p = state.setup.params;
  const missing: string[] = [];
  const need = pairsNeeded(state);
  if (st.covered < need) missing.push(`${st.covered} of the ${need} tasks paired`);
  if (st.logE < state.plan.threshold)
    missing.push(`e-value e^${st.logE.toFixed(2)} of the e^${state.plan.threshold.toFixed(2)} needed`);
  if (st.summary.pImproved < p.guard)
    missing.push(`P(mean improved) ${st.summary.pImproved.toFixed(3)} of the ${p.guard} needed`);
  const gain = st.improvement?.mean ?? 0;
  if (!(gain > p.firstPassFloor)) missing.push(`first-pass change ${gain >= 0 ? "+" : ""}${gain.toFixed(4)}`);
  return missing;
}

/** What an arm still alive at a decision without a winner lacked. */
function unmet(state: PairedState, st: ArmStats): string {
  const missing = barsUnmet(state, st);
  return missing.length > 0 ? `; not enough evidence yet: ${missing.join(", ")}` : "";
}

const accepted = (state: PairedState, st: ArmStats): string =>
  `e-value e^${st.logE.toFixed(2)} ≥ ${state.plan.raced.length}/alpha (e^${state.plan.threshold.toFixed(2)}) and P(mean improved) ${st.summary.pImproved.toFixed(3)} ≥ ${state.setup.params.guard}; expected change ${st.summary.meanDelta >= 0 ? "+" : ""}${st.summary.meanDelta.toFixed(4)}`;

export function decisionOf(
  state: PairedState,
  stats: Map<string, ArmStats>,
  stage: Stage,
  reason: string | null,
  eligible: readonly string[] = [],
): Decision {
  const arms: ArmVerdict[] = state.stopped.map((s) =>
    verdictOf(state, s.arm, "rejected", s.stage, s.reason, s.stats, s.train),
  );
  let winner: string | null = null;
  for (const arm of eligible) {
    const d = stats.get(arm)!.summary.meanDelta;
    if (winner === null || d > stats.get(winner)!.summary.meanDelta) winner = arm;
  }
  for (const arm of state.live) {
    const st = stats.get(arm) ?? null;
    if (arm === winner) arms.push(verdictOf(state, arm, "winner", stage, accepted(state, st!), st));
    else if (eligible.includes(arm))
      arms.push(
        verdictOf(
          state,
          arm,
          "runner-up",
          stage,
          `also beat the incumbent (${accepted(state, st!)}); re-gate it against the winner`,
          st,
        ),
      );
    else
      arms.push(
        verdictOf(
          state,
          arm,
          "rejected",
          stage,
          winner ? `${winner} won the round` : `${reason ?? "no decision"}${st ? unmet(state, st) : ""}`,
          st,
        ),
      );
  }
  // One arm still racing: the round's reason says what it lacked (with several, each arm's verdict does).
  const lone = state.live.length === 1 ? (stats.get(state.live[0]!) ?? null) : null;
  const order = new Map(state.setup.candidates.map((a, i) => [a, i]));
  arms.sort((a, b) => (order.get(a.arm) ?? 0) - (order.get(b.arm) ?? 0));
  return {
    winner,
    arms,
    alphaUsed: state.runs > 0 ? state.setup.alpha : 0,
    heldOutRuns: state.runs,
    infraErrors: state.infra,
    stage,
    reason: winner
      ? `${winner} accepted: ${accepted(state, stats.get(winner)!)}`
      : `${reason ?? "no candidate accepted"}${lone ? unmet(state, lone) : ""}`,
  };
}
