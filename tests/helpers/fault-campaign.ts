/**
 * The fault campaign: each fault an operator's night meets, injected while the daemon is in a given step of an
 * iteration, then the daemon restarted (as pm2 would) until the run is over, and the invariants checked: every
 * accepted iteration recorded once (DESIGN §4, `checkInvariants`), nothing the daemon started left running, and
 * the run finished or cleanly refused (never "this is a bug"). Free of vitest: the test suite runs a representative
 * subset, `npm run bench:crash` every fault at every step.
 */
import { execFileSync } from "node:child_process";
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { EXIT_NOTHING_TO_DO } from "../../src/cli/run.ts";
import { EXIT_RESUMABLE } from "../../src/errors.ts";
import { preparedExperiment, REAL_RECORD_CLI, resume, type Spawned, spawnCli, stoppedAt } from "./experiment.ts";
import { checkInvariants } from "./invariants.ts";

/** The steps a fault is injected in: each takes the stand-in delay, so the daemon is seen in it. */
export const CAMPAIGN_STEPS = ["benchmark", "analyze", "edit", "gate", "record", "learn"] as const;
export type CampaignStep = (typeof CAMPAIGN_STEPS)[number];

export const CAMPAIGN_ITERATIONS = 3;
const SLOW = { STAND_IN_DELAY_MS: "150", FAULT_COMMAND: "1" };
const FAST = { STAND_IN_DELAY_MS: "5", FAULT_COMMAND: "1" };
const BAD_CONFIG = "max_iterations: -1\n";

export interface Fault {
  name: string;
  /** What the daemon that met the fault ends with: an exit code, or the signal that killed it. */
  firstEnd: number | "SIGKILL";
  /** The experiment lives on a small disk of its own (a tmpfs: root only), for faults of the disk. */
  disk?: boolean;
  inject(dir: string, daemon: Spawned): void | Promise<void>;
  /** What the operator does before the restarts (frees the disk). */
  repair?(dir: string): void;
  /** Violations of what this fault in particular must leave (beyond the common invariants). */
  check?(dir: string, before: { config: string; program: string }): string[];
}

const kill = (daemon: Spawned) => daemon.child.kill("SIGKILL");
const git = (dir: string, ...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" });

/** The operator's steering files are as they were, and nothing was committed as steering. */
function steeringKept(dir: string, before: { config: string; program: string }): string[] {
  const out: string[] = [];
  if (readFileSync(join(dir, "experiment_config.yaml"), "utf8") !== before.config) out.push("config not restored");
  if (readFileSync(join(dir, "PROGRAM.md"), "utf8") !== before.program) out.push("PROGRAM.md not restored");
  if (/^steer:/m.test(git(dir, "log", "--format=%s"))) out.push("an unusable steering edit was committed");
  return out;
}

export const FAULTS: Fault[] = [
  { name: "SIGKILL", firstEnd: "SIGKILL", inject: (_dir, daemon) => void kill(daemon) },
  ...(["SIGINT", "SIGTERM", "SIGHUP"] as const).map(
    (signal): Fault => ({ name: signal, firstEnd: 0, inject: (_dir, daemon) => void daemon.child.kill(signal) }),
  ),
  {
    name: "stale index.lock",
    firstEnd: "SIGKILL",
    inject: (dir, daemon) => {
      kill(daemon);
      // What a git killed inside `git commit` leaves.
      writeFileSync(join(dir, ".git", "index.lock"), "");
    },
  },
  {
    name: "torn results.tsv",
    firstEnd: "SIGKILL",
    inject: async (dir, daemon) => {
      kill(daemon);
      await daemon.exited;
      // A row cut short by the crash: half a line, no newline.
      const lines = readFileSync(join(dir, "workspace", "results.tsv"), "utf8")
        .trimEnd()
        .split("\n");
      appendFileSync(join(dir, "workspace", "results.tsv"), (lines.at(-1) as string).slice(0, 12));
    },
  },
  {
    name: "invalid config saved mid-run",
    firstEnd: EXIT_NOTHING_TO_DO,
    inject: (dir) => writeFileSync(join(dir, "experiment_config.yaml"), BAD_CONFIG),
    check: steeringKept,
  },
  {
    name: "invalid config at the restart",
    firstEnd: "SIGKILL",
    inject: async (dir, daemon) => {
      kill(daemon);
      await daemon.exited;
      writeFileSync(join(dir, "experiment_config.yaml"), BAD_CONFIG);
    },
    check: steeringKept,
  },
  {
    name: "full disk",
    firstEnd: EXIT_RESUMABLE,
    disk: true,
    inject: (dir) => fill(join(dir, "..", "filler")),
    repair: (dir) => rmSync(join(dir, "..", "filler"), { force: true }),
  },
  {
    name: "read-only workspace",
    firstEnd: EXIT_RESUMABLE,
    disk: true,
    inject: (dir) => {
      // A read-only bind mount over the workspace: what the daemon opens from now on is EROFS.
      const workspace = join(dir, "workspace");
      execFileSync("mount", ["--bind", workspace, workspace]);
      execFileSync("mount", ["-o", "remount,bind,ro", workspace]);
    },
    repair: (dir) => execFileSync("umount", [join(dir, "workspace")]),
  },
  {
    name: "empty PROGRAM.md saved mid-run",
    firstEnd: EXIT_NOTHING_TO_DO,
    inject: (dir) => writeFileSync(join(dir, "PROGRAM.md"), ""),
    check: steeringKept,
  },
];

/** Writes zeros until the disk refuses: ENOSPC. */
export function fill(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
}

/** A 16 MB tmpfs at `dir` (root only), or null with why not. */
function smallDisk(dir: string): string | null {
  if (process.getuid?.() !== 0) return "mounting a small disk needs root";
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir], { stdio: "pipe" });
    return null;
  } catch (error) {
    return `cannot mount a tmpfs: ${(error as Error).message.split("\n")[0]}`;
  }
}

