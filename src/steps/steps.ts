import { existsSync, readFileSync } from "node:fs";
import { createAdapter } from "../benchmark/adapters/index.ts";
import { type CheckResult, checkAgent } from "../benchmark/sealed/load-check.ts";
import { compilePython } from "../benchmark/sealed/python-check.ts";
import { sandboxSpec } from "../benchmark/sealed/sandbox.ts";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import type { Clock } from "../clock.ts";
import type { CodingAgent } from "../coding-agent/index.ts";
import type { Config } from "../config/schema.ts";
import type { Steps } from "../contracts.ts";
import { crashPoint } from "../crash-point.ts";
import { limitsOf } from "../daemon/start.ts";
import { HarnessError } from "../errors.ts";
import { runGate } from "../gate/gate.ts";
import { heldOutOf } from "../gate/held-out.ts";
import { holdoutLine, scoreHoldout } from "../gate/holdout.ts";
import { bestSoFar } from "../gate/records.ts";
import type { Night } from "../gate/round-facts.ts";
import type { Repo } from "../git/repo.ts";
import { closingSummaryKey, pinnedBaseline, pinnedSplit, rejectedDiffKey } from "../journal/pins.ts";
import type { Stores } from "../journal/stores.ts";
import { appendClosingSummary, closingSummary, learnIteration } from "../learnings/learnings.ts";
import type { Logger } from "../log.ts";
import { RUN_TRAILER, recordIteration, runTrailerValue } from "../record/record.ts";
import { agentsSealed, createSteeringGuard, type SteeringGuard } from "../steering/steering.ts";
import { editableSpecs } from "../workspace/editable.ts";
import { writeTrainResults } from "../workspace/files.ts";
import { AGENT_FILE, paths } from "../workspace/paths.ts";
import { createCheck } from "./check.ts";
import {
  bringWinner,
  candidateDir,
  editOf,
  gateCandidates,
  raceEdit,
  removeAllCandidates,
  removeRound,
} from "./race.ts";

export interface StepDeps {
  root: string;
  config: Config;
  journal: Pick<Stores, "runs" | "ledger" | "pins" | "gateRecords" | "taskResults">;
  log: Logger;
  clock: Clock;
  runner: BenchmarkRunner;
  codingAgent: CodingAgent;
  repo: Repo;
  /** Agent windows and the pinned steering versions; the coding agent's runner should be wrapped by the same one. */
  steering?: SteeringGuard;
}

/**
 * The agent file as of the last accepted commit: every edit starts from it (and from the other editable
 * files as they were then, restored with it).
 */
export async function acceptedAgentContent(
  repo: Repo,
  root: string,
  agentFile = AGENT_FILE,
  editable: readonly string[] = [agentFile],
): Promise<string> {
  const files = editable.length > 1 ? editable : agentFile;
  await repo.restoreFile(files, await repo.lastAcceptedCommit(files));
  return readFileSync(paths(root, undefined, agentFile).agentFile, "utf8");
}

/**
 * The load check for the config's agent file, in the sealed agent process: TypeScript is type-checked and loaded,
 * Python compiled and imported by the Python runtime (only compiled when an external `command` tool runs it).
 */
export const agentCheck =
  (root: string, config?: Partial<Pick<Config, "benchmark" | "sandbox" | "sandbox_user" | "sandbox_limits">>) =>
  (agentFile: string): Promise<CheckResult> =>
    agentFile.endsWith(".py") && config?.benchmark === "command"
      ? compilePython(agentFile)
      : checkAgent(agentFile, { root, sandbox: sandboxSpec(config) });

/** The run the round belongs to, for its share of the night's error budget. */
function nightOf(journal: Pick<Stores, "runs">, config: Config, runId: string, now: number): Night {
  const startedAt = journal.runs.getRun(runId)?.createdAt ?? null;
  return {
    maxIterations: config.max_iterations,
    deadline: startedAt === null ? null : limitsOf(config, startedAt).deadline,
    startedAt,
    now,
  };
}

