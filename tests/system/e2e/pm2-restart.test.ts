/**
 * The daemon under the real pm2 (private PM2_HOME): SIGKILL it mid-run, pm2 restarts it, the run resumes
 * and completes with DESIGN §4's invariants. Steps are stand-ins; pm2, processes, SQLite and git are real.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { Journal } from "../../../src/journal/journal.ts";
import { loopIterationOf, readResults } from "../../../src/workspace/files.ts";
import { preparedExperiment } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const ROOT = resolve(import.meta.dirname, "../../..");
const PM2 = join(ROOT, "node_modules", ".bin", "pm2");
const ITERATIONS = 5;

interface App {
  name: string;
  script: string;
  args: string[];
  cwd: string;
  exec_mode: string;
  instances: number;
  autorestart: boolean;
  exp_backoff_restart_delay?: number;
  stop_exit_codes: number[];
  kill_timeout: number;
  out_file: string;
  error_file: string;
  [key: string]: unknown;
}

function loadShipped(dir: string): App {
  const file = require.resolve(join(ROOT, "ecosystem.config.cjs"));
  delete require.cache[file];
  const before = process.env.AUTO_HARNESS_DIR;
  process.env.AUTO_HARNESS_DIR = dir;
  try {
    const config = require(file) as { apps: App[] };
    expect(config.apps).toHaveLength(1);
    return config.apps[0] as App;
  } finally {
    if (before === undefined) delete process.env.AUTO_HARNESS_DIR;
    else process.env.AUTO_HARNESS_DIR = before;
    delete require.cache[file];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `probe` returns a value; a bounded number of polls, so a hang fails with what was awaited. */
async function until<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  polls = 200,
): Promise<T> {
  for (let i = 0; i < polls; i++) {
    const value = await probe();
    if (value) return value;
    await sleep(100);
  }
  throw new Error(`gave up waiting for ${what}`);
}

function latest(journalFile: string): { id: string; iteration: number; status: string } | undefined {
  if (!existsSync(journalFile)) return undefined;
  try {
    const journal = Journal.open(journalFile, { readonly: true });
    try {
      return journal.runs.latestRun();
    } finally {
      journal.close();
    }
  } catch {
    return undefined; // Not migrated yet by the daemon.
  }
}

describe("ecosystem.config.cjs", () => {
  it("runs the daemon for $AUTO_HARNESS_DIR in fork mode, restarting everything but bad usage/config", () => {
    const dir = tempDir("pm2-shipped-");
    const app = loadShipped(dir);
    expect(app).toMatchObject({
      name: "auto-harness",
      script: join(ROOT, "bin", "auto-harness.js"),
      args: ["daemon", "--dir", dir],
      exec_mode: "fork",
      instances: 1,
      autorestart: true,
      // Not 0: pm2 reports a signal death as code 0 (see the SIGKILL test below).
      stop_exit_codes: [2, 64],
      out_file: join(dir, "workspace", "logs", "pm2-out.log"),
      error_file: join(dir, "workspace", "logs", "pm2-err.log"),
    });
    // Either delay makes pm2 7 show a finished daemon as "waiting restart" for ever; the daemon backs off itself.
    expect(app).not.toHaveProperty("exp_backoff_restart_delay");
    expect(app).not.toHaveProperty("restart_delay");
    expect(app.kill_timeout).toBeGreaterThanOrEqual(8000);
    expect(app.stop_exit_codes).not.toContain(75);
    expect(app.stop_exit_codes).not.toContain(0);
    // Each of these rewrites pino's lines (prefixes or wrapping).
    expect(app).not.toHaveProperty("time");
    expect(app).not.toHaveProperty("log_date_format");
    expect(app).not.toHaveProperty("log_type");
  });
});