/** Processes still running in or on the experiment (its command's background children), other than ours. */
export function leftovers(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cwd === dir || cwd.startsWith(`${dir}/`) || cmdline.includes(dir)) found.push(`${pid}: ${cmdline.trim()}`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ScenarioResult {
  fault: string;
  step: string;
  violations: string[];
  /** Why it could not run here (a disk fault without root). */
  skipped?: string;
}

/** What the campaign runs a fault against: how to make a fresh experiment, start its daemon and judge the end. */
export interface Subject {
  iterations: number;
  /** A fresh experiment at `root`; returns its directory. */
  make(root: string): string;
  /** The daemon; `first` is the one that meets the fault (slower steps). */
  daemon(dir: string, env: Record<string, string>, first: boolean): Spawned;
  /** Violations beyond DESIGN §4's invariants, given the fault the first daemon met. */
  check?(dir: string, fault: Fault): string[];
}

/** The real CLI with stand-in steps and a real benchmark command (tests/fixtures/cli-real-record.ts). */
export const STAND_IN_SUBJECT: Subject = {
  iterations: CAMPAIGN_ITERATIONS,
  make: (root) => preparedExperiment(root, { max_iterations: CAMPAIGN_ITERATIONS, patience: 50 }),
  daemon: (dir, env, first) =>
    spawnCli(["daemon", "--dir", dir], { ...(first ? SLOW : FAST), ...env }, REAL_RECORD_CLI),
};

/** One fault at one step (or crash point) of a fresh experiment under `parent`; every violation (none: survived). */
export async function runScenario(
  fault: Fault,
  step: string,
  parent: string,
  subject: Subject = STAND_IN_SUBJECT,
): Promise<ScenarioResult> {
  const base = join(parent, `exp-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
  if (!fault.disk) return await scenarioIn(base, fault, step, subject);
  const disk = join(base, "disk");
  const why = smallDisk(disk);
  if (why) return { fault: fault.name, step, violations: [], skipped: why };
  try {
    return await scenarioIn(join(disk, "exp"), fault, step, subject);
  } finally {
    // Bind mounts first (a fault may have left one), then the disk.
    for (const m of [join(disk, "exp", "workspace"), disk]) {
      try {
        execFileSync("umount", ["-l", m], { stdio: "pipe" });
      } catch {
        // not mounted
      }
    }
  }
}

async function scenarioIn(root: string, fault: Fault, step: string, subject: Subject): Promise<ScenarioResult> {
  const dir = subject.make(root);
  const before = {
    config: readFileSync(join(dir, "experiment_config.yaml"), "utf8"),
    program: readFileSync(join(dir, "PROGRAM.md"), "utf8"),
  };
  const violations: string[] = [];
  const stderr: string[] = [];
  // The daemon stops itself as it enters the step (AUTO_HARNESS_STOP_AT): the fault lands there, every time.
  const first = subject.daemon(dir, { AUTO_HARNESS_STOP_AT: step }, true);
  if (!(await stoppedAt(first))) violations.push(`never saw the daemon in ${step}`);
  await fault.inject(dir, first);
  resume(first);
  const end = await first.exited;
  stderr.push(first.stderr());
  const got = end.signal === "SIGKILL" ? "SIGKILL" : end.code;
  if (got !== fault.firstEnd) violations.push(`the daemon that met it ended with ${got}, not ${fault.firstEnd}`);
  fault.repair?.(dir);
  let code = end.code;
  for (let round = 0; round < 3 && code !== EXIT_NOTHING_TO_DO; round++) {
    const next = subject.daemon(dir, {}, false);
    ({ code } = await next.exited);
    stderr.push(next.stderr());
  }
  if (code !== EXIT_NOTHING_TO_DO) violations.push(`the run did not finish: last exit ${code}`);
  if (stderr.some((e) => /this is a bug/.test(e))) violations.push("a daemon printed 'this is a bug'");
  violations.push(...checkInvariants(dir, subject.iterations).violations);
  violations.push(...(fault.check?.(dir, before) ?? []));
  violations.push(...(subject.check?.(dir, fault) ?? []));
  // The keeper's group kill lands within moments of its daemon's death.
  for (let i = 0; i < 250 && leftovers(dir).length > 0; i++) await sleep(20);
  violations.push(...leftovers(dir).map((p) => `left running: ${p}`));
  return { fault: fault.name, step, violations };
}
