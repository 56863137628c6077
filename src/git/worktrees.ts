/**
 * Candidates' own copies of the experiment: git worktrees under the workspace, detached at a commit, so a
 * coding session edits its copy and never the experiment's working tree. They share the repository's history
 * (a copy's diff, its accepted commit, the hard-coding check's baseline all read the same commits).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { simpleGit } from "simple-git";
import { gitError, gitOptions } from "./repo.ts";

export interface Worktrees {
  /** A fresh copy at `commit` in `dir`: whatever was there (a half-made edit) is removed first. */
  fresh(dir: string, commit: string): Promise<void>;
  remove(dir: string): Promise<void>;
  /** Applies a patch three-way in the copy at `dir`; false (and the copy as it was) when it does not apply. */
  apply(dir: string, patch: string): Promise<boolean>;
}

export function openWorktrees(root: string): Worktrees {
  const git = simpleGit(gitOptions(root));
  const remove = async (dir: string) => {
    try {
      if (existsSync(dir)) await git.raw(["worktree", "remove", "--force", "--force", dir]);
    } catch {
      // Not (or no longer) registered: the folder is all that is left of it.
    }
    rmSync(dir, { recursive: true, force: true });
    await git.raw(["worktree", "prune"]);
  };
  return {
    remove,
    async fresh(dir, commit) {
      await remove(dir);
      mkdirSync(dirname(dir), { recursive: true });
      try {
        await git.raw(["worktree", "add", "--detach", "--force", dir, commit]);
      } catch (e) {
        throw gitError(`worktree add of ${commit.slice(0, 7)} at ${dir}`, e);
      }
    },
    async apply(dir, patch) {
      const file = join(dirname(dir), `${dir.split("/").at(-1)}.patch`);
      // Diffs are journaled trimmed; git apply calls a patch without its last newline corrupt.
      writeFileSync(file, patch.endsWith("\n") ? patch : `${patch}\n`);
      try {
        await simpleGit(gitOptions(dir)).raw(["apply", "--3way", "--whitespace=nowarn", file]);
        return true;
      } catch {
        const copy = simpleGit(gitOptions(dir));
        await copy.raw(["reset", "-q", "--hard", "HEAD"]);
        await copy.raw(["clean", "-fdq"]);
        return false;
      } finally {
        rmSync(file, { force: true });
      }
    },
  };
}