/** The production steps: the real runner, coding agent, gate, record and learnings. */
export function createSteps(deps: StepDeps): Steps {
  const { root, config, journal, log, clock, codingAgent, repo } = deps;
  const agent = config.agent_file;
  const specs = editableSpecs(config);
  const p = paths(root, undefined, agent);
  const steering = deps.steering ?? createSteeringGuard({ root, journal, log, agentsSealed: agentsSealed(config) });
  const runner = deps.steering ? deps.runner : steering.wrapRunner(deps.runner);
  /** The sealed holdout, scored once at the end of the run; the closing summary leads with it. */
  const sealedHoldout = async (runId: string): Promise<string | null> => {
    const split = pinnedSplit(journal.pins);
    if (!split) return null;
    if (split.holdout.length === 0) {
      return "none sealed (holdout_fraction is 0, or the benchmark has fewer than 60 tasks); every score above was seen by the gate";
    }
    const best = bestSoFar(journal);
    const base = pinnedBaseline(journal.pins)?.valScore ?? null;
    const claimedGain = best !== null && base !== null ? best - base : null;
    const result = await scoreHoldout({ journal, runner, runId, split, trials: config.trials, log, claimedGain });
    return result ? holdoutLine(result) : "could not be scored (no baseline results for it in the journal)";
  };
  const scope: StepScope = { deps, agent, specs };
  return {
    check: createCheck(journal, clock),
    benchmark: async ({ runId, iteration }, signal) => {
      // The operator steers by editing PROGRAM.md and the config; the history shows when it changed.
      await steering.commitChanges(repo);
      const summary = await runner.run({ split: "train", runId, iteration, signal, writeTraces: true });
      writeTrainResults(p.trainResults, summary.results, new Date(clock.now()));
      log.info(
        { trainScore: summary.score, passed: summary.passed, total: summary.total },
        `train: ${summary.passed}/${summary.total} passed`,
      );
      return { agentHash: summary.agentHash, trainScore: summary.score, passed: summary.passed, total: summary.total };
    },
    analyze: (input, signal) => codingAgent.analyze(input, signal),
    edit: (input, signal) =>
      config.candidates > 1
        ? raceEdit({ root, config, journal, log, repo, codingAgent }, input, signal)
        : codingAgent.edit(input, signal),
    gate: async ({ runId, iteration, bestValScore, edit }, signal) => {
      const output = await runGate({
        root,
        config,
        journal,
        clock,
        bestValScore,
        log,
        runner,
        repo,
        checkAgent: steering.wrapCheck(agentCheck(root, config)),
        heldOut: heldOutOf(createAdapter(config, root, log), p.split),
        runId,
        iteration,
        signal,
        night: nightOf(journal, config, runId, clock.now()),
        ...(edit?.candidates ? { candidates: gateCandidates(root, runId, iteration, edit) } : {}),
      });
      log.info(
        {
          passed: output.passed,
          valScore: output.valScore,
          previousBest: output.previousBest,
          reasons: output.reasons,
        },
        output.passed ? "gate passed" : `gate failed: ${output.reasons.join("; ")}`,
      );
      return output;
    },
    record: (input) => recordStep(scope, input),
    learn: (given) => learnStep(scope, given),
    summarize: async (input) => {
      // The run is over: an edit that never went through the gate (budget hit mid-iteration) is not left behind.
      if (await repo.fileDiffersFromHead(specs)) {
        await repo.restoreFile(specs, await repo.lastAcceptedCommit(specs));
        log.warn(`the run stopped mid-iteration: ${agent} restored to the last accepted version`);
      }
      await removeAllCandidates(root);
      // A steering edit saved during the last iteration has no next benchmark step to take it in: committed or
      // refused now, not left in the tree for the next `run` to refuse.
      await steering.commitChanges(repo);
      // Kept in the journal as written, so a summary learnings.md loses is rebuilt at the next start.
      const key = closingSummaryKey(input.runId);
      let text = journal.pins.fact(key);
      if (typeof text !== "string") {
        text = closingSummary(root, input, await sealedHoldout(input.runId));
        journal.pins.putFact(key, text);
      }
      return { written: appendClosingSummary(root, input.runId, text as string) };
    },
  };
}

/** What the record and learn steps share with the rest of the production steps. */
interface StepScope {
  deps: StepDeps;
  /** The agent file, relative to the root. */
  agent: string;
  specs: ReturnType<typeof editableSpecs>;
}

async function recordStep(
  scope: StepScope,
  { runId, iteration, edit, gate }: Parameters<Steps["record"]>[0],
): ReturnType<Steps["record"]> {
  const { deps, agent, specs } = scope;
  const { root, journal, log, clock, repo } = deps;
  // A rejected candidate is restored away below: its diff is kept in the journal for the report first
  // (once: a record step re-run after a crash finds the file already restored).
  if (!gate.passed && journal.pins.fact(rejectedDiffKey(runId, iteration)) === undefined) {
    const diff = (await repo.diffOfWorkingFile(specs)).trim();
    if (diff) journal.pins.putFact(rejectedDiffKey(runId, iteration), diff);
  }
  // A race's winner is brought from its copy into the working tree, where it is committed (once: a
  // record step re-run after its commit finds the copy gone and the commit made).
  if (gate.passed && gate.winner && edit.candidates) {
    const from = candidateDir(root, runId, iteration, gate.winner);
    const committed = await repo.findCommitByTrailer(RUN_TRAILER, runTrailerValue(runId, iteration));
    if (!committed && !existsSync(from))
      throw new HarnessError("STEP_FAILED", `record: the winner ${gate.winner}'s copy is missing (${from})`);
    if (!committed) bringWinner(root, from, specs);
  }
  const output = await recordIteration({
    root,
    repo,
    runId,
    iteration,
    edit: editOf(edit, gate.winner),
    gate,
    agentFile: agent,
    editable: specs,
    now: () => new Date(clock.now()),
  });
  if (edit.candidates)
    await removeRound(
      root,
      runId,
      iteration,
      edit.candidates.map((c) => c.id),
    );
  log.info({ ...output }, output.accepted ? `accepted as ${output.commit}` : `rejected: ${agent} restored`);
  return output;
}

async function learnStep(scope: StepScope, given: Parameters<Steps["learn"]>[0]): ReturnType<Steps["learn"]> {
  const { root, journal } = scope.deps;
  // A race is learned as the candidate it stands for: the winner, else its first changed one.
  const input = given.edit ? { ...given, edit: editOf(given.edit, given.gate?.winner) } : given;
  const output = learnIteration(root, input);
  crashPoint("learn:after-entry");
  journal.runs.putIteration({
    runId: input.runId,
    iteration: input.iteration,
    outcome: !input.record ? "no_change" : input.record.accepted ? "accepted" : "rejected",
    valScore: input.gate?.valScore ?? null,
    bestBefore: input.bestBefore,
    summary: {
      hypothesis: input.edit?.hypothesis ?? null,
      changeSummary: input.edit?.changeSummary ?? null,
      pattern: input.edit?.pattern ?? null,
      commit: input.record?.commit ?? null,
      trainScore: input.trainScore,
      suitePassed: input.gate?.suitePassed ?? null,
      suiteTotal: input.gate?.suiteTotal ?? null,
      promoted: input.gate?.promoted ?? [],
      reasons: input.gate?.reasons ?? [],
      spentUsd: journal.ledger.spend(input.runId, input.iteration).totalUsd,
    },
  });
  return output;
}
