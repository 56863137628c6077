/**
 * The parts of `run`, `resume` and `daemon` around the loop itself: the config a continuing run starts from,
 * where the human lines go, how a signal stops the daemon, and how long a paused daemon waits before pm2
 * starts it again.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { stopSpareAgentProcesses } from "../benchmark/local/spares.ts";
import type { Clock } from "../clock.ts";
import { parseConfigText } from "../config/load.ts";
import { ConfigError } from "../errors.ts";
import { openRepo } from "../git/repo.ts";
import { Journal } from "../journal/journal.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { acceptedSteeringText, rejectSteeringEdit } from "../steering/steering.ts";
import { paths } from "../workspace/paths.ts";
import { type Experiment, type GlobalOptions, openExperiment } from "./experiment.ts";

const CONFIG_FILE = "experiment_config.yaml";

/** A config edit that does not load, found at start: rejected once the lock is held. */
export interface PendingRejection {
  text: Buffer;
  accepted: string;
  problems: string[];
}

/**
 * The experiment a continuing run (`resume`, `daemon`) starts from. An edit of experiment_config.yaml that does
 * not load, saved between two looks of the daemon (just before a crash, or while it was stopped), would make
 * every restart exit 2, which pm2 does not restart: the run goes on with the last accepted config instead, and
 * the edit is rejected as one seen mid-run is. `run` and a `--config` file of the operator's own still refuse.
 */
export async function openForContinuing(
  options: GlobalOptions,
  continuing: boolean,
): Promise<{ exp: Experiment; pending: PendingRejection | null }> {
  try {
    return { exp: openExperiment(options), pending: null };
  } catch (error) {
    if (!(error instanceof ConfigError) || !continuing) throw error;
    const root = resolve(options.dir ?? process.cwd());
    const configPath = resolve(root, options.config ?? CONFIG_FILE);
    const p = paths(root);
    if (configPath !== resolve(root, CONFIG_FILE) || !existsSync(configPath) || !existsSync(p.journal)) throw error;
    let accepted: string | null = null;
    try {
      const journal = Journal.open(p.journal, { readonly: true });
      try {
        accepted = await acceptedSteeringText(openRepo(root), journal.pins, CONFIG_FILE);
      } finally {
        journal.close();
      }
    } catch {
      throw error;
    }
    const config = accepted === null ? null : parseConfigText(accepted).config;
    if (!config || accepted === null) throw error;
    return {
      exp: { root, paths: { ...paths(root, undefined, config.agent_file), config: configPath }, config },
      pending: { text: readFileSync(configPath), accepted, problems: error.problems },
    };
  }
}

/** Rejects the config edit found at start (the lock is held): set aside, the accepted version back, journaled. */
export function rejectAtStart(
  exp: Experiment,
  pending: PendingRejection,
  o: { pins: Stores["pins"]; log: Logger; clock: Clock },
): string {
  const rejected = rejectSteeringEdit({
    root: exp.root,
    pins: o.pins,
    log: o.log,
    file: CONFIG_FILE,
    text: pending.text,
    accepted: pending.accepted,
    problems: pending.problems,
    at: new Date(o.clock.now()),
  });
  return `${CONFIG_FILE} edit rejected: ${rejected.problems.join("; ")}; the run goes on with the last accepted version; your text is in ${rejected.keptAt}`;
}

/** pm2 runs its apps with `pm_id` in the environment. */
export const underPm2 = (env: NodeJS.ProcessEnv): boolean => env.pm_id !== undefined;

/**
 * The CLI's human lines. Under pm2 stdout carries the JSON log (pm2's out log) and stderr is pm2's error log:
 * progress is already in the JSON, so only problems go to stderr there. Elsewhere every line goes to stderr.
 */
export interface Say {
  progress(line: string): void;
  problem(line: string): void;
}

export function sayTo(out: NodeJS.WritableStream, env: NodeJS.ProcessEnv): Say {
  const quiet = underPm2(env);
  return {
    progress: (line) => {
      if (!quiet) out.write(`${line}\n`);
    },
    problem: (line) => out.write(`${line}\n`),
  };
}

/** The signals that stop a daemon: pm2's SIGINT, a terminal's Ctrl-C, SIGTERM, and SIGHUP when the terminal closes. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Wires the stop signals: no spare agent process is started from the first signal on, the daemon closes (the
 * state is already persisted), and past `graceMs` the process exits anyway. Returns what a signal ended, and the
 * uninstaller.
 */
export function onStopSignals(o: {
  log: Logger;
  close: () => Promise<void> | undefined;
  release: () => void;
  graceMs: number;
}): { stoppedBy: () => NodeJS.Signals | null; uninstall: () => void } {
  let stoppedBy: NodeJS.Signals | null = null;
  const handler = (signal: NodeJS.Signals) => {
    stoppedBy ??= signal;
    stopSpareAgentProcesses();
    o.log.info({ signal }, "shutdown requested: stopping after persisting the state");
    const force = setTimeout(() => {
      o.log.warn("shutdown took too long; exiting with the state as persisted");
      o.release();
      process.exit(0);
    }, o.graceMs);
    force.unref();
    void o.close();
  };
  // Once each: a second Ctrl-C ends the process at once, as a terminal user expects.
  for (const s of STOP_SIGNALS) process.once(s, handler);
  return {
    stoppedBy: () => stoppedBy,
    uninstall: () => {
      for (const s of STOP_SIGNALS) process.off(s, handler);
    },
  };
}

/** The journal fact counting a run's pauses that pass by themselves, for the restart backoff. */
const pauseStreakKey = (runId: string) => `pause_streak:${runId}`;
const PAUSE_BACKOFF_BASE_MS = 5_000;
const PAUSE_BACKOFF_MAX_MS = 5 * 60_000;
/** A pause this long after the last one starts the streak over. */
const PAUSE_STREAK_RESET_MS = 60 * 60_000;

/**
 * How long a daemon paused by something that passes (an outage, a full disk, Redis down) waits before it exits
 * 75 under pm2: pm2 then restarts it at once (the config sets no restart delay, which would show a finished run
 * as "waiting restart" for ever), so the backoff is the daemon's own: 5 s, doubling per pause in a row, at most
 * 5 min. The waiting daemon has released the lock and holds nothing.
 */
export function pauseBackoffMs(pins: Pick<Stores["pins"], "fact" | "putFact">, runId: string, now: number): number {
  const last = pins.fact(pauseStreakKey(runId)) as { count: number; at: number } | undefined | null;
  const count = last && now - last.at < PAUSE_STREAK_RESET_MS ? last.count + 1 : 1;
  pins.putFact(pauseStreakKey(runId), { count, at: now });
  return Math.min(PAUSE_BACKOFF_MAX_MS, PAUSE_BACKOFF_BASE_MS * 2 ** (count - 1));
}

/** Sleeps `ms` unless a stop signal comes first (pm2 stop during the backoff ends it at once). */
export async function backoffUnlessStopped(clock: Clock, ms: number): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const s of STOP_SIGNALS) process.once(s, onSignal);
  try {
    await clock.sleep(ms, stop.signal).catch(() => {});
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}
