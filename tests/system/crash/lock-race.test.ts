import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { describe, expect, it } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { acquireLock, lockHolder, processAlive, procStat } from "../../../src/daemon/lock.ts";
import { preparedExperiment, REPO_ROOT, readState, spawnCli, waitForState } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const TAKER = join(REPO_ROOT, "tests", "fixtures", "lock-taker.ts");
const TAKERS = 20;
const TRIALS = 3;

interface Taker {
  lines: string[];
  ready: Promise<void>;
  done: Promise<void>;
  go: () => void;
}

/** The taker bundled to plain JS once: twenty tsx start-ups per trial would cost more than the race. */
function bundleTaker(dir: string): string {
  const out = join(dir, "lock-taker.cjs");
  buildSync({
    entryPoints: [TAKER],
    bundle: true,
    platform: "node",
    format: "cjs",
    outfile: out,
    external: ["better-sqlite3"],
    logLevel: "error",
  });
  return out;
}

function spawnTaker(script: string, file: string): Taker {
  const child = spawn(process.execPath, [script, file, "2500"], {
    cwd: REPO_ROOT,
    // The bundle lives in a temp dir: its one external, better-sqlite3, is found through NODE_PATH.
    env: { ...process.env, NODE_PATH: join(REPO_ROOT, "node_modules") },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  let buf = "";
  child.stdout.on("data", (d) => {
    buf += d;
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    for (const line of parts) {
      lines.push(line);
      if (line === "ready") onReady();
    }
  });
  const done = new Promise<void>((r) => child.on("exit", () => r()));
  return { lines, ready, done, go: () => child.stdin.write("go\n") };
}

/** Waits, in 10 ms steps up to a bound, for `ready`; throws naming `what` if it never comes. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ready()) throw new Error(`never came: ${what}`);
}

function procText(pid: number, name: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${name}`, "utf8");
  } catch {
    return null;
  }
}

/** Field 4 of /proc/<pid>/stat, counted from the last ')' as procStat does. */
function parentPid(pid: number): number | null {
  const text = procText(pid, "stat");
  return text ? Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]) : null;
}

/**
 * Runs `body` with a zombie that stays one until it returns. Its parent is a process that is alive for the
 * whole body and never calls wait(): a shell that forks the child and then execs `sleep`. The child is only
 * killed once that exec has happened, so no shell (dash, or bash with its SIGCHLD handler) is there to reap
 * it, and since its parent lives on, it is never handed to init, which may reap it at any moment (or never,
 * in a container): that is what made the check flaky while the parent exited before it.
 */
async function withZombie(body: (zombie: number) => void | Promise<void>): Promise<void> {
  const parent = spawn("sh", ["-c", "sleep 120 & echo $!; exec sleep 120"], { stdio: ["ignore", "pipe", "inherit"] });
  const parentGone = new Promise<void>((r) => {
    parent.once("exit", () => r());
    parent.once("error", () => r());
  });
  let child: number | null = null;
  try {
    child = await new Promise<number>((resolve, reject) => {
      let buf = "";
      parent.stdout.on("data", (d) => {
        buf += d;
        if (buf.includes("\n")) resolve(Number(buf.split("\n")[0]));
      });
      parent.once("error", reject);
      parent.once("exit", () => reject(new Error(`the zombie's parent exited before naming its child: ${buf}`)));
    });
    const pid = child;
    const sleeper = parent.pid ?? -1;
    await until(() => procText(sleeper, "cmdline") === "sleep\u0000120\u0000", "the shell's exec of sleep");
    expect(parentPid(pid)).toBe(sleeper);
    process.kill(pid, "SIGKILL");
    await until(() => procStat(pid)?.state === "Z", `pid ${pid} a zombie`);
    // Still the sleeper's, which never waits for it: a zombie until the sleeper goes.
    expect(parentPid(pid)).toBe(sleeper);
    await body(pid);
  } finally {
    // The child first, and only while its parent lives: until then its number is not another process's.
    if (child !== null && parent.exitCode === null && parent.signalCode === null) process.kill(child, "SIGKILL");
    parent.kill("SIGKILL");
    await parentGone;
  }
}

describe("the workspace lock", () => {
  it(`${TAKERS} processes racing for it, over ${TRIALS} trials (one over a dead holder's stale lock): exactly one wins`, async () => {
    const dir = tempDir("lock-");
    const file = join(dir, "daemon.lock");
    const script = bundleTaker(dir);
    const winners: number[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      // A lock left by a killed daemon: its pid is gone, its record still there.
      if (trial === 1) writeFileSync(file, JSON.stringify({ pid: 2 ** 22 + 7, startedAt: "x", command: "daemon" }));
      const takers = Array.from({ length: TAKERS }, () => spawnTaker(script, file));
      await Promise.all(takers.map((t) => t.ready));
      for (const t of takers) t.go();
      await Promise.all(takers.map((t) => t.done));
      const won = takers.filter((t) => t.lines.includes("won")).length;
      const lost = takers.filter((t) => t.lines.some((l) => l.startsWith("lost: ")));
      winners.push(won);
      expect(won + lost.length, takers.map((t) => t.lines.join("|")).join("\n")).toBe(TAKERS);
      // A loser names the winner: it sees the lock's record once the winner has written it.
      expect(lost.every((t) => /another auto-harness/.test(t.lines.join("\n")))).toBe(true);
      // Released: the next trial starts from a free lock.
      expect(existsSync(file)).toBe(false);
    }
    expect(winners).toEqual(Array(TRIALS).fill(1));
  }, 120_000);

  it("is exclusive within one process too, and free again after release", () => {
    const file = join(tempDir("lock-"), "daemon.lock");
    const release = acquireLock(file, "run");
    expect(() => acquireLock(file, "resume")).toThrow(/another auto-harness \(pid \d+, "run"/);
    release();
    release();
    const again = acquireLock(file, "resume");
    again();
  });

  it("a zombie does not hold the lock: kill(pid, 0) succeeds on it, /proc says Z", async () => {
    if (!procStat(process.pid)) {
      process.stderr.write("SKIP: no /proc on this system: zombie detection is not tested\n");
      return;
    }
    await withZombie((zombie) => {
      expect(procStat(zombie)?.state).toBe("Z");
      expect(() => process.kill(zombie, 0)).not.toThrow();
      expect(processAlive(zombie)).toBe(false);
      expect(processAlive(process.pid)).toBe(true);
      // A reused pid: same number, another start time.
      expect(processAlive(process.pid, (procStat(process.pid)?.startTicks ?? 0) + 1)).toBe(false);
      const file = join(tempDir("lock-"), "daemon.lock");
      writeFileSync(file, JSON.stringify({ pid: zombie, startedAt: "x", command: "daemon" }));
      expect(lockHolder(file)).toBeNull();
    });
  });

  it("a restart right after SIGKILL is not refused", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 1 });
    const journalFile = join(dir, "workspace", "journal.sqlite");
    const first = spawnCli(["daemon", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
    await waitForState(journalFile, "benchmark");
    first.child.kill("SIGKILL");
    await first.exited;
    const second = spawnCli(["daemon", "--dir", dir], { STAND_IN_DELAY_MS: "5" });
    const { code } = await second.exited;
    expect(second.stderr()).not.toMatch(/another auto-harness/);
    expect(code, second.stderr()).toBe(EXIT_NOTHING_TO_DO);
    expect(readState(journalFile)).toEqual({ state: "done", status: "done" });
  }, 60_000);
});
