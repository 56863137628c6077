import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { assertSandboxReady } from "../benchmark/sealed/sandbox.ts";
import { type Clock, systemClock } from "../clock.ts";
import { Daemon, type DaemonResult, type Steps } from "../daemon/daemon.ts";
import { refuseLostJournal } from "../daemon/history.ts";
import { acquireLock } from "../daemon/lock.ts";
import { limitsOf, pinFirstRecords, startingPoint, startUpRepairs } from "../daemon/start.ts";
import { HarnessError, UserError } from "../errors.ts";
import { refuseChangedLockfiles } from "../experiment/lockfiles.ts";
import { preflight } from "../git/preflight.ts";
import { openRepo } from "../git/repo.ts";
import type { RunRow, RunStore } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { type Night, nightLine, readNight } from "../report/night.ts";
import { scanResults } from "../workspace/files.ts";
import { type Experiment, type GlobalOptions, type Opened, openJournalAndLog, requirePrepared } from "./experiment.ts";
import { checkInputs } from "./input-checks.ts";
import { LiveView } from "./live.ts";
import { LIMIT_CHECKS, type PreflightCheck, RUN_CHECKS, runPreflight } from "./preflight.ts";
import {
  backoffUnlessStopped,
  onStopSignals,
  openForContinuing,
  pauseBackoffMs,
  rejectAtStart,
  type Say,
  sayTo,
  underPm2,
} from "./run-start.ts";
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
  /** Install SIGINT/SIGTERM/SIGHUP handlers (the CLI does; in-process tests don't). */
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

function describeRun(run: RunRow): string {
  // A finished run's state is its status: said once.
  const state = run.state === run.status ? "" : `, ${run.state ?? "not started"}`;
  return `${run.id} (${run.status}${state}, iteration ${run.iteration})`;
}

/**
 * The unfinished run this command continues (or `run --new` abandons), undefined to start one, or "finished"
 * when `daemon` finds the last run over; refuses what the mode does not allow.
 */
function runToContinue(runs: Pick<RunStore, "unfinishedRun" | "latestRun">, options: RunOptions) {
  const run = runs.unfinishedRun();
  if (options.mode === "run" && run && !options.fresh) {
    throw new UserError(
      "RUN_STATE",
      `run ${describeRun(run)} is unfinished; \`auto-harness resume\` continues it, \`auto-harness run --new\` abandons it`,
    );
  }
  if (run) return run;
  const latest = runs.latestRun();
  if (options.mode === "resume") {
    throw new UserError(
      "RUN_STATE",
      latest
        ? `no unfinished run to resume (latest: ${describeRun(latest)}); start one with \`auto-harness run\``
        : "no run to resume; start one with `auto-harness run`",
    );
  }
  if (options.mode === "daemon" && latest && latest.status !== "abandoned" && !options.fresh) return "finished";
  return undefined;
}

interface Started {
  exp: Experiment;
  repo: ReturnType<typeof openRepo>;
  opened: Opened;
  release: () => void;
}

/**
 * Everything before the loop: the experiment validated before anything is written, the lock, the journal, and
 * the start-up repairs. On a refusal nothing is left held.
 */
async function startUp(options: RunOptions, clock: Clock, say: Say): Promise<Started> {
  const { exp, pending } = await openForContinuing(options, options.mode !== "run");
  assertSandboxReady(exp.config, exp.root);
  requirePrepared(exp);
  // Read before the lock and the journal: damage a repair cannot fix stops here with nothing written.
  scanResults(readFileSync(exp.paths.results, "utf8"), exp.paths.results);
  if (!options.stepsFactory && !options.preflight) {
    // The production steps read the tasks, the scorer and the command: checked before the lock or the journal
    // is touched. The agent for a new run only: a resumed run may hold its in-progress edit.
    await checkInputs(exp, { command: "run", agentFile: options.mode === "run" ? exp.paths.agentFile : null });
  }
  const repo = openRepo(exp.root);
  const release = acquireLock(exp.paths.lock, options.mode);
  let opened: Opened | null = null;
  try {
    await refuseLostJournal(exp.paths, repo);
    // The live view replaces the JSON on the terminal; the log file keeps every line.
    // The journal's clock is the run's: a run's start, and the deadline `max_hours` counts from it, are one time.
    opened = openJournalAndLog(exp, { stdout: !options.live, now: () => clock.now() });
    const { journal, log } = opened;
    refuseChangedLockfiles(journal.pins, exp, log);
    for (const line of await startUpRepairs({ journal, repo, paths: exp.paths, log })) {
      log.warn({ repair: line }, `workspace check: ${line}`);
      say.progress(`workspace check: ${line}`);
    }
    if (pending) say.problem(rejectAtStart(exp, pending, { pins: journal.pins, log, clock }));
    return { exp, repo, opened, release };
  } catch (error) {
    release();
    opened?.journal.close();
    throw error;
  }
}

/** `run`, `resume` and `daemon` (resume-or-start, what pm2 runs). Returns the exit code. */
export async function runCommand(options: RunOptions): Promise<number> {
  const clock = options.clock ?? systemClock;
  const env = options.env ?? process.env;
  const say = sayTo(options.stderr ?? process.stderr, env);
  const started = await startUp(options, clock, say);
  let ended: { code: number; backoffMs: number };
  try {
    ended = await drive(started, options, clock, say);
  } finally {
    started.release();
    started.opened.journal.close();
  }
  // Paused by something that passes, under pm2: wait here, holding nothing, before pm2 starts the daemon again.
  if (ended.backoffMs > 0) await backoffUnlessStopped(clock, ended.backoffMs);
  return ended.code;
}

