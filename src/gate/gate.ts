/**
 * The gate: guards (the file guard, the hard-coding check, the load check) on every candidate, then the rule
 * (`original` in its own one-pass shell; `paired` and `bayes` driven through the rule seam over the
 * candidates that passed), then the save (the suite pinned). A candidate is a copy of the experiment: the
 * working tree itself for a round of one, its own worktree for each of a race's.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { agentBundleHash } from "../benchmark/agent-hash.ts";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { CandidateEdit, GateOutput } from "../contracts.ts";
import { crashPoint } from "../crash-point.ts";
import { AbortedError } from "../errors.ts";
import { openRepo, type Repo } from "../git/repo.ts";
import { openWorktrees } from "../git/worktrees.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { bestValScore } from "../scoring.ts";
import { editableSpecs } from "../workspace/editable.ts";
import { readResults, readSuite, readTrainResults, type SplitFile, type Suite } from "../workspace/files.ts";
import { AGENT_FILE, paths, STEERING_FILES } from "../workspace/paths.ts";
import { fileGuard, fileGuardReason, rejectedEarly, type SuiteVerdict, type TestVerdict } from "./decide.ts";
import type { HeldOutTasks } from "./hardcode.ts";
import { hardcodeVerdictFor } from "./held-out.ts";
import { runOriginalRound } from "./original-round.ts";
import { bestSoFar, pinLegacyBaseline, saveSuite, trustedSplit, trustedSuite } from "./records.ts";
import { type CandidateArm, type RoundCandidate, runRound } from "./round.ts";
import type { FactsConfig, Night } from "./round-facts.ts";
import type { FlakySuiteVerdict } from "./suite.ts";

export type LoadCheckResult = { ok: true } | { ok: false; message: string };
/** Type-checks / loads the agent file; the real one lives in src/benchmark/sealed/load-check.ts. */
export type CheckAgent = (agentFile: string) => Promise<LoadCheckResult>;

/** What each gate step found, for the `gate` command's output. Aggregates only: no test-split task ids. */
export type GateStepReport =
  | { step: "file_guard"; passed: boolean; offending: string[]; candidate?: string }
  | { step: "hardcode"; passed: boolean; reason: string | null; candidate?: string }
  | { step: "load_check"; passed: boolean; message?: string; candidate?: string }
  | { step: "suite"; verdict: SuiteVerdict }
  | { step: "test"; verdict: TestVerdict }
  | { step: "promotion"; candidates: number; promoted: string[] }
  | { step: "round"; output: GateOutput; suite: FlakySuiteVerdict | null };

/** What the gate reads and writes in the journal: the pinned records, its decisions, the incumbent's results. */
export type GateJournal = Pick<Stores, "pins" | "gateRecords" | "runs" | "taskResults">;

/** One candidate of the round: the directory whose agent file it is (the experiment's root for a round of one). */
export interface GateCandidate {
  id: string;
  root: string;
  edit: CandidateEdit | null;
}

export type GateConfig = Pick<Config, "threshold"> &
  FactsConfig &
  Partial<Pick<Config, "gate_rule" | "agent_file" | "max_concurrency" | "editable">>;

export interface GateDeps {
  /** The night's "now" for a gate outside a run (the `gate` command); a run passes `night` instead. */
  clock?: Clock;
  root: string;
  /** Without `gate_rule` (a caller with no parsed config) the original rule decides. */
  config: GateConfig;
  /** The records the gate trusts (split, suite, best score, history); without it, the workspace files (original rule only). */
  journal?: GateJournal | null;
  /** The best val_score so far, as the loop knows it; default: from the journal. */
  bestValScore?: number | null;
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
  /** The round's candidates (default: the working tree, one candidate). */
  candidates?: GateCandidate[];
  /** The night the round belongs to, for its share of the error budget (default: an open night, now). */
  night?: Night;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError("gate aborted", signal.reason);
}

interface Records {
  journal: GateJournal | null;
  previousBest: number | null;
  suite: Suite;
  split: SplitFile | null;
  notes: string[];
}

/** Read everything first: a damaged file stops the gate before any benchmark or write. */
function readRecords(deps: GateDeps, p: ReturnType<typeof paths>): Records {
  const { log } = deps;
  const journal = deps.journal ?? null;
  // The journal's pinned copies are the records; the workspace files are views (a differing view is reported).
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
  return { journal, previousBest, suite, split, notes };
}

