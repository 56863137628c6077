/**
 * Set-up for the queue tests: a daemon-side experiment and a separate worker-side copy of it (config and
 * benchmark files only, as on another machine), real worker processes, and the daemon's bullmq executor.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { createBullmqExecutor } from "../../src/distributed/bullmq-executor.ts";
import { versionsOf } from "../../src/distributed/versions.ts";
import type { Logger } from "../../src/log.ts";
import { paths } from "../../src/workspace/paths.ts";
import { REPO_ROOT } from "./experiment.ts";

const BIN = join(REPO_ROOT, "bin", "auto-harness.js");

export const CONFIG_YAML = `benchmark: local
local: { tasks: bench/tasks.jsonl, scorer: bench/scorer.ts }
per_task_timeout: 30
`;

/** A worker-side copy of an experiment: what another machine would have (no agent, no workspace). */
export function workerDirFor(root: string, tweak?: (dir: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), "ah-worker-"));
  writeFileSync(join(dir, "experiment_config.yaml"), readFileSync(join(root, "experiment_config.yaml")));
  cpSync(join(root, "bench"), join(dir, "bench"), { recursive: true });
  tweak?.(dir);
  return dir;
}

export interface WorkerProcess {
  child: ChildProcess;
  dir: string;
  output(): string;
  exited: Promise<number | null>;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnWorker(
  dir: string,
  redisUrl: string,
  env: NodeJS.ProcessEnv,
  opts: { concurrency?: number; lockTimeoutS?: number } = {},
): WorkerProcess {
  const child = spawn(
    process.execPath,
    [
      BIN,
      "worker",
      "--dir",
      dir,
      "--redis",
      redisUrl,
      "--concurrency",
      String(opts.concurrency ?? 2),
      "--lock-timeout",
      // Short enough for a killed worker's tasks to move on in seconds, long enough that a loaded machine's
      // slow lock renewal is not taken for a dead worker.
      String(opts.lockTimeoutS ?? 4),
    ],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  const waiters: { re: RegExp; resolve(): void }[] = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const w of [...waiters])
      if (w.re.test(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    dir,
    output: () => out,
    exited,
    waitFor: (re, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        const timer = setTimeout(() => reject(new Error(`worker never logged ${re}: ${out.slice(-2000)}`)), timeoutMs);
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
    kill: (signal = "SIGKILL") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** The daemon's bullmq executor for an experiment, as services.ts builds it (a short sweep for tests). */
export function bullmqExecutorFor(root: string, redisUrl: string, log: Logger) {
  const config = loadConfig(join(root, "experiment_config.yaml"));
  return createBullmqExecutor({
    redisUrl,
    versions: versionsOf(config, root),
    model: config.agent_model,
    timeoutMs: config.per_task_timeout * 1000,
    log,
    healthFile: paths(root).queueHealth,
    sweepMs: 500,
  });
}

/** Every file under `dir` whose bytes contain one of `needles`, with the needle. */
export function filesContaining(dir: string, needles: string[], skip: readonly string[] = []): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      if (skip.includes(name)) continue;
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const content = readFileSync(full);
        for (const n of needles) if (content.includes(Buffer.from(n))) hits.push(`${full}: ${n}`);
      }
    }
  };
  walk(dir);
  return hits;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}
