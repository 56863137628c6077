import { existsSync } from "node:fs";
import type { BenchmarkRunner, RunSummary } from "../benchmark/types.ts";
import type { Config } from "../config/schema.ts";
import type { GateOutput } from "../contracts.ts";
import { crashPoint } from "../crash-point.ts";
import { AbortedError } from "../errors.ts";
import type { Repo } from "../git/repo.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { bestValScore } from "../scoring.ts";
import { readResults, readSuite, readTrainResults, type SplitFile, writeSuite } from "../workspace/files.ts";
import { AGENT_FILE, paths, STEERING_FILES } from "../workspace/paths.ts";
import { type BayesConfig, type BayesProgress, runBayesGate } from "./bayes-gate.ts";
import {
  decideGate,
  fileGuard,
  fileGuardReason,
  promote,
  promotionCandidates,
  rejectedEarly,
  type SuiteVerdict,
  type TestVerdict,
} from "./decide.ts";
import type { HeldOutTasks } from "./hardcode.ts";
import { hardcodeVerdictFor } from "./held-out.ts";
import { bestSoFar, pinLegacyBaseline, saveSuite, trustedSplit, trustedSuite } from "./records.ts";
import type { FlakySuiteVerdict } from "./suite.ts";

export type LoadCheckResult = { ok: true } | { ok: false; message: string };
/** Type-checks / loads the agent file; the real one lives in src/benchmark/sealed/load-check.ts. */
export type CheckAgent = (agentFile: string) => Promise<LoadCheckResult>;

/** What each gate step found, for the `gate` command's output. Aggregates only: no test-split task ids. */
export type GateStepReport =
  | { step: "file_guard"; passed: boolean; offending: string[] }
  | { step: "hardcode"; passed: boolean; reason: string | null }
  | { step: "load_check"; passed: boolean; message?: string }
  | { step: "suite"; verdict: SuiteVerdict }
  | { step: "test"; verdict: TestVerdict }
  | { step: "promotion"; candidates: number; promoted: string[] }
  | { step: "bayes"; output: GateOutput; suite: FlakySuiteVerdict | null };

/** What the gate reads and writes in the journal: the pinned records, its decisions, the incumbent's results. */
export type GateJournal = Pick<Stores, "pins" | "gateRecords" | "runs" | "taskResults">;

export interface GateDeps {
  root: string;
  /** Without `gate_rule` (a caller with no parsed config) the original rule decides. */
  config: BayesConfig & Partial<Pick<Config, "gate_rule" | "agent_file">>;
  /** The records the gate trusts (split, suite, best score, history); without it, the workspace files (original rule only). */
  journal?: GateJournal | null;
  /** The best val_score so far, as the loop knows it; default: from the journal. */
  bestValScore?: number | null;
  onBayes?: (p: BayesProgress) => void;
  log: Logger;
  runner: BenchmarkRunner;
  repo: Repo;
  checkAgent: CheckAgent;
  runId: string | null;
  iteration: number | null;
  signal?: AbortSignal;
  onStep?: (report: GateStepReport) => void;
  /** The held-out tasks the hard-coding check compares the candidate against; the check is skipped without it. */
  heldOut?: (pinnedSplit: SplitFile | null) => Promise<HeldOutTasks>;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError("gate aborted", signal.reason);
}

/**
 * The four-step gate (plus promotion). Returns the verdict; throws HarnessError INFRA_FAILURE
 * (resumable) when a split measured nothing, FileDamagedError when a workspace file is damaged.
 */
