import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { findBwrap } from "../../src/benchmark/sealed/sandbox.ts";
import { Journal } from "../../src/journal/journal.ts";
import { writeSplit } from "../../src/workspace/files.ts";

export const REPO_ROOT = resolve(import.meta.dirname, "..", "..");
export const STAND_IN_CLI = join(REPO_ROOT, "tests", "fixtures", "cli-stand-in.ts");
/** Stand-in benchmark and gate, real edit base, record, learn and summary over the real git repository. */
export const REAL_RECORD_CLI = join(REPO_ROOT, "tests", "fixtures", "cli-real-record.ts");

const git = (dir: string, ...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, stdio: "pipe" });

/**
 * The sandbox setting a test experiment takes on this machine: unsealed where bubblewrap is missing, as the demo
 * runs; the seal's own tests skip there with their reason (and fail in CI).
 */
export const sandboxHere = (): { sandbox?: "none" } => (findBwrap() === null ? { sandbox: "none" } : {});

/** The same as a line of experiment_config.yaml, for a test that writes the file itself or copies an example. */
export const sandboxLineHere = (): string => (findBwrap() === null ? "sandbox: none\n" : "");

/**
 * A copy of a shipped example at `dir`, as a user on this machine makes it: `cp -r examples/<name> <dir>`, plus
 * `sandbox: none` where bubblewrap is missing, as `prepare`'s refusal tells them.
 */
export function copyExample(name: string, dir: string): string {
  cpSync(join(REPO_ROOT, "examples", name), dir, { recursive: true });
  appendFileSync(join(dir, "experiment_config.yaml"), sandboxLineHere());
  return dir;
}

/** A prepared experiment (git repo, agent, split, baseline row) without running a benchmark. */
export function preparedExperiment(dir: string, config: Record<string, unknown> = {}): string {
  mkdirSync(join(dir, "agent"), { recursive: true });
  mkdirSync(join(dir, "workspace"), { recursive: true });
  writeFileSync(join(dir, "agent", "agent.ts"), "export default { run: async () => 'hello' };\n");
  writeFileSync(join(dir, ".gitignore"), "workspace/\n");
  const yaml = Object.entries({ benchmark: "example", ...sandboxHere(), ...config })
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join("\n");
  writeFileSync(join(dir, "experiment_config.yaml"), `${yaml}\n`);
  writeFileSync(join(dir, "PROGRAM.md"), "# program\n");
  git(dir, "init", "-q");
  git(dir, "add", "-A");
  git(dir, "commit", "-qm", "init");
  writeFileSync(
    join(dir, "workspace", "results.tsv"),
    "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\n0\t0.5000\tbaseline\t0\t0\t2026-11-24T00:00:00.000Z\n",
  );
  writeSplit(join(dir, "workspace", "split.json"), {
    seed: 1,
    created_at: "2026-11-24T00:00:00.000Z",
    train: ["a"],
    test: ["b"],
    excluded: [],
    counts: { train: 1, test: 1, train_passing: 0, test_passing: 0, excluded: 0 },
  });
  return dir;
}

export interface Spawned {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The stand-in CLI (or another script) as a real child process; `stdio` past stderr hands it more descriptors. */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
  script = STAND_IN_CLI,
  stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"],
): Spawned {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio,
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on("exit", (code, signal) => res({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** What `read` finds in a journal opened read-only, or `fallback` while a daemon is still creating it. */
export function readJournal<T>(journalFile: string, read: (journal: Journal) => T, fallback: T): T {
  if (!existsSync(journalFile)) return fallback;
  try {
    const journal = Journal.open(journalFile, { readonly: true });
    try {
      return read(journal);
    } finally {
      journal.close();
    }
  } catch {
    return fallback;
  }
}

/** The latest run's state and status, read the way `status` does; nulls while the journal is being created. */
export function readState(journalFile: string): { state: string | null; status: string | null } {
  if (!existsSync(journalFile)) return { state: null, status: null };
  try {
    const journal = Journal.open(journalFile, { readonly: true });
    try {
      const run = journal.runs.latestRun();
      return { state: run?.state ?? null, status: run?.status ?? null };
    } finally {
      journal.close();
    }
  } catch {
    return { state: null, status: null };
  }
}

/** Polls until the journal shows the machine in `state` (bounded). */
/**
 * Waits until a daemon started with `AUTO_HARNESS_STOP_AT` has stopped itself there (SIGSTOP); false if it
 * exited first. The caller injects its fault, then `resume`s it.
 */
export async function stoppedAt(daemon: Spawned): Promise<boolean> {
  let exited = false;
  void daemon.exited.then(() => {
    exited = true;
  });
  const pid = daemon.child.pid;
  for (let i = 0; i < 12_000 && !exited && pid !== undefined; i++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")) return true;
    } catch {
      // gone meanwhile
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

/** Lets a stopped daemon go on (a no-op if a fault already killed it). */
export const resume = (daemon: Spawned): void => void daemon.child.kill("SIGCONT");

export async function waitForState(journalFile: string, state: string): Promise<void> {
  for (let i = 0; i < 5000 && readState(journalFile).state !== state; i++) await new Promise((r) => setTimeout(r, 5));
}