describe("pm2 restarts a killed daemon", () => {
  it("SIGKILL mid-run: pm2 restarts it, the run resumes and finishes with every invariant", async () => {
    const scratch = tempDir("pm2-run-");
    const dir = preparedExperiment(join(scratch, "exp") as string, { max_iterations: ITERATIONS, patience: 50 });
    const home = join(scratch, "pm2-home");
    const env = { ...process.env, PM2_HOME: home };
    const pm2 = (...args: string[]) => run(PM2, args, { env, cwd: scratch, maxBuffer: 16 * 1024 * 1024 });

    // The shipped options, pointed at the stand-in entry script.
    const shipped = loadShipped(dir);
    const app = {
      ...shipped,
      name: "auto-harness-test",
      script: join(ROOT, "tests", "fixtures", "pm2-daemon.ts"),
      interpreter: process.execPath,
      // Absolute: pm2 starts it in the experiment dir, where a bare `tsx` does not resolve.
      node_args: ["--import", pathToFileURL(require.resolve("tsx")).href],
      env: { ...(shipped.env as object), STAND_IN_DELAY_MS: "200" },
    };
    const ecosystem = join(scratch, "pm2-test.config.cjs");
    writeFileSync(ecosystem, `module.exports = ${JSON.stringify({ apps: [app] }, null, 2)};\n`);
    const journalFile = join(dir, "workspace", "journal.sqlite");

    type Proc = { name: string; pid: number; pm2_env: { restart_time: number; status: string } };
    /** The app's pm2 entry; a crash loop fails the test at once with the daemon's stderr. */
    const status = async (): Promise<Proc | undefined> => {
      const p = (JSON.parse((await pm2("jlist")).stdout) as Proc[]).find((x) => x.name === app.name);
      if (p && p.pm2_env.status === "errored") {
        const err = existsSync(app.error_file) ? readFileSync(app.error_file, "utf8").slice(-3000) : "";
        throw new Error(
          `daemon is crash-looping under pm2 (${p.pm2_env.status}, ${p.pm2_env.restart_time} restarts):\n${err}`,
        );
      }
      return p;
    };

    try {
      await pm2("start", ecosystem);
      await until("iteration 2", async () => (await status()) && (latest(journalFile)?.iteration ?? 0) >= 2);
      const proc = await status();
      expect(proc?.pm2_env.status).toBe("online");
      const killedPid = proc?.pid as number;
      expect(killedPid).toBeGreaterThan(0);
      process.kill(killedPid, "SIGKILL");

      const restarted = await until("pm2 to restart the daemon", async () => {
        const p = await status();
        return p && p.pm2_env.restart_time >= 1 && p.pid > 0 && p.pid !== killedPid ? p : undefined;
      });
      expect(restarted.pid).not.toBe(killedPid);
      const done = await until("the run to finish", async () => {
        await status();
        const r = latest(journalFile);
        return r && r.status === "done" ? r : undefined;
      });
      expect(done.iteration).toBe(ITERATIONS);
      // A finished run exits 64, which pm2 is told not to restart, and shows as stopped, not "waiting restart".
      const exited = await until("the finished daemon to exit 64", async () => {
        const p = (await status()) as (Proc & { pm2_env: { exit_code?: number } }) | undefined;
        return p && p.pid === 0 && p.pm2_env.exit_code === 64 ? p : undefined;
      });
      expect(exited.pm2_env.status).toBe("stopped");
      expect(exited.pm2_env.restart_time).toBe(restarted.pm2_env.restart_time);
      await new Promise((r) => setTimeout(r, 3000));
      const later = await status();
      expect(later?.pid).toBe(0);
      expect(later?.pm2_env.status).toBe("stopped");
      expect(later?.pm2_env.restart_time).toBe(restarted.pm2_env.restart_time);

      const journal = Journal.open(journalFile, { readonly: true });
      try {
        const its = journal.runs.iterations(done.id);
        expect(its.map((i) => i.iteration)).toEqual([1, 2, 3, 4, 5]);
        const accepted = its.filter((i) => i.outcome === "accepted").map((i) => i.iteration);
        expect(journal.runs.steps(done.id).filter((s) => s.status === "started")).toEqual([]);
        expect(journal.integrityCheck()).toBe("ok");

        const rows = readResults(join(dir, "workspace", "results.tsv"));
        expect(rows.map(loopIterationOf)).toEqual([0, ...accepted]);

        const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
        const entries = [...learnings.matchAll(/^## Iteration (\d+)/gm)].map((m) => Number(m[1]));
        expect(entries).toEqual([1, 2, 3, 4, 5]);
      } finally {
        journal.close();
      }

      // pino's lines, untouched by pm2: the CLI's human summaries go to stderr, so every line parses.
      const out = readFileSync(app.out_file, "utf8").split("\n").filter(Boolean);
      expect(out.length).toBeGreaterThan(0);
      const parsed = out.map((line) => JSON.parse(line) as { pid: number; msg: string });
      // Both daemon generations wrote to it, and every line is a pino object.
      expect(new Set(parsed.map((l) => l.pid)).size).toBeGreaterThanOrEqual(2);
      expect(parsed.some((l) => /^resuming run /.test(l.msg))).toBe(true);
      // Progress is in pm2's out log, as JSON; its error log holds none of it (nothing went wrong).
      expect(parsed.some((l) => /^run done: max_iterations reached/.test(l.msg))).toBe(true);
      const errLog = existsSync(app.error_file) ? readFileSync(app.error_file, "utf8") : "";
      expect(errLog).not.toMatch(/starting run|resuming run|run done|workspace check/);
    } catch (error) {
      const tail = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").slice(-2000) : "(none)");
      (error as Error).message +=
        `\n--- pm2 err log\n${tail(app.error_file)}\n--- pm2 out log\n${tail(app.out_file)}` +
        `\n--- pm2 daemon log\n${tail(join(home, "pm2.log"))}`;
      throw error;
    } finally {
      await pm2("kill").catch(() => undefined);
    }
  }, 300_000);
});