export async function runGate(deps: GateDeps): Promise<GateOutput> {
  const { repo, runner, log, signal } = deps;
  const agent = deps.config.agent_file ?? AGENT_FILE;
  const p = paths(deps.root, undefined, agent);
  const report = (r: GateStepReport) => deps.onStep?.(r);

  const journal = deps.journal ?? null;
  const rule = deps.config.gate_rule ?? "original";
  if (rule === "bayes" && !journal) throw new Error("the bayes gate rule needs the journal");

  // Read everything first: a damaged file stops the gate before any benchmark or write. The journal's
  // pinned copies are the records; the workspace files are views (a differing view is reported, not trusted).
  const notes: string[] = [];
  if (journal && deps.bestValScore === undefined) pinLegacyBaseline(journal, p.results);
  const previousBest =
    deps.bestValScore !== undefined
      ? deps.bestValScore
      : journal
        ? bestSoFar(journal)
        : bestValScore(readResults(p.results));
  let suite = readSuite(p.suite, deps.config.threshold);
  let split: SplitFile | null = null;
  if (journal) {
    const pinnedSuite = trustedSuite(journal, p.suite, deps.config.threshold, log);
    suite = pinnedSuite.value;
    if (pinnedSuite.restored) notes.push(pinnedSuite.restored);
    const pinnedSplit = trustedSplit(journal, p.split, log);
    split = pinnedSplit.value;
    if (pinnedSplit.restored) notes.push(pinnedSplit.restored);
  }
  // The config is the threshold's one source; the suite record keeps the value last used.
  if (suite.threshold !== deps.config.threshold) {
    const note = `threshold changed from ${suite.threshold} to ${deps.config.threshold} (experiment_config.yaml)`;
    log.info({ from: suite.threshold, to: deps.config.threshold }, note);
    notes.push(note);
    suite = { ...suite, threshold: deps.config.threshold };
  }
  const trainResults = readTrainResults(p.trainResults);

  // 1. File guard. Against HEAD: commits after the last accepted one are the harness's own
  // (steering) or the operator's, never the coding agent's; the agent file is the same in both.
  const head = await repo.headCommit();
  const changes = head ? await repo.changedPaths(head) : [];
  const guard = fileGuard(changes, agent);
  report({ step: "file_guard", passed: guard.passed, offending: guard.offending });
  if (!guard.passed) {
    log.warn({ gateStep: "file_guard", offending: guard.offending }, "gate: file guard failed");
    return {
      ...rejectedEarly(fileGuardReason(guard, agent), previousBest, suite.tasks.length),
      rule,
      stage: "file_guard",
    };
  }
  checkAborted(signal);

  // 1b. Hard-coding: a change that names held-out tasks or copies their inputs is rejected without running it.
  if (deps.heldOut) {
    const hardcode = await hardcodeVerdictFor(repo, agent, p.agentFile, await deps.heldOut(split));
    report({ step: "hardcode", passed: hardcode.passed, reason: hardcode.reason });
    if (!hardcode.passed) {
      log.warn(
        { gateStep: "hardcode", idHits: hardcode.idHits, fragmentHits: hardcode.fragmentHits },
        "gate: hard-coding check failed",
      );
      return {
        ...rejectedEarly(hardcode.reason ?? "hard-coding check failed", previousBest, suite.tasks.length),
        rule,
        stage: "hardcode",
      };
    }
  }

  // 2. Load check: a file that does not compile is not worth a benchmark run.
  const load = await deps.checkAgent(p.agentFile);
  report(load.ok ? { step: "load_check", passed: true } : { step: "load_check", passed: false, message: load.message });
  if (!load.ok) {
    log.warn({ gateStep: "load_check" }, "gate: agent does not load");
    return {
      ...rejectedEarly(`load check: ${agent} does not load: ${load.message}`, previousBest, suite.tasks.length),
      rule,
      stage: "load_check",
    };
  }
  checkAborted(signal);

  if (rule === "bayes" && journal && split) {
    const res = await runBayesGate({
      root: deps.root,
      config: deps.config,
      journal,
      log,
      runner,
      repo,
      runId: deps.runId ?? "manual",
      iteration: deps.iteration ?? manualIteration(journal),
      split,
      suite,
      previousBest,
      notes,
      ...(signal ? { signal } : {}),
      ...(deps.onBayes ? { onProgress: deps.onBayes } : {}),
    });
    report({ step: "bayes", output: res.output, suite: res.suiteVerdict });
    crashPoint("gate:mid");
    saveSuite(journal, p.suite, res.suite);
    return res.output;
  }

  // 3 and 4 both always run, concurrently; the runner shares its concurrency limit between them.
  const common = { runId: deps.runId, iteration: deps.iteration, signal, writeTraces: false };
  const [suiteRun, testRun] = await Promise.allSettled([
    suite.tasks.length > 0
      ? runner.run({ ...common, split: "train", taskIds: suite.tasks })
      : Promise.resolve<RunSummary | null>(null),
    runner.run({ ...common, split: "test", ...(split ? { taskIds: split.test } : {}) }),
  ]);
  if (suiteRun.status === "rejected") throw suiteRun.reason;
  if (testRun.status === "rejected") throw testRun.reason;
  const suiteResults = suiteRun.value?.results ?? {};

  const decision = decideGate({ suite, suiteResults, testResults: testRun.value.results, previousBest });
  report({ step: "suite", verdict: decision.suite });
  report({ step: "test", verdict: decision.test });
  log.info(
    {
      gateStep: "suite_and_test",
      suitePassed: decision.suite.passedCount,
      suiteTotal: decision.suite.total,
      suiteOk: decision.suite.passed,
      valScore: decision.test.valScore,
      previousBest,
      testOk: decision.test.passed,
      testInfraErrors: decision.test.infraErrors,
    },
    "gate: regression suite and test split measured",
  );

  // 5. Promotion, only when both passed; the candidates are re-run against the new agent.
  let promoted: string[] = [];
  let promotedResults: Record<string, number | null> = {};
  if (decision.output.passed) {
    const candidates = promotionCandidates(trainResults?.results ?? null, suite.tasks);
    if (candidates.length > 0) {
      checkAborted(signal);
      const run = await runner.run({ ...common, split: "train", taskIds: candidates });
      promoted = promote(candidates, run.results);
      promotedResults = Object.fromEntries(promoted.map((id) => [id, run.results[id] ?? null]));
    }
    report({ step: "promotion", candidates: candidates.length, promoted });
    if (promoted.length > 0) log.info({ gateStep: "promotion", promoted }, "gate: tasks promoted into the suite");
  }

  crashPoint("gate:mid");
  const output: GateOutput = {
    ...decision.output,
    promoted,
    rule,
    stage: "full",
    testRuns: Object.keys(testRun.value.results).length,
    ...(notes.length ? { notes } : {}),
  };
  if (suite.tasks.length > 0 || promoted.length > 0 || existsSync(p.suite)) {
    const next = {
      ...suite,
      tasks: [...suite.tasks, ...promoted],
      last_results: { ...suite.last_results, ...suiteResults, ...promotedResults },
    };
    if (journal) saveSuite(journal, p.suite, next);
    else writeSuite(p.suite, next);
  }
  if (journal && deps.runId !== null && deps.iteration !== null)
    recordOriginal(journal, deps.runId, deps.iteration, output);
  return output;
}

/** The `gate` command outside a run journals its decisions under "manual", numbered on. */
function manualIteration(journal: GateJournal): number {
  const last = journal.gateRecords.gateDecisions("manual").at(-1);
  // An interrupted gate is resumed (a different candidate starts that iteration afresh).
  if (last?.status === "running") return last.iteration;
  return (last?.iteration ?? 0) + 1;
}

/** The original rule's decision, journaled like the bayes rule's so the report and --explain read one table. */
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

/**
 * Commits an operator's edits of the steering files (PROGRAM.md, the config), without a run trailer, so the
 * history shows when the steering changed. The daemon calls it at the start of each iteration.
 * Returns the last commit made, or null.
 */
export async function commitSteeringIfChanged(repo: Repo): Promise<string | null> {
  let last: string | null = null;
  for (const file of STEERING_FILES) {
    if (!existsSync(`${repo.root}/${file}`)) continue;
    if (!(await repo.fileDiffersFromHead(file))) continue;
    last = await repo.commitFile(file, `steer: ${file} updated`);
  }
  return last;
}
