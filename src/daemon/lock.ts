import { existsSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { UserError } from "../errors.ts";
import { holdExclusive } from "../journal/exclusive.ts";
import { writeFileAtomic } from "../workspace/files.ts";

/**
 * One daemon per workspace. The lock itself is an OS-level one: an exclusive SQLite transaction on
 * `<file>.db` (fcntl locks underneath), held for the daemon's life. The kernel drops it the moment the
 * process dies, so a restart right after SIGKILL is never refused, and two takers can never both hold it.
 * `<file>` only describes the holder (pid, start, command) for messages and `status`.
 */

export interface LockInfo {
  pid: number;
  startedAt: string;
  command: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid apart. */
  startTicks?: number | null;
}

// Contending takers retry inside SQLite for this long: two racers can each make the other's first try fail.
const TAKE_TIMEOUT_MS = 1000;

/** State and start time of a process from /proc, or null where there is no /proc or no such process. */
export function procStat(pid: number): { state: string; pgrp: number; startTicks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields are counted from the last ')'.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "?", pgrp: Number(fields[2]), startTicks: Number(fields[19]) };
  } catch {
    return null;
  }
}

/** Alive and not a zombie: a killed daemon awaiting its parent's wait() still answers kill(pid, 0). */
export function processAlive(pid: number, startTicks?: number | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = procStat(pid);
  // No entry: either no /proc here (trust kill), or the process ended between the two looks.
  if (!stat) return !existsSync("/proc/self/stat");
  if (stat.state === "Z" || stat.state === "X") return false;
  return startTicks == null || stat.startTicks === startTicks;
}

export function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as LockInfo;
  } catch {
    return null;
  }
}

/** The process holding the workspace, if it is still alive. */
export function lockHolder(file: string): LockInfo | null {
  const info = readLock(file);
  return info && info.pid !== process.pid && processAlive(info.pid, info.startTicks) ? info : null;
}

function refusal(file: string): UserError {
  const info = readLock(file);
  const holder = info && processAlive(info.pid, info.startTicks) ? info : null;
  return new UserError(
    "WORKSPACE_LOCKED",
    holder
      ? `another auto-harness (pid ${holder.pid}, "${holder.command}", since ${holder.startedAt}) is running on this workspace; stop it first (pm2 stop auto-harness, or kill ${holder.pid})`
      : `another auto-harness process is taking the workspace lock ${file} right now; try again in a moment`,
  );
}

/** Takes the workspace lock or throws WORKSPACE_LOCKED (exit 2); returns the release function. */
export function acquireLock(file: string, command: string, now = new Date()): () => void {
  mkdirSync(dirname(file), { recursive: true });
  const db = holdExclusive(`${file}.db`, TAKE_TIMEOUT_MS);
  if (db === "busy") throw refusal(file);
  const info: LockInfo = {
    pid: process.pid,
    startedAt: now.toISOString(),
    command,
    startTicks: procStat(process.pid)?.startTicks ?? null,
  };
  try {
    writeFileAtomic(file, JSON.stringify(info));
  } catch (error) {
    db.close();
    throw error;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      if (readLock(file)?.pid === process.pid) unlinkSync(file);
    } catch {
      // Gone already; the OS lock below is what counts.
    }
    db.close();
  };
}
