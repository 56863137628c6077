/**
 * Limits of every agent process, set by the harness (a hostile agent started 2,005 processes, ballooned
 * 4 GiB and filled 4 GiB of a tmpfs). Under cgroup v2, where the machine offers a delegated directory, each
 * agent process gets a cgroup of its own (memory.max, pids.max, no swap); otherwise rlimits, set by
 * `prlimit` inside the sandbox: there the process count is kept per user namespace, so each sandbox has a
 * count of its own. The private /tmp is a tmpfs of a fixed size either way, and the wall time is the task's.
 */
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { type Config, configSchema } from "../../config/schema.ts";
import { UserError } from "../../errors.ts";
import { pidAlive } from "./runtime-dir.ts";

export interface AgentLimits {
  /** Processes and threads in one sandbox. */
  processes: number;
  memoryMb: number;
  tmpMb: number;
  /** Bytes of model request bodies one task may send. */
  requestBytesPerTask: number;
  /** The cgroup v2 directory each agent process gets a cgroup in; null: rlimits. */
  cgroup: string | null;
}

const MIB = 1024 * 1024;
const PROC_SELF_CGROUP = "/proc/self/cgroup";
const MOUNTINFO = "/proc/self/mountinfo";

/** Why `dir` cannot hold the agents' cgroups, or null when it can. */
export function cgroupProblem(dir: string): string | null {
  const control = join(dir, "cgroup.subtree_control");
  if (!existsSync(control)) return `${dir} is not a cgroup v2 directory (no cgroup.subtree_control)`;
  const enabled = readFileSync(control, "utf8").split(/\s+/);
  const missing = ["memory", "pids"].filter((c) => !enabled.includes(c));
  if (missing.length > 0) {
    return `${dir} does not hand the ${missing.join(" and ")} controller(s) to its children: echo "+memory +pids" > ${control}`;
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return `${dir} is not writable by the harness`;
  }
  return null;
}

/** The harness's own cgroup v2 directory, from /proc/self/cgroup and the cgroup2 mount; null without one. */
export function ownCgroupDir(procCgroup = PROC_SELF_CGROUP, mountinfo = MOUNTINFO): string | null {
  try {
    const path = readFileSync(procCgroup, "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"))
      ?.slice(3);
    // mountinfo fields: id parent dev root mountpoint options … - fstype source super-options
    const mount = readFileSync(mountinfo, "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .find((f) => f[f.indexOf("-") + 1] === "cgroup2")?.[4];
    return path === undefined || mount === undefined ? null : join(mount, path);
  } catch {
    return null;
  }
}

/** The configured limits, with the cgroup resolved: the one named (refused when unusable), else the harness's own when delegated. */
export function limitsOf(config: Partial<Pick<Config, "sandbox_limits">> = {}): AgentLimits {
  const c = config.sandbox_limits ?? configSchema.shape.sandbox_limits.parse(undefined);
  let cgroup: string | null = null;
  if (c.cgroup) {
    const problem = cgroupProblem(c.cgroup);
    if (problem) throw new UserError("CONFIG_INVALID", `sandbox_limits.cgroup: ${problem}`);
    cgroup = c.cgroup;
  } else {
    const own = ownCgroupDir();
    cgroup = own && cgroupProblem(own) === null ? own : null;
  }
  return {
    processes: c.processes,
    memoryMb: c.memory_mb,
    tmpMb: c.tmp_mb,
    requestBytesPerTask: Math.round(c.request_mb_per_task * MIB),
    cgroup,
  };
}

export function tmpfsBytes(l: AgentLimits): number {
  return l.tmpMb * MIB;
}

/** `prlimit` inside the sandbox: per-process memory, no core files, and (rlimits) the process count. */
export function rlimitPrefix(l: AgentLimits): string[] {
  const own = l.cgroup === null ? [`--nproc=${l.processes}`, `--data=${l.memoryMb * MIB}`] : [];
  return ["/usr/bin/prlimit", ...own, "--core=0", "--"];
}

let nextCgroup = 0;
const swept = new Set<string>();

/** A cgroup for one agent process under `l.cgroup`, its limits written; null under rlimits. */
export function createAgentCgroup(l: AgentLimits): string | null {
  if (l.cgroup === null) return null;
  if (!swept.has(l.cgroup)) {
    swept.add(l.cgroup);
    sweepDeadCgroups(l.cgroup);
  }
  const dir = join(l.cgroup, `auto-harness-${process.pid}-${++nextCgroup}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "memory.max"), String(l.memoryMb * MIB));
  writeFileSync(join(dir, "pids.max"), String(l.processes));
  // Swap would let the balloon grow past memory.max on disk.
  if (existsSync(join(dir, "memory.swap.max"))) writeFileSync(join(dir, "memory.swap.max"), "0");
  return dir;
}

/** Once its processes are gone; a cgroup still busy is left to the next start's sweep. */
export function removeAgentCgroup(dir: string | null): void {
  if (!dir) return;
  try {
    rmdirSync(dir);
  } catch {}
}

/** Cgroups a dead harness left (their processes died with it). */
function sweepDeadCgroups(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = /^auto-harness-(\d+)-/.exec(name)?.[1];
    if (pid && Number(pid) !== process.pid && !pidAlive(Number(pid))) removeAgentCgroup(join(dir, name));
  }
}

/** One line for `status` and the logs: which mechanism enforces the limits, and the limits. */
export function describeLimits(l: AgentLimits, taskTimeoutS: number): string {
  const how = l.cgroup ? `cgroup v2 (${l.cgroup})` : "rlimits (no delegated cgroup v2)";
  const memory = l.cgroup ? `${l.memoryMb} MiB memory` : `${l.memoryMb} MiB memory a process`;
  const requests = Math.round(l.requestBytesPerTask / MIB);
  return `${how}: ${l.processes} processes, ${memory}, ${l.tmpMb} MiB /tmp, ${taskTimeoutS} s a task, ${requests} MiB of model requests a task`;
}
