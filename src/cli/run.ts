import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { LoopInput } from "../../machines/loop.ts";
import type { Limits } from "../../machines/stop-rules.ts";
import { assertSandboxReady } from "../benchmark/sealed/sandbox.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { Daemon, type DaemonResult, type Steps } from "../daemon/daemon.ts";
import { refuseLostJournal } from "../daemon/history.ts";
import { acquireLock } from "../daemon/lock.ts";
import { reapProcessGroups } from "../daemon/process-groups.ts";
import { describeFinding, reconcileWorkspace } from "../daemon/reconcile.ts";
import { UserError } from "../errors.ts";
import { journalBest } from "../gate/records.ts";
import { preflight } from "../git/preflight.ts";
import { openRepo } from "../git/repo.ts";
import type { RunRow } from "../journal/journal.ts";
import { readEntries } from "../learnings/learnings.ts";
import { bestValScore } from "../scoring.ts";
import { loopIterationOf, readResults, scanResults } from "../workspace/files.ts";
import {
  type Experiment,
  type GlobalOptions,
  type Opened,
  openExperiment,
  openJournalAndLog,
  requirePrepared,
} from "./experiment.ts";
import { LiveView } from "./live.ts";
import { LIMIT_CHECKS, type PreflightCheck, RUN_CHECKS, runPreflight } from "./preflight.ts";
import { createServices } from "./services.ts";

export type RunMode = "run" | "resume" | "daemon";

/** Exit code when a run pauses on an outage: pm2 restarts it later (with backoff) and it resumes. */
export const EXIT_PAUSED = 75;
/** `daemon` only: the run is over (or there is none to resume), so pm2 must not start it again. */
export const EXIT_NOTHING_TO_DO = 64;

export type StepsFactory = (exp: Experiment, opened: Opened, clock: Clock) => Steps;

export interface RunOptions extends GlobalOptions {
  mode: RunMode;
  /**
   * `run --new`: abandon an unfinished run and start another. `daemon --new`: resume an unfinished run,
   * or start a new one when the last has finished (a nightly pm2 cron).
   */
  fresh?: boolean;
  /** Human-readable lines; stdout carries the JSON log (what pm2 writes to its out file). */
  stderr?: NodeJS.WritableStream;
  /** A terminal: show the live view on stderr instead of the JSON log on stdout. */
  live?: boolean;
  stepsFactory?: StepsFactory;
  /** What is checked before the run starts; by default everything the production steps need. */
  preflight?: readonly PreflightCheck[];
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** Grace period for shutdown before exiting anyway (the state is already persisted). */
  shutdownMs?: number;
  /** Install SIGINT/SIGTERM handlers (the CLI does; in-process tests don't). */
  handleSignals?: boolean;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `run-${stamp}-${randomBytes(2).toString("hex")}`;
}

/** Exit code of a run paused until the operator fixes something (a key, a damaged file): pm2 leaves it stopped. */
export const EXIT_NEEDS_OPERATOR = 2;

function exitCodeFor(result: DaemonResult, mode: RunMode): number {
  if (result.fault) return result.fault.exitCode;
  switch (result.status) {
    case "done":
      return mode === "daemon" ? EXIT_NOTHING_TO_DO : 0;
    case "stopped":
      return 0;
    case "paused":
      // An outage or a full disk passes by itself; anything else waits for the operator's fix and `resume`.
      return !result.context.lastError || result.context.lastError.kind === "resumable"
        ? EXIT_PAUSED
        : EXIT_NEEDS_OPERATOR;
    default:
      return 1;
  }
}

/** The run's stop limits; `max_hours` counts from the run's start, and the earlier of it and `deadline` holds. */
export function limitsOf(c: Config, runStartedAt: number): Limits {
  const ends = [
    ...(c.deadline ? [Date.parse(c.deadline)] : []),
    ...(c.max_hours === null ? [] : [runStartedAt + c.max_hours * 3_600_000]),
  ];
  return {
    patience: c.patience,
    maxIterations: c.max_iterations,
    budgetUsd: c.budget_usd,
    deadline: ends.length ? Math.min(...ends) : null,
  };
}

function describeRun(run: RunRow): string {
  return `${run.id} (${run.status}, ${run.state ?? "not started"}, iteration ${run.iteration})`;
}

