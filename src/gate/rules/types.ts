/**
 * The seam every gate rule implements: a pure, resumable step function over arms (the incumbent and one or
 * more candidates), so one candidate and a race of K candidates are the same code. The state is a fold of
 * the results: replaying the journaled results through `apply` reaches the same state, hence the same
 * decision. Everything a decision holds is ids and numbers, never task content.
 */

/** The arm of the agent that was last accepted; candidates are named by their own ids. */
export const INCUMBENT = "incumbent";

/** One held-out run the shell must make. `trial` is unique per (arm, task) over the whole night. */
export interface Run {
  arm: string;
  taskId: string;
  trial: number;
}

/** A run's reward, or null for an infrastructure error (never the agent's fault, never to its credit). */
export interface RunOutcome extends Run {
  reward: number | null;
}

/** Where an arm's verdict was reached. */
export type Stage = "train" | "look" | "full" | "rerun" | "budget" | "infra";

export interface Interval {
  mean: number;
  low: number;
  high: number;
}

export interface ArmVerdict {
  arm: string;
  /** winner: accepted; runner-up: beat the incumbent but another arm won (re-gate it next round). */
  verdict: "winner" | "runner-up" | "rejected";
  stage: Stage;
  reason: string;
  /** Mean reward of the arm's first held-out run of each task it ran (the val_score a results row shows). */
  valScore: number | null;
  /** Paired first-pass improvement over the incumbent (same tasks, same batch) with a 95% interval. */
  improvement: (Interval & { tasks: number }) | null;
  /** The rule's own evidence figures (for --explain): e.g. log e-value, P(improvement). */
  figures: Record<string, number>;
  /** Held-out runs of this arm (its share of the incumbent's runs not included). */
  runs: number;
}

export interface Decision {
  /** The accepted arm, at most one; null: no change this round. */
  winner: string | null;
  arms: ArmVerdict[];
  /** Share of the night's error budget this round used (0 when no held-out run was made). */
  alphaUsed: number;
  /** Held-out runs of every arm, the incumbent's included. */
  heldOutRuns: number;
  infraErrors: number;
  stage: Stage;
  reason: string;
}

export type Action = { kind: "run"; runs: Run[] } | { kind: "decide"; decision: Decision };

/**
 * A gate rule. `next` is idempotent (asking twice without a result gives the same action); `apply` folds
 * results in any grouping (one at a time as they finish, or a whole batch) and ignores a result it holds
 * already, so a resumed gate replays its journal and asks only for what is missing.
 */
export interface GateRule<Setup, State> {
  readonly name: string;
  start(setup: Setup): State;
  next(state: State): Action;
  apply(state: State, results: readonly RunOutcome[]): State;
}

export const runKey = (r: Run): string => `${r.arm}\u0000${r.taskId}\u0000${r.trial}`;

/** A state rebuilt from the journal: the setup, then every result journaled, in order. */
export function replay<S, T>(rule: GateRule<S, T>, setup: S, results: readonly RunOutcome[]): T {
  return rule.apply(rule.start(setup), results);
}

/** Drives a rule to its decision against a synchronous oracle (benches and tests). */
export function driveSync<S, T>(
  rule: GateRule<S, T>,
  setup: S,
  run: (r: Run) => number | null,
): { state: T; decision: Decision; results: RunOutcome[] } {
  let state = rule.start(setup);
  const results: RunOutcome[] = [];
  for (;;) {
    const action = rule.next(state);
    if (action.kind === "decide") return { state, decision: action.decision, results };
    const batch = action.runs.map((r) => ({ ...r, reward: run(r) }));
    results.push(...batch);
    state = rule.apply(state, batch);
  }
}
