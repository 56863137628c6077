/** What a killed git leaves behind (lock files), and whether a live git still owns them. */
import { type Dirent, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** Lock files under the git dir: what an interrupted `git commit` / `git checkout` leaves. */
export function gitLockFiles(gitDir: string): string[] {
  const found: string[] = [];
  for (const name of ["index.lock", "HEAD.lock", "ORIG_HEAD.lock", "packed-refs.lock", "config.lock"]) {
    if (existsSync(join(gitDir, name))) found.push(name);
  }
  const walk = (rel: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(join(gitDir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else if (e.name.endsWith(".lock")) found.push(child);
    }
  };
  walk("refs");
  return found;
}

/** A live git process whose working directory is inside `top` (its locks are its own), or null. */
export function gitProcessIn(top: string): number | null {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    try {
      if (!readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("git")) continue;
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cwd === top || cwd.startsWith(`${top}/`)) return Number(pid);
    } catch {
      // Gone meanwhile, or not ours to inspect.
    }
  }
  return null;
}
