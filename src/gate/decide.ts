import type { GateOutput } from "../contracts.ts";
import { HarnessError } from "../errors.ts";
import type { ChangedPath } from "../git/repo.ts";
import { meanReward, passes, round4 } from "../scoring.ts";
import { isEditable } from "../workspace/editable.ts";
import type { Suite } from "../workspace/files.ts";
import { AGENT_FILE, isSteering } from "../workspace/paths.ts";

/** The gate's decisions, pure: the I/O shell in gate.ts gathers the facts and writes the outcome. */

export type Rewards = Record<string, number | null>;

/** What the coding model may change: the agent file alone, or it and the config's `editable` patterns. */
type Editable = string | readonly string[];
const specsOf = (e: Editable): readonly string[] => (typeof e === "string" ? [e] : e);

/** Paths the file guard lets through: the editable files, the operator's steering files, runtime data. */
export const guardAllows = (path: string, agentFile: Editable = AGENT_FILE): boolean =>
  isEditable(path, specsOf(agentFile)) || isSteering(path) || path === "workspace" || path.startsWith("workspace/");

export interface FileGuardVerdict {
  passed: boolean;
  offending: string[];
}

export function fileGuard(changes: ChangedPath[], agentFile: Editable = AGENT_FILE): FileGuardVerdict {
  const offending = new Set<string>();
  for (const change of changes) {
    if (!guardAllows(change.path, agentFile)) offending.add(change.path);
    // Moving a file out of (or into) an allowed place still changes the other path.
    if (change.from !== undefined && !guardAllows(change.from, agentFile)) offending.add(change.from);
  }
  const list = [...offending].sort();
  return { passed: list.length === 0, offending: list };
}

export interface SuiteVerdict {
  passed: boolean;
  passedCount: number;
  /** Suite tasks with a reward; infrastructure errors are left out, as in means. */
  total: number;
  infraErrors: number;
  threshold: number;
  /** passedCount / total; null for an empty suite. */
  rate: number | null;
}

// A rate computed from small integers can land a hair under the threshold (0.7 vs 0.7000000001).
const EPSILON = 1e-9;

export function suiteVerdict(tasks: string[], threshold: number, results: Rewards): SuiteVerdict {
  if (tasks.length === 0) return { passed: true, passedCount: 0, total: 0, infraErrors: 0, threshold, rate: null };
  const rewards = tasks.map((id) => results[id] ?? null);
  const scored = rewards.filter((r): r is number => r !== null);
  if (scored.length === 0) {
    throw new HarnessError(
      "INFRA_FAILURE",
      `regression suite: all ${tasks.length} task(s) ended in an infrastructure error; nothing was measured`,
    );
  }
  const passedCount = scored.filter((r) => passes(r)).length;
  const rate = passedCount / scored.length;
  return {
    passed: rate + EPSILON >= threshold,
    passedCount,
    total: scored.length,
    infraErrors: rewards.length - scored.length,
    threshold,
    rate,
  };
}

export interface TestVerdict {
  passed: boolean;
  valScore: number;
  previousBest: number | null;
  total: number;
  infraErrors: number;
}

export function testVerdict(results: Rewards, previousBest: number | null): TestVerdict {
  const valScore = meanReward(results);
  const total = Object.keys(results).length;
  if (valScore === null) {
    throw new HarnessError(
      "INFRA_FAILURE",
      `full test split: all ${total} task(s) ended in an infrastructure error; nothing was measured`,
    );
  }
  const infraErrors = Object.values(results).filter((r) => r === null).length;
  const passed = previousBest === null || round4(valScore) >= round4(previousBest);
  return { passed, valScore, previousBest, total, infraErrors };
}

/** Train tasks that failed (reward < 0.5, not an infrastructure error) and are not in the suite yet. */
export function promotionCandidates(trainResults: Rewards | null, suiteTasks: string[]): string[] {
  if (!trainResults) return [];
  const inSuite = new Set(suiteTasks);
  return Object.entries(trainResults)
    .filter(([id, r]) => r !== null && !passes(r) && !inSuite.has(id))
    .map(([id]) => id)
    .sort();
}

export function promote(candidates: string[], newResults: Rewards): string[] {
  return candidates.filter((id) => passes(newResults[id]));
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

export function suiteReason(v: SuiteVerdict): string {
  return `regression suite: ${v.passedCount}/${v.total} passed (${pct(v.rate ?? 0)}) < threshold ${pct(v.threshold)}`;
}

export function testReason(v: TestVerdict): string {
  return `full test split: val_score ${v.valScore.toFixed(4)} < best ${(v.previousBest ?? 0).toFixed(4)}`;
}

export interface GateFacts {
  suite: Pick<Suite, "tasks" | "threshold">;
  suiteResults: Rewards;
  testResults: Rewards;
  previousBest: number | null;
}

export interface GateDecision {
  output: GateOutput;
  suite: SuiteVerdict;
  test: TestVerdict;
}

/** Steps 3 and 4 together; promotion is added by the caller once it has the candidates' new rewards. */
export function decideGate(facts: GateFacts): GateDecision {
  const suite = suiteVerdict(facts.suite.tasks, facts.suite.threshold, facts.suiteResults);
  const test = testVerdict(facts.testResults, facts.previousBest);
  const reasons: string[] = [];
  if (!suite.passed) reasons.push(suiteReason(suite));
  if (!test.passed) reasons.push(testReason(test));
  return {
    suite,
    test,
    output: {
      passed: reasons.length === 0,
      valScore: test.valScore,
      previousBest: facts.previousBest,
      suitePassed: suite.passedCount,
      suiteTotal: suite.total,
      promoted: [],
      reasons,
    },
  };
}

/** The gate's result when it stops before any benchmark (file guard, load check). */
export function rejectedEarly(reason: string, previousBest: number | null, suiteTotal: number): GateOutput {
  return { passed: false, valScore: null, previousBest, suitePassed: 0, suiteTotal, promoted: [], reasons: [reason] };
}

export function fileGuardReason(v: FileGuardVerdict, agentFile: Editable = AGENT_FILE): string {
  return `file guard: only ${specsOf(agentFile).join(", ")} may change, but these differ: ${v.offending.join(", ")}`;
}
