/**
 * The `original` rule's round, the seed's protocol kept as it was: the regression suite and one pass over the
 * held-out split run together; val_score at least the best so far and the suite at `threshold` accept; then
 * train tasks that failed and now pass join the suite. Works without the journal too (the files' view).
 */
import { existsSync } from "node:fs";
import type { BenchmarkRunner, RunSummary } from "../benchmark/types.ts";
import type { GateOutput } from "../contracts.ts";
import type { Logger } from "../log.ts";
import { type SplitFile, type Suite, type TrainResults, writeSuite } from "../workspace/files.ts";
import { decideGate, promote, promotionCandidates, type SuiteVerdict, type TestVerdict } from "./decide.ts";
import type { GateJournal } from "./gate.ts";
import { saveSuite } from "./records.ts";

export type OriginalStep =
  | { step: "suite"; verdict: SuiteVerdict }
  | { step: "test"; verdict: TestVerdict }
  | { step: "promotion"; candidates: number; promoted: string[] };

export interface OriginalInput {
  runner: BenchmarkRunner;
  log: Logger;
  journal: GateJournal | null;
  runId: string | null;
  iteration: number | null;
  split: SplitFile | null;
  suite: Suite;
  suiteFile: string;
  trainResults: TrainResults | null;
  previousBest: number | null;
  notes: string[];
  signal: AbortSignal | undefined;
  report: (r: OriginalStep) => void;
  beforeSave: () => void;
}

export async function runOriginalRound(o: OriginalInput): Promise<GateOutput> {
  const { runner, log, suite } = o;
  // The suite and the held-out pass both always run, concurrently.
  const common = { runId: o.runId, iteration: o.iteration, signal: o.signal, writeTraces: false };
  const [suiteRun, testRun] = await Promise.allSettled([
    suite.tasks.length > 0
      ? runner.run({ ...common, split: "train", taskIds: suite.tasks })
      : Promise.resolve<RunSummary | null>(null),
    runner.run({ ...common, split: "test", ...(o.split ? { taskIds: o.split.test } : {}) }),
  ]);
  if (suiteRun.status === "rejected") throw suiteRun.reason;
  if (testRun.status === "rejected") throw testRun.reason;
  const suiteResults = suiteRun.value?.results ?? {};

  const decision = decideGate({
    suite,
    suiteResults,
    testResults: testRun.value.results,
    previousBest: o.previousBest,
  });
  o.report({ step: "suite", verdict: decision.suite });
  o.report({ step: "test", verdict: decision.test });
  log.info(
    {
      gateStep: "suite_and_test",
      suitePassed: decision.suite.passedCount,
      suiteTotal: decision.suite.total,
      suiteOk: decision.suite.passed,
      valScore: decision.test.valScore,
      previousBest: o.previousBest,
      testOk: decision.test.passed,
      testInfraErrors: decision.test.infraErrors,
    },
    "gate: regression suite and test split measured",
  );

  // Promotion, only when both passed; the candidates are re-run against the new agent.
  let promoted: string[] = [];
  let promotedResults: Record<string, number | null> = {};
  if (decision.output.passed) {
    const candidates = promotionCandidates(o.trainResults?.results ?? null, suite.tasks);
    if (candidates.length > 0) {
      const run = await runner.run({ ...common, split: "train", taskIds: candidates });
      promoted = promote(candidates, run.results);
      promotedResults = Object.fromEntries(promoted.map((id) => [id, run.results[id] ?? null]));
    }
    o.report({ step: "promotion", candidates: candidates.length, promoted });
    if (promoted.length > 0) log.info({ gateStep: "promotion", promoted }, "gate: tasks promoted into the suite");
  }

  o.beforeSave();
  const output: GateOutput = {
    ...decision.output,
    promoted,
    rule: "original",
    stage: "full",
    testRuns: Object.keys(testRun.value.results).length,
    ...(o.notes.length ? { notes: o.notes } : {}),
  };
  if (suite.tasks.length > 0 || promoted.length > 0 || existsSync(o.suiteFile)) {
    const next = {
      ...suite,
      tasks: [...suite.tasks, ...promoted],
      last_results: { ...suite.last_results, ...suiteResults, ...promotedResults },
    };
    if (o.journal) saveSuite(o.journal, o.suiteFile, next);
    else writeSuite(o.suiteFile, next);
  }
  if (o.journal && o.runId !== null && o.iteration !== null) recordOriginal(o.journal, o.runId, o.iteration, output);
  return output;
}

/** The original rule's decision, journaled like the others' so the report and --explain read one table. */
function recordOriginal({ gateRecords }: GateJournal, runId: string, iteration: number, output: GateOutput): void {
  gateRecords.resetGateDecision(runId, iteration);
  gateRecords.startGateDecision({
    runId,
    iteration,
    rule: "original",
    candidateHash: "",
    incumbentHash: "",
    details: {},
  });
  gateRecords.finishGateDecision(runId, iteration, {
    accept: output.passed,
    stage: "full",
    testRuns: output.testRuns ?? 0,
    infraErrors: 0,
    valScore: output.valScore,
    output: { output },
    details: {
      looks: { reason: output.reasons.join("; ") || "val_score at least the best so far and the suite at threshold" },
    },
  });
}
