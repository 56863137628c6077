/**
 * The original's rule through the seam: the candidate runs every held-out task once and is accepted when
 * its mean reward (infrastructure errors left out) is at least the best recorded so far. One candidate.
 */
import { round4 } from "../../scoring.ts";
import type { Action, ArmVerdict, Decision, GateRule, RunOutcome } from "./types.ts";
import { runKey } from "./types.ts";

export interface OriginalSetup {
  candidate: string;
  taskIds: string[];
  /** The best val_score so far (the baseline's at the first gate); null: anything is accepted. */
  best: number | null;
  trialBase: number;
}

export interface OriginalState {
  setup: OriginalSetup;
  rewards: ReadonlyMap<string, number | null>;
}

function decide(state: OriginalState): Decision {
  const { setup } = state;
  const scored = [...state.rewards.values()].filter((r): r is number => r !== null);
  const infra = state.rewards.size - scored.length;
  const valScore = scored.length === 0 ? null : scored.reduce((a, b) => a + b, 0) / scored.length;
  const accept = valScore !== null && (setup.best === null || round4(valScore) >= round4(setup.best));
  const reason =
    valScore === null
      ? "every held-out run ended in an infrastructure error"
      : `val_score ${valScore.toFixed(4)} ${accept ? "≥" : "<"} best ${setup.best === null ? "n/a" : setup.best.toFixed(4)}`;
  const arm: ArmVerdict = {
    arm: setup.candidate,
    verdict: accept ? "winner" : "rejected",
    stage: valScore === null ? "infra" : "full",
    reason,
    valScore,
    improvement: null,
    figures: {},
    runs: state.rewards.size,
  };
  return {
    winner: accept ? setup.candidate : null,
    arms: [arm],
    alphaUsed: 0,
    heldOutRuns: state.rewards.size,
    infraErrors: infra,
    stage: arm.stage,
    reason,
  };
}

export const originalRule: GateRule<OriginalSetup, OriginalState> = {
  name: "original",
  start: (setup) => ({ setup, rewards: new Map() }),
  next(state): Action {
    const { setup } = state;
    const runs = setup.taskIds
      .map((taskId) => ({ arm: setup.candidate, taskId, trial: setup.trialBase }))
      .filter((r) => !state.rewards.has(runKey(r)));
    return runs.length > 0 ? { kind: "run", runs } : { kind: "decide", decision: decide(state) };
  },
  apply(state, results: readonly RunOutcome[]) {
    const rewards = new Map(state.rewards);
    for (const r of results) {
      if (r.arm !== state.setup.candidate || r.trial !== state.setup.trialBase) continue;
      if (!rewards.has(runKey(r))) rewards.set(runKey(r), r.reward);
    }
    return { setup: state.setup, rewards };
  },
};
