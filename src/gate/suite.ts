/**
 * The flake-aware regression suite, pure. A train task joins after the accepted agent passes it k of n runs;
 * per-task pass counts are kept; a member that the incumbent itself fails on a re-run (it flipped without
 * any edit) is quarantined and shown as flaky; the check compares the candidate's failures with what the
 * incumbent's own per-task rates predict, instead of a fixed bar.
 */
import { passes } from "../scoring.ts";
import type { Suite } from "../workspace/files.ts";

export const JOIN_RUNS = 3;
export const JOIN_PASSES = 2;

export type Rates = NonNullable<Suite["rates"]>;

/** Predictive pass rate of a member (a Beta(1, 1) prior keeps one lucky pass from meaning certainty). */
export const memberRate = (r: { passes: number; runs: number } | undefined): number =>
  ((r?.passes ?? 0) + 1) / ((r?.runs ?? 0) + 2);

export interface FlakySuiteVerdict {
  passed: boolean;
  /** Members checked (quarantined ones left out). */
  total: number;
  failed: string[];
  /** Failures the incumbent's own rates predict, and the most the check allows. */
  expectedFailures: number;
  allowedFailures: number;
  infraErrors: number;
  quarantined: string[];
}

/**
 * The check: the candidate's failures among active members against the incumbent's rates. Failing members
 * the incumbent also failed on its re-run are flaky, not the candidate's fault: they go to quarantine.
 */
export function flakySuiteVerdict(
  suite: Suite,
  candidate: Record<string, number | null>,
  incumbentRerun: Record<string, number | null>,
): FlakySuiteVerdict {
  const quarantine = new Set(suite.quarantined ?? []);
  const failed: string[] = [];
  let total = 0;
  let infra = 0;
  let mean = 0;
  let variance = 0;
  for (const id of suite.tasks) {
    if (quarantine.has(id)) continue;
    const got = candidate[id] ?? null;
    // An infrastructure error is a failed member: leaving it out would let an agent that provokes rate
    // limits on the members it breaks pass the check.
    if (got === null) infra += 1;
    const r = got ?? 0;
    const rerun = incumbentRerun[id] ?? null;
    if (got !== null && !passes(got) && rerun !== null && !passes(rerun)) {
      quarantine.add(id);
      continue;
    }
    total += 1;
    const p = memberRate(suite.rates?.[id]);
    mean += 1 - p;
    variance += p * (1 - p);
    if (!passes(r)) failed.push(id);
  }
  // Two standard deviations over what the incumbent itself would fail, rounded up.
  const allowed = Math.floor(mean + 2 * Math.sqrt(variance));
  return {
    passed: failed.length <= allowed,
    total,
    failed,
    expectedFailures: mean,
    allowedFailures: allowed,
    infraErrors: infra,
    quarantined: [...quarantine].filter((id) => !(suite.quarantined ?? []).includes(id)),
  };
}

/** Promotion by k of n: tasks whose runs (trial 0 from the candidate's train run, then re-runs) pass often enough. */
export function promoteByRuns(runs: Record<string, (number | null)[]>): string[] {
  return Object.entries(runs)
    .filter(([, xs]) => xs.filter((x) => passes(x)).length >= JOIN_PASSES)
    .map(([id]) => id)
    .sort();
}

/** The suite after a gate: new quarantines, new members and the accepted agent's runs counted into the rates. */
export function nextSuite(
  suite: Suite,
  threshold: number,
  v: FlakySuiteVerdict | null,
  accepted: { results: Record<string, number | null>; promotionRuns: Record<string, (number | null)[]> } | null,
): Suite {
  const quarantined = [...new Set([...(suite.quarantined ?? []), ...(v?.quarantined ?? [])])].sort();
  const rates: Rates = { ...(suite.rates ?? {}) };
  let tasks = [...suite.tasks];
  const last = { ...suite.last_results };
  if (accepted) {
    const count = (id: string, x: number | null) => {
      if (x === null) return;
      const r = rates[id] ?? { passes: 0, runs: 0 };
      rates[id] = { passes: r.passes + (passes(x) ? 1 : 0), runs: r.runs + 1 };
    };
    for (const id of tasks) count(id, accepted.results[id] ?? null);
    for (const [id, xs] of Object.entries(accepted.promotionRuns)) for (const x of xs) count(id, x);
    const joined = promoteByRuns(accepted.promotionRuns).filter((id) => !tasks.includes(id));
    tasks = [...tasks, ...joined];
    for (const id of tasks) if (id in accepted.results) last[id] = accepted.results[id] ?? null;
  }
  return { tasks, threshold, last_results: last, rates, quarantined };
}