/** `run`, `resume` and `daemon` (resume-or-start, what pm2 runs). Returns the exit code. */
export async function runCommand(options: RunOptions): Promise<number> {
  const out = options.stderr ?? process.stderr;
  const clock = options.clock ?? systemClock;
  // Everything is validated before anything is written.
  const exp = openExperiment(options);
  assertSandboxReady(exp.config);
  const repo = openRepo(exp.root);
  requirePrepared(exp);
  // Read before the lock and the journal: damage a repair cannot fix stops here with nothing written.
  scanResults(readFileSync(exp.paths.results, "utf8"), exp.paths.results);
  const release = acquireLock(exp.paths.lock, options.mode);
  let opened: Opened;
  try {
    await refuseLostJournal(exp.paths, repo);
    // The live view replaces the JSON on the terminal; the log file keeps every line.
    opened = openJournalAndLog(exp, { stdout: !options.live });
  } catch (error) {
    release();
    throw error;
  }
  const { journal, log, place } = opened;
  // Repairs before anything runs: git locks a killed commit left, and workspace files that disagree with the
  // journal (a torn, truncated or duplicated row or entry), each reported with file and line.
  const repairs: string[] = [];
  try {
    for (const g of reapProcessGroups(journal, log)) {
      repairs.push(`process group ${g.pgid} (${g.label}): ${g.processes} process(es) a killed daemon left; killed`);
    }
    for (const lock of await repo.repairStaleLocks()) repairs.push(`.git/${lock}: left by a killed git; removed`);
    for (const finding of await reconcileWorkspace({ paths: exp.paths, journal, repo })) {
      repairs.push(describeFinding(finding));
    }
  } catch (error) {
    release();
    journal.close();
    throw error;
  }
  for (const line of repairs) {
    log.warn({ repair: line }, `workspace check: ${line}`);
    out.write(`workspace check: ${line}\n`);
  }
  const rows = readResults(exp.paths.results);
  let daemon: Daemon | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, "shutdown requested: stopping after persisting the state");
    const force = setTimeout(() => {
      log.warn("shutdown took too long; exiting with the state as persisted");
      release();
      process.exit(0);
    }, options.shutdownMs ?? 4000);
    force.unref();
    void daemon?.close();
  };
  try {
    let run = journal.unfinishedRun();
    if (options.mode === "run" && run && !options.fresh) {
      throw new UserError(
        "RUN_STATE",
        `run ${describeRun(run)} is unfinished; \`auto-harness resume\` continues it, \`auto-harness run --new\` abandons it`,
      );
    }
    if (options.mode === "resume" && !run) {
      const latest = journal.latestRun();
      throw new UserError(
        "RUN_STATE",
        latest
          ? `no unfinished run to resume (latest: ${describeRun(latest)}); start one with \`auto-harness run\``
          : "no run to resume; start one with `auto-harness run`",
      );
    }
    if (options.mode === "daemon" && !run) {
      const latest = journal.latestRun();
      if (latest && latest.status !== "abandoned" && !options.fresh) {
        out.write(
          `latest run ${describeRun(latest)} has finished; start a new one with \`auto-harness run\` (or \`daemon --new\`)\n`,
        );
        return EXIT_NOTHING_TO_DO;
      }
    }
    const abandoning = options.mode === "run" && run ? run : undefined;
    // Checked before anything changes or is paid: a failing check leaves the journal as it was.
    await runPreflight(options.preflight ?? (options.stepsFactory ? LIMIT_CHECKS : RUN_CHECKS), {
      root: exp.root,
      config: exp.config,
      env: options.env ?? process.env,
      clock,
      resuming: abandoning ? null : (run ?? null),
      journal,
    });
    if (abandoning) {
      journal.setRunStatus(abandoning.id, "abandoned", { stopReason: "abandoned by run --new" });
      log.warn({ abandoned: abandoning.id }, `abandoned run ${abandoning.id}`);
      run = undefined;
    }
    if (!run) {
      // Only a new run requires a clean tree; a resumed one may hold its in-progress edit.
      await preflight(exp.root, { repo, agentFile: exp.config.agent_file });
    }

    const steps = (options.stepsFactory ?? ((e, o, c) => createServices(e, o, c).steps))(exp, opened, clock);
    if (options.handleSignals ?? true) {
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
    }

    const watched = async (running: Promise<DaemonResult>): Promise<DaemonResult> => {
      if (!options.live) return running;
      const view = new LiveView({ dir: exp.root, out });
      view.start();
      try {
        return await running;
      } finally {
        view.stop();
      }
    };
    let result: DaemonResult;
    if (run?.snapshot) {
      journal.setRunStatus(run.id, "running", { pid: process.pid });
      place.runId = run.id;
      out.write(`resuming run ${run.id} at ${run.state}, iteration ${run.iteration}\n`);
      daemon = new Daemon(run.id, { journal, log, place, steps, clock });
      const finished = daemon.start({ snapshot: run.snapshot });
      const changed = daemon.setLimits(limitsOf(exp.config, run.createdAt), exp.config.step_attempts);
      log.info({ state: run.state, iteration: run.iteration, limitsChanged: changed }, `resuming run ${run.id}`);
      if (changed.length) out.write(`limits from the config now: ${changed.join(", ")}\n`);
      result = await watched(finished);
    } else {
      const runId = run?.id ?? newRunId(new Date(clock.now()));
      if (!run) journal.createRun(runId, exp.config);
      const input: LoopInput = {
        runId,
        // An adopted experiment's iterations are numbered on from the original's learnings.md entries.
        lastIteration: Math.max(
          0,
          ...rows.map(loopIterationOf),
          ...journal.iterationNumbers(),
          ...readEntries(exp.paths.learnings).map((e) => e.iteration),
        ),
        // The journal is the record; results.tsv is its view (read only for experiments from before the pin).
        bestValScore: journalBest(journal) ?? bestValScore(rows),
        limits: limitsOf(exp.config, run?.createdAt ?? clock.now()),
        stepAttempts: exp.config.step_attempts,
      };
      place.runId = runId;
      log.info({ input }, `starting run ${runId}`);
      out.write(`starting run ${runId}\n`);
      daemon = new Daemon(runId, { journal, log, place, steps, clock });
      result = await watched(daemon.start({ input }));
    }
    const { context } = result;
    const why = result.fault?.message ?? context.stopReason ?? context.lastError?.message ?? result.state;
    out.write(
      `run ${result.status}: ${why}; ` +
        `best val_score ${context.bestValScore?.toFixed(4) ?? "n/a"}, ${context.accepted} accepted, ${context.rejected} rejected\n`,
    );
    if (result.status === "paused" && !result.fault && context.lastError && context.lastError.kind !== "resumable") {
      out.write(
        `paused in ${context.lastError.step}: fix the cause above, then \`auto-harness resume\` continues from that step\n`,
      );
    }
    return exitCodeFor(result, options.mode);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    release();
    journal.close();
  }
}