type Guarded = { ok: true; arm: CandidateArm } | { ok: false; stopped: RoundCandidate; reason: string; stage: string };

const stoppedAt = (c: GateCandidate, stage: string, reason: string): Guarded => ({
  ok: false,
  stage,
  reason,
  stopped: {
    id: c.id,
    verdict: "rejected",
    stage,
    reason,
    valScore: null,
    improvement: null,
    hypothesis: c.edit?.hypothesis ?? null,
    pattern: c.edit?.pattern ?? null,
    changeSummary: c.edit?.changeSummary ?? null,
    diff: "",
    runs: 0,
    figures: {},
  },
});

/** The three guards on one candidate, each before anything is run: file guard, hard-coding, load check. */
async function guard(
  deps: GateDeps,
  c: GateCandidate,
  specs: readonly string[],
  split: SplitFile | null,
): Promise<Guarded> {
  const { log } = deps;
  const agent = specs[0]!;
  const tag = (deps.candidates?.length ?? 1) > 1 ? { candidate: c.id } : {};
  const report = (r: GateStepReport) => deps.onStep?.({ ...r, ...tag });
  if (c.edit && !c.edit.changed) return stoppedAt(c, "edit", "its coding session changed nothing");
  const repo = c.root === deps.root ? deps.repo : openRepo(c.root);
  const file = paths(c.root, undefined, agent).agentFile;
  // Against HEAD: commits after the last accepted one are the harness's own (steering) or the operator's,
  // never the coding agent's; the agent file is the same in both.
  const head = await repo.headCommit();
  const changes = head ? await repo.changedPaths(head) : [];
  const files = fileGuard(changes, specs);
  report({ step: "file_guard", passed: files.passed, offending: files.offending });
  if (!files.passed) {
    log.warn({ gateStep: "file_guard", offending: files.offending, ...tag }, "gate: file guard failed");
    return stoppedAt(c, "file_guard", fileGuardReason(files, specs));
  }
  checkAborted(deps.signal);
  // A change that names held-out tasks or copies their inputs (or memorises train tasks) is not run.
  let memorised: string[] = [];
  if (deps.heldOut) {
    const hardcode = await hardcodeVerdictFor(repo, specs, c.root, await deps.heldOut(split));
    report({ step: "hardcode", passed: hardcode.passed, reason: hardcode.reason });
    if (!hardcode.passed) {
      log.warn(
        { gateStep: "hardcode", idHits: hardcode.idHits, fragmentHits: hardcode.fragmentHits, ...tag },
        "gate: hard-coding check failed",
      );
      return stoppedAt(c, "hardcode", hardcode.reason ?? "hard-coding check failed");
    }
    memorised = hardcode.memorised;
  }
  // A file that does not compile is not worth a benchmark run.
  const load = await deps.checkAgent(file);
  report(load.ok ? { step: "load_check", passed: true } : { step: "load_check", passed: false, message: load.message });
  if (!load.ok) {
    log.warn({ gateStep: "load_check", ...tag }, "gate: agent does not load");
    return stoppedAt(c, "load_check", `load check: ${agent} does not load: ${load.message}`);
  }
  checkAborted(deps.signal);
  const edit = c.edit && {
    hypothesis: c.edit.hypothesis,
    pattern: c.edit.pattern,
    changeSummary: c.edit.changeSummary,
    ...(c.edit.regatedFrom === undefined ? {} : { regatedFrom: c.edit.regatedFrom }),
  };
  return {
    ok: true,
    arm: {
      id: c.id,
      agentFile: c.root === deps.root ? undefined : file,
      hash: agentBundleHash(file, agent, specs),
      memorised,
      edit,
      diff: (await repo.diffOfWorkingFile(specs)).trim(),
    },
  };
}

/**
 * The last accepted agent beside the candidates, for the rule's incumbent runs: its file, or with other
 * editable files a copy of the whole experiment at the accepted commit (its folder as it was).
 */
async function incumbentOf(
  deps: GateDeps,
  specs: readonly string[],
  p: ReturnType<typeof paths>,
): Promise<{ file: string; hash: string }> {
  const agent = specs[0]!;
  const accepted = await deps.repo.lastAcceptedCommit(specs);
  const dir = join(p.workspace, "incumbent");
  if (specs.length > 1) {
    await openWorktrees(deps.root).fresh(dir, accepted);
  } else {
    const source = (await deps.repo.fileAtCommit(accepted, agent)) ?? readFileSync(p.agentFile, "utf8");
    mkdirSync(dirname(join(dir, agent)), { recursive: true });
    writeFileSync(join(dir, agent), source);
  }
  const file = join(dir, agent);
  return { file, hash: agentBundleHash(file, agent, specs) };
}

