import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { UserError } from "../errors.ts";

export interface LockInfo {
  pid: number;
  startedAt: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as LockInfo;
  } catch {
    return null;
  }
}

/** The pid holding the workspace, if that process is still alive. */
export function lockHolder(file: string): LockInfo | null {
  const info = readLock(file);
  return info && info.pid !== process.pid && alive(info.pid) ? info : null;
}

/**
 * One daemon per workspace. The lock file holds the owner's pid; a lock left by a killed process
 * (SIGKILL, reboot) is taken over, so pm2's restart resumes at once.
 */
export function acquireLock(file: string, command: string): () => void {
  mkdirSync(dirname(file), { recursive: true });
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = openSync(file, "wx");
      const info: LockInfo = { pid: process.pid, startedAt: new Date().toISOString(), command };
      writeSync(fd, JSON.stringify(info));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        if (readLock(file)?.pid === process.pid) unlinkSync(file);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = lockHolder(file);
      if (holder) {
        throw new UserError(
          "WORKSPACE_LOCKED",
          `another auto-harness (pid ${holder.pid}, "${holder.command}", since ${holder.startedAt}) is running on this workspace; stop it first (pm2 stop auto-harness, or kill ${holder.pid})`,
        );
      }
      try {
        unlinkSync(file);
      } catch {
        // Another process took it over first; the next try sees its lock.
      }
    }
  }
  throw new UserError("WORKSPACE_LOCKED", `could not take the workspace lock ${file}; remove it if no daemon runs`);
}