/** Chooses the run, checks what it needs, and drives it to a stop; returns the exit code and the restart backoff. */
async function drive(
  { exp, repo, opened, release }: Started,
  options: RunOptions,
  clock: Clock,
  say: Say,
): Promise<{ code: number; backoffMs: number }> {
  const { journal, log, place } = opened;
  const { runs } = journal;
  const env = options.env ?? process.env;
  const found = runToContinue(runs, options);
  if (found === "finished") {
    const latest = runs.latestRun() as RunRow;
    const line = `latest run ${describeRun(latest)} has finished; start a new one with \`auto-harness run\` (or \`daemon --new\`)`;
    log.info({ run: latest.id }, line);
    say.progress(line);
    return { code: EXIT_NOTHING_TO_DO, backoffMs: 0 };
  }
  let run = found;
  const abandoning = options.mode === "run" && run ? run : undefined;
  const backoffFor = (runId: string) =>
    options.mode === "daemon" && underPm2(env) ? pauseBackoffMs(journal.pins, runId, clock.now()) : 0;
  // Checked before anything changes or is paid: a failing check leaves the journal as it was.
  try {
    await runPreflight(options.preflight ?? (options.stepsFactory ? LIMIT_CHECKS : RUN_CHECKS), {
      root: exp.root,
      config: exp.config,
      env,
      clock,
      resuming: abandoning ? null : (run ?? null),
      journal: journal.ledger,
    });
  } catch (error) {
    // What a continuing run needs is away for now (its Redis): it stays paused, and pm2 tries again later.
    if (!(error instanceof HarnessError && error.exitCode === EXIT_PAUSED && run)) throw error;
    say.problem(`auto-harness: ${error.message}`);
    return { code: EXIT_PAUSED, backoffMs: backoffFor(run.id) };
  }
  if (abandoning) {
    runs.setRunStatus(abandoning.id, "abandoned", { stopReason: "abandoned by run --new" });
    log.warn({ abandoned: abandoning.id }, `abandoned run ${abandoning.id}`);
    run = undefined;
  }
  // Only a new run requires a clean tree; a resumed one may hold its in-progress edit.
  if (!run) await preflight(exp.root, { repo, agentFile: exp.config.agent_file });

  pinFirstRecords(journal, exp.paths, log);
  const steps = (options.stepsFactory ?? ((e, o, c) => createServices(e, o, c).steps))(exp, opened, clock);
  let daemon: Daemon | null = null;
  const signals =
    (options.handleSignals ?? true)
      ? onStopSignals({ log, close: () => daemon?.close(), release, graceMs: options.shutdownMs ?? 4000 })
      : null;
  try {
    const watched = async (running: Promise<DaemonResult>): Promise<DaemonResult> => {
      if (!options.live) return running;
      const view = new LiveView({ dir: exp.root, out: options.stderr ?? process.stderr });
      view.start();
      try {
        return await running;
      } finally {
        view.stop();
      }
    };
    let result: DaemonResult;
    let runId: string;
    if (run?.snapshot) {
      runId = run.id;
      runs.setRunStatus(run.id, "running", { pid: process.pid });
      place.runId = run.id;
      say.progress(`resuming run ${run.id} at ${run.state}, iteration ${run.iteration}`);
      daemon = new Daemon(run.id, { journal: runs, log, place, steps, clock });
      const finished = daemon.start({ snapshot: run.snapshot });
      const changed = daemon.setLimits(limitsOf(exp.config, run.createdAt), exp.config.step_attempts);
      log.info({ state: run.state, iteration: run.iteration, limitsChanged: changed }, `resuming run ${run.id}`);
      if (changed.length) say.progress(`limits from the config now: ${changed.join(", ")}`);
      result = await watched(finished);
    } else {
      const row = run ?? runs.createRun(newRunId(new Date(clock.now())), exp.config);
      runId = row.id;
      const input = startingPoint({ journal, paths: exp.paths, config: exp.config, run: row });
      place.runId = runId;
      log.info({ input }, `starting run ${runId}`);
      say.progress(`starting run ${runId}`);
      daemon = new Daemon(runId, { journal: runs, log, place, steps, clock });
      result = await watched(daemon.start({ input }));
    }
    const code = exitCodeFor(result, options.mode);
    const ran = runs.getRun(runId);
    sayEnd(result, { say, log, stoppedBy: signals?.stoppedBy() ?? null, night: ran ? readNight(journal, ran) : null });
    return { code, backoffMs: code === EXIT_PAUSED ? backoffFor(runId) : 0 };
  } finally {
    signals?.uninstall();
  }
}

/**
 * The run's last lines: how it ended, then the night's figures as `status`, the report and `view` read them
 * (one source, so they agree), and what continues it.
 */
function sayEnd(
  result: DaemonResult,
  o: { say: Say; log: Logger; stoppedBy: NodeJS.Signals | null; night: Night | null },
): void {
  const { context } = result;
  const why = result.fault?.message ?? context.stopReason ?? context.lastError?.message ?? result.state;
  const line = `run ${result.status}: ${why}; ${o.night ? nightLine(o.night) : ""}`;
  const failed = result.status === "failed" || result.status === "paused";
  o.log.info({ status: result.status, bestValScore: context.bestValScore }, line);
  if (failed) o.say.problem(line);
  else o.say.progress(line);
  if (result.status === "paused" && !result.fault && context.lastError && context.lastError.kind !== "resumable") {
    o.say.problem(
      `paused in ${context.lastError.step}: fix the cause above, then \`auto-harness resume\` continues from that step`,
    );
  }
  if (result.status === "stopped" && o.stoppedBy) {
    o.say.progress(
      `stopped by ${o.stoppedBy} with the state persisted: \`auto-harness resume\` continues from ${result.state}, iteration ${context.iteration}`,
    );
  }
}
