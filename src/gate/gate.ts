import { existsSync } from "node:fs";
import type { BenchmarkRunner, RunSummary } from "../benchmark/types.ts";
import type { Config } from "../config/schema.ts";
import { crashPoint } from "../daemon/crash-point.ts";
import { AbortedError } from "../errors.ts";
import type { Repo } from "../git/repo.ts";
import type { Journal } from "../journal/journal.ts";
import type { Logger } from "../log.ts";
import { bestValScore } from "../scoring.ts";
import type { GateOutput } from "../steps/contracts.ts";
import { readResults, readSuite, readTrainResults, writeSuite } from "../workspace/files.ts";
import { AGENT_FILE, paths, STEERING_FILES } from "../workspace/paths.ts";
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

export type LoadCheckResult = { ok: true } | { ok: false; message: string };
/** Type-checks / loads the agent file; the real one lives in src/benchmark/load-check.ts. */
export type CheckAgent = (agentFile: string) => Promise<LoadCheckResult>;

/** What each gate step found, for the `gate` command's output. Aggregates only: no test-split task ids. */
export type GateStepReport =
  | { step: "file_guard"; passed: boolean; offending: string[] }
  | { step: "hardcode"; passed: boolean; reason: string | null }
  | { step: "load_check"; passed: boolean; message?: string }
  | { step: "suite"; verdict: SuiteVerdict }
  | { step: "test"; verdict: TestVerdict }
  | { step: "promotion"; candidates: number; promoted: string[] };

export interface GateDeps {
  root: string;
  config: Pick<Config, "threshold"> & Partial<Pick<Config, "agent_file">>;
  /** Not read here: the runner reuses journaled results of the same agent hash. */
  journal?: Journal | null;
  log: Logger;
  runner: BenchmarkRunner;
  repo: Repo;
  checkAgent: CheckAgent;
  runId: string | null;
  iteration: number | null;
  signal?: AbortSignal;
  onStep?: (report: GateStepReport) => void;
  /** The held-out tasks the hard-coding check compares the candidate against; the check is skipped without it. */
  heldOut?: () => Promise<HeldOutTasks>;
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

  // Read everything first: a damaged file stops the gate before any benchmark or write.
  const previousBest = bestValScore(readResults(p.results));
  const suite = readSuite(p.suite, deps.config.threshold);
  const trainResults = readTrainResults(p.trainResults);

  // 1. File guard. Against HEAD: commits after the last accepted one are the harness's own
  // (steering) or the operator's, never the coding agent's; the agent file is the same in both.
  const head = await repo.headCommit();
  const changes = head ? await repo.changedPaths(head) : [];
  const guard = fileGuard(changes, agent);
  report({ step: "file_guard", passed: guard.passed, offending: guard.offending });
  if (!guard.passed) {
    log.warn({ gateStep: "file_guard", offending: guard.offending }, "gate: file guard failed");
    return rejectedEarly(fileGuardReason(guard, agent), previousBest, suite.tasks.length);
  }
  checkAborted(signal);

  // 1b. Hard-coding: a change that names held-out tasks or copies their inputs is rejected without running it.
  if (deps.heldOut) {
    const hardcode = await hardcodeVerdictFor(repo, p.agentFile, await deps.heldOut());
    report({ step: "hardcode", passed: hardcode.passed, reason: hardcode.reason });
    if (!hardcode.passed) {
      log.warn(
        { gateStep: "hardcode", idHits: hardcode.idHits, fragmentHits: hardcode.fragmentHits },
        "gate: hard-coding check failed",
      );
      return rejectedEarly(hardcode.reason ?? "hard-coding check failed", previousBest, suite.tasks.length);
    }
  }

  // 2. Load check: a file that does not compile is not worth a benchmark run.
  const load = await deps.checkAgent(p.agentFile);
  report(load.ok ? { step: "load_check", passed: true } : { step: "load_check", passed: false, message: load.message });
  if (!load.ok) {
    log.warn({ gateStep: "load_check" }, "gate: agent does not load");
    return rejectedEarly(`load check: ${agent} does not load: ${load.message}`, previousBest, suite.tasks.length);
  }
  checkAborted(signal);

  // 3 and 4 both always run, concurrently; the runner shares its concurrency limit between them.
  const common = { runId: deps.runId, iteration: deps.iteration, signal, writeTraces: false };
  const [suiteRun, testRun] = await Promise.allSettled([
    suite.tasks.length > 0
      ? runner.run({ ...common, split: "train", taskIds: suite.tasks })
      : Promise.resolve<RunSummary | null>(null),
    runner.run({ ...common, split: "test" }),
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
  if (suite.tasks.length > 0 || promoted.length > 0 || existsSync(p.suite)) {
    writeSuite(p.suite, {
      tasks: [...suite.tasks, ...promoted],
      threshold: suite.threshold,
      last_results: { ...suite.last_results, ...suiteResults, ...promotedResults },
    });
  }
  return { ...decision.output, promoted };
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
