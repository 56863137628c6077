/**
 * The night's error budget, pure: the operator tolerates an expected `budget` acceptances per night of
 * edits that change nothing or harm (default 0.1). Each round that reaches the held-out split may accept a
 * no-change edit with probability at most its alpha (the paired rule's e-value guarantees it, under any
 * stopping and any number of looks), so the night's expected count is at most the sum of the alphas spent.
 * A round's alpha is what is left spread over the rounds expected to still reach the held-out split; it is
 * never more than what is left, so no number of rounds or candidates can overspend the night.
 */

export interface NightPlan {
  /** Expected no-change or harmful acceptances the operator tolerates per night. */
  budget: number;
  /** Alpha used by the rounds decided so far (the sum of their `alphaUsed`). */
  spent: number;
  /** Rounds decided so far, and how many of them reached the held-out split. */
  roundsDone: number;
  testedRounds: number;
  /** The night's limits: iterations, and the deadline in ms from the start (null: none). */
  maxIterations: number | null;
  deadlineMs: number | null;
  elapsedMs: number;
}

/** Rounds assumed left when the night has neither an iteration limit nor a deadline. */
export const OPEN_NIGHT_ROUNDS = 30;
export const DEFAULT_NIGHT_BUDGET = 0.1;

export interface RoundBudget {
  /** What this round may use. */
  alpha: number;
  remaining: number;
  /** Rounds the plan leaves, and how many of them are expected to reach the held-out split. */
  roundsLeft: number;
  expectedTests: number;
}

export function roundsLeft(plan: NightPlan): number {
  let left = Number.POSITIVE_INFINITY;
  if (plan.maxIterations !== null) left = Math.max(1, plan.maxIterations - plan.roundsDone);
  if (plan.deadlineMs !== null && plan.roundsDone > 0 && plan.elapsedMs > 0) {
    const perRound = plan.elapsedMs / plan.roundsDone;
    left = Math.min(left, Math.max(1, Math.ceil((plan.deadlineMs - plan.elapsedMs) / perRound)));
  }
  return Number.isFinite(left) ? left : OPEN_NIGHT_ROUNDS;
}

export function roundAlpha(plan: NightPlan): RoundBudget {
  const remaining = Math.max(0, plan.budget - plan.spent);
  const left = roundsLeft(plan);
  // The share of rounds that reach the held-out split so far, starting from one in two.
  const reach = (plan.testedRounds + 1) / (plan.roundsDone + 2);
  const expectedTests = Math.max(1, left * reach);
  return { alpha: remaining / expectedTests, remaining, roundsLeft: left, expectedTests };
}

/** A decided round of several candidates: its time, and what the train screens beyond the first took of it. */
export interface ScreenTime {
  roundMs: number;
  extraMs: number;
  /** Candidates beyond the first. */
  extra: number;
}

/**
 * Rounds the night's held-out bank counts: one per round, and for a round of several candidates the share of
 * a round of one its extra train screens took (at most one per extra candidate). Per round alone, a round of
 * K candidates, longer by its K train screens, earns what a round of one does: width would pay in held-out
 * runs for train runs that cost none. A round of one earns exactly one, as before.
 */
export function bankRounds(round: number, done: readonly ScreenTime[]): number {
  let credit = 0;
  for (const r of done)
    if (r.extraMs > 0 && r.roundMs > r.extraMs) credit += Math.min(r.extra, r.extraMs / (r.roundMs - r.extraMs));
  return round + credit;
}

/** The night's held-out runs: the original's rule spends N at the baseline and N per iteration. */
export interface RunBank {
  /** Held-out tasks (N). */
  tasks: number;
  /** This round's number (1 for the first gate) and the held-out runs spent so far, the baseline's included. */
  round: number;
  spent: number;
  /** Arms racing this round, the incumbent not counted. */
  candidates: number;
  /** How far (in N) the night may run ahead of the original's spending; and one round's cap, in N per arm pair. */
  slack: number;
  perRound: number;
}

export const DEFAULT_BANK_SLACK = 3;
export const DEFAULT_ROUND_RUNS = 4;

/**
 * Held-out runs a round may spend: never more than `perRound` N per candidate-and-incumbent pair, and never
 * so many that the night runs more than `slack` N ahead of the original's N per iteration. Rounds that
 * stop early (the train screen, a clear loser) leave their runs to the rounds that need them.
 */
export function runAllowance(b: RunBank): number {
  const bank = b.tasks * (b.round + 1 + b.slack) - b.spent;
  const cap = (b.perRound * b.tasks * (b.candidates + 1)) / 2;
  return Math.max(0, Math.floor(Math.min(cap, bank)));
}