/**
 * The gate. Returns the verdict; throws HarnessError INFRA_FAILURE (resumable) when a split measured nothing,
 * FileDamagedError when a workspace file is damaged.
 */
export async function runGate(deps: GateDeps): Promise<GateOutput> {
  const { log, signal } = deps;
  const agent = deps.config.agent_file ?? AGENT_FILE;
  const p = paths(deps.root, undefined, agent);
  const rule = deps.config.gate_rule ?? "original";
  const records = readRecords(deps, p);
  const { journal, previousBest, suite, split, notes } = records;
  if (rule !== "original" && (!journal || !split)) throw new Error(`the ${rule} gate rule needs the journal`);
  const trainResults = readTrainResults(p.trainResults);

  const specs = editableSpecs(deps.config, agent);
  const candidates = deps.candidates ?? [{ id: "c1", root: deps.root, edit: null }];
  const guarded: Guarded[] = [];
  for (const c of candidates) guarded.push(await guard(deps, c, specs, split));
  const arms = guarded.flatMap((g) => (g.ok ? [g.arm] : []));
  const stopped = guarded.flatMap((g) => (g.ok ? [] : [g]));
  if (arms.length === 0) {
    const output: GateOutput = {
      ...rejectedEarly(stopped.map((s) => s.reason).join("; "), previousBest, suite.tasks.length),
      rule,
      stage: stopped[0]!.stage,
      ...(candidates.length > 1 ? { candidates: stopped.map((s) => s.stopped), winner: null } : {}),
    };
    if (candidates.length > 1 && journal && deps.runId !== null && deps.iteration !== null)
      journalStopped(
        journal,
        deps.runId,
        deps.iteration,
        rule,
        output,
        stopped.map((s) => s.stopped),
      );
    return output;
  }

  if (rule === "original") {
    return runOriginalRound({
      runner: deps.runner,
      log,
      journal,
      runId: deps.runId,
      iteration: deps.iteration,
      split,
      suite,
      suiteFile: p.suite,
      trainResults,
      previousBest,
      notes,
      signal,
      report: (r) => deps.onStep?.(r),
      beforeSave: () => crashPoint("gate:mid"),
    });
  }
  const res = await runRound({
    rule,
    config: deps.config,
    journal: journal!,
    log,
    runner: deps.runner,
    runId: deps.runId ?? "manual",
    iteration: deps.iteration ?? manualIteration(journal!),
    split: split!,
    suite,
    previousBest,
    notes,
    night: deps.night ?? {
      maxIterations: null,
      deadline: null,
      startedAt: null,
      now: (deps.clock ?? systemClock).now(),
    },
    incumbent: await incumbentOf(deps, specs, p),
    arms,
    stopped: stopped.map((s) => s.stopped),
    ...(signal ? { signal } : {}),
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  deps.onStep?.({ step: "round", output: res.output, suite: res.suiteVerdict });
  crashPoint("gate:mid");
  saveSuite(journal!, p.suite, res.suite);
  return res.output;
}

/** A race whose every candidate a guard stopped is a round too: the morning's pages show its candidates. */
function journalStopped(
  { gateRecords }: GateJournal,
  runId: string,
  iteration: number,
  rule: string,
  output: GateOutput,
  candidates: RoundCandidate[],
): void {
  gateRecords.resetGateDecision(runId, iteration);
  gateRecords.startGateDecision({
    runId,
    iteration,
    rule,
    candidateHash: "",
    incumbentHash: "",
    details: { seam: false },
  });
  gateRecords.finishGateDecision(runId, iteration, {
    accept: false,
    stage: output.stage ?? "file_guard",
    testRuns: 0,
    infraErrors: 0,
    valScore: null,
    output: { output },
    details: { alphaUsed: 0, reason: output.reasons.join("; "), winner: null, candidates },
  });
}

/** The `gate` command outside a run journals its decisions under "manual", numbered on. */
function manualIteration(journal: GateJournal): number {
  const last = journal.gateRecords.gateDecisions("manual").at(-1);
  // An interrupted gate is resumed (a different candidate starts that iteration afresh).
  if (last?.status === "running") return last.iteration;
  return (last?.iteration ?? 0) + 1;
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
