import { rmSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { type SimpleGit, simpleGit } from "simple-git";
import { classifyFault, HarnessError } from "../errors.ts";
import { fixedPrefix, isEditable, isPattern } from "../workspace/editable.ts";
import { gitLockFiles, gitProcessIn } from "./locks.ts";

/**
 * The one module that talks to git (through simple-git). Paths in and out are relative to
 * the experiment root, with forward slashes, even when the root is a subdirectory of the repository.
 */

export type ChangeKind = "modified" | "added" | "deleted" | "renamed";

export interface ChangedPath {
  path: string;
  kind: ChangeKind;
  /** The old path of a rename. */
  from?: string;
}

/** One path, or several paths and patterns (`agent/prompts/*.md`: workspace/editable.ts). */
export type Paths = string | readonly string[];

/** As git pathspecs: a pattern with glob magic (`*` within a folder, `**` across), relative to the root. */
export const pathspecs = (p: Paths): string[] =>
  (typeof p === "string" ? [p] : [...p]).map((s) => (isPattern(s) ? `:(glob)${s}` : s));

export interface Trailer {
  key: string;
  value: string;
}

export interface Repo {
  readonly root: string;
  isRepo(): Promise<boolean>;
  /** Full sha of HEAD, or null before the first commit. */
  headCommit(): Promise<string | null>;
  /** Everything in the working tree that differs from `base`: tracked changes (committed or not) and untracked, not ignored files. */
  changedPaths(base: string): Promise<ChangedPath[]>;
  /** Tracked files with uncommitted changes (staged or not). */
  uncommittedTracked(): Promise<string[]>;
  /** True when the file's working copy differs from HEAD, or it is untracked (any of several paths or patterns). */
  fileDiffersFromHead(path: Paths): Promise<boolean>;
  /** Commits only `path` (adding it if untracked; several paths or patterns: all they match); returns the new commit's sha. */
  commitFile(path: Paths, message: string, trailer?: Trailer): Promise<string>;
  /** Commits only these paths, if any of them changed; returns the new sha or null when nothing changed. */
  commitPaths(paths: string[], message: string): Promise<string | null>;
  /** `git init` in the root (for prepare in a fresh directory). */
  init(): Promise<void>;
  /** Every commit on HEAD's history carrying a `key:` trailer, newest first, with its value(s). */
  trailerCommits(key: string): Promise<{ sha: string; value: string }[]>;
  /** The newest commit on HEAD's history carrying the trailer `key: value`, or null. */
  findCommitByTrailer(key: string, value: string): Promise<string | null>;
  /**
   * Puts the version of `path` from `commit` into the working tree (and index); for several paths or patterns,
   * every file they match there, and files they match that `commit` does not have are removed.
   */
  restoreFile(path: Paths, commit: string): Promise<void>;
  /** The newest commit touching `path` (default agent/agent.ts; several: any of them), or HEAD when none does. */
  lastAcceptedCommit(path?: Paths): Promise<string>;
  /** The patch a commit made to one file. */
  diffOfCommit(sha: string, path: string): Promise<string>;
  /** The patch from HEAD to the working copy of a file, or of all files several paths or patterns match (new ones too). */
  diffOfWorkingFile(path: Paths): Promise<string>;
  /** A file's content as of a commit, or null when it did not exist there. */
  fileAtCommit(sha: string, path: string): Promise<string | null>;
  /**
   * Lock files a killed git left behind (index.lock, HEAD.lock, ref locks: a commit cut short), removed when no
   * git process runs in this repository. Returns the removed files, relative to the git dir.
   */
  repairStaleLocks(): Promise<string[]>;
}

// Unattended overnight commits must not fail on a machine without a git identity.
export const FALLBACK_IDENTITY = ["user.name=auto-harness", "user.email=auto-harness@localhost"];

/**
 * Every git the harness runs ignores the repository's hooks and fsmonitor: a hook written into
 * .git/hooks (by an agent, or anything else) would otherwise run at the harness's commit, with its environment.
 */
export const NO_HOOKS = ["core.hooksPath=/dev/null", "core.fsmonitor=false"];
export const gitOptions = (baseDir: string, config: string[] = []) => ({
  baseDir,
  config: [...NO_HOOKS, ...config],
  unsafe: { allowUnsafeHooksPath: true, allowUnsafeFsMonitor: true },
});

// git reports the OS's error only as text (strerror): these mean the disk, not the repository.
const GIT_STORAGE: [RegExp, string][] = [
  [/No space left on device|Disk quota exceeded/, "ENOSPC"],
  [/Read-only file system/, "EROFS"],
  [/Input\/output error/, "EIO"],
];

export function gitError(what: string, cause: unknown): HarnessError {
  const detail = cause instanceof Error ? cause.message.trim() : String(cause);
  const storage = GIT_STORAGE.find(([re]) => re.test(detail));
  if (storage) {
    const raw = Object.assign(new Error(`git ${what} failed: ${detail}`), { code: storage[1] });
    const fault = classifyFault(raw);
    if (fault) return fault;
  }
  return new HarnessError("GIT_STATE", `git ${what} failed: ${detail}`, { cause });
}

const splitZ = (out: string): string[] => out.split("\0").filter((s) => s !== "");

export function openRepo(root: string): Repo {
  const access = repoAccess(root);
  return {
    root: access.absRoot,
    headCommit: access.headCommit,
    ...worktreeQueries(access),
    ...historyQueries(access),
    ...repoWrites(access),
  };
}

/** The git client of one experiment root and the path and file helpers its methods share. */
function repoAccess(root: string) {
  const absRoot = resolve(root);
  const git: SimpleGit = simpleGit(gitOptions(absRoot));
  let prefix: string | null = null;
  let committer: SimpleGit | null = null;

  // Git reports top-level-relative paths; callers think in root-relative ones.
  async function repoPrefix(): Promise<string> {
    if (prefix === null) prefix = (await git.raw(["rev-parse", "--show-prefix"])).trim();
    return prefix;
  }
  async function fromTop(topPath: string): Promise<string> {
    const p = await repoPrefix();
    if (p === "" || topPath.startsWith(p)) return topPath.slice(p.length);
    return relative(absRoot, resolve(absRoot, "../".repeat(p.split("/").filter(Boolean).length), topPath))
      .split(sep)
      .join("/");
  }

  async function committerGit(): Promise<SimpleGit> {
    if (committer) return committer;
    const has = async (key: string) => {
      try {
        return (await git.raw(["config", "--get", key])).trim() !== "";
      } catch {
        return false;
      }
    };
    const missing = !(await has("user.name")) || !(await has("user.email"));
    committer = missing ? simpleGit(gitOptions(absRoot, FALLBACK_IDENTITY)) : git;
    return committer;
  }

  async function headCommit(): Promise<string | null> {
    try {
      return (await git.raw(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])).trim() || null;
    } catch {
      return null;
    }
  }

  async function untracked(path?: Paths): Promise<string[]> {
    const args = ["ls-files", "-z", "--full-name", "--others", "--exclude-standard"];
    if (path) args.push("--", ...pathspecs(path));
    return Promise.all(splitZ(await git.raw(args)).map(fromTop));
  }

  /**
   * Root-relative files of a commit several paths or patterns match. ls-tree takes no glob pathspecs: it
   * lists the folders the patterns lie under, and the matcher picks from them.
   */
  async function treeFiles(commit: string, path: Paths): Promise<string[]> {
    const specs = typeof path === "string" ? [path] : path;
    const under = [...new Set(specs.map((s) => (isPattern(s) ? fixedPrefix(s) || "." : s)))];
    const all = splitZ(await git.raw(["ls-tree", "-r", "-z", "--full-name", "--name-only", commit, "--", ...under]));
    return (await Promise.all(all.map(fromTop))).filter((f) => isEditable(f, specs));
  }

  /** Root-relative files several paths or patterns match in the working tree or the index. */
  async function worktreeFiles(path: Paths): Promise<string[]> {
    const args = ["ls-files", "-z", "--full-name", "--cached", "--others", "--exclude-standard", "--"];
    return Promise.all(splitZ(await git.raw([...args, ...pathspecs(path)])).map(fromTop));
  }

  /** Root-relative files several paths or patterns match in the working tree, the index or HEAD. */
  async function matchedFiles(path: readonly string[]): Promise<string[]> {
    const head = (await headCommit()) ? await treeFiles("HEAD", path) : [];
    return [...new Set([...(await worktreeFiles(path)), ...head])].sort();
  }

  return { absRoot, git, fromTop, committerGit, headCommit, untracked, treeFiles, worktreeFiles, matchedFiles };
}

type RepoAccess = ReturnType<typeof repoAccess>;

type WorktreeQueries = "isRepo" | "changedPaths" | "uncommittedTracked" | "fileDiffersFromHead" | "diffOfWorkingFile";
type HistoryQueries = "trailerCommits" | "findCommitByTrailer" | "lastAcceptedCommit" | "diffOfCommit" | "fileAtCommit";
type RepoWrites = "commitFile" | "commitPaths" | "init" | "restoreFile" | "repairStaleLocks";

/** What the working tree holds against HEAD. */
function worktreeQueries({ git, fromTop, untracked }: RepoAccess): Pick<Repo, WorktreeQueries> {
  return {
    async isRepo() {
      try {
        return (await git.raw(["rev-parse", "--is-inside-work-tree"])).trim() === "true";
      } catch {
        return false;
      }
    },

    async changedPaths(base) {
      let out: string;
      try {
        out = await git.raw(["diff", "--name-status", "-z", "-M", base, "--"]);
      } catch (e) {
        throw gitError(`diff against ${base}`, e);
      }
      const fields = splitZ(out);
      const changes: ChangedPath[] = [];
      for (let i = 0; i < fields.length; ) {
        const status = fields[i++] as string;
        if (status.startsWith("R") || status.startsWith("C")) {
          const from = await fromTop(fields[i++] as string);
          const to = await fromTop(fields[i++] as string);
          changes.push(status.startsWith("R") ? { path: to, kind: "renamed", from } : { path: to, kind: "added" });
        } else {
          const path = await fromTop(fields[i++] as string);
          const kind: ChangeKind = status === "A" ? "added" : status === "D" ? "deleted" : "modified";
          changes.push({ path, kind });
        }
      }
      for (const path of await untracked()) changes.push({ path, kind: "added" });
      return changes;
    },

    async uncommittedTracked() {
      const out = await git.raw(["status", "--porcelain=v1", "-z", "--untracked-files=no"]);
      const fields = splitZ(out);
      const paths: string[] = [];
      for (let i = 0; i < fields.length; i++) {
        const entry = fields[i] as string;
        paths.push(await fromTop(entry.slice(3)));
        // A rename's entry is followed by its old path.
        if (entry[0] === "R" || entry[0] === "C") i++;
      }
      return paths;
    },

    async fileDiffersFromHead(path) {
      if ((await untracked(path)).length > 0) return true;
      const out = await git.raw(["diff", "--name-only", "HEAD", "--", ...pathspecs(path)]);
      return out.trim() !== "";
    },

    async diffOfWorkingFile(path) {
      if (typeof path === "string") return git.raw(["diff", "--no-color", "HEAD", "--", path]);
      // New files count: marked as intended for the index just while the diff is taken.
      const fresh = await untracked(path);
      if (fresh.length > 0) await git.raw(["add", "--intent-to-add", "--", ...fresh]);
      try {
        return await git.raw(["diff", "--no-color", "HEAD", "--", ...pathspecs(path)]);
      } finally {
        if (fresh.length > 0) await git.raw(["reset", "-q", "--", ...fresh]);
      }
    },
  };
}

/** What the history holds: trailers, the last accepted commit, a commit's diff and files. */
function historyQueries({ git, headCommit }: RepoAccess): Pick<Repo, HistoryQueries> {
  return {
    async trailerCommits(key) {
      if (!(await headCommit())) return [];
      const out = await git.raw([
        "log",
        "-E",
        `--grep=^${key}: `,
        `--format=%H%x00%(trailers:key=${key},valueonly)%x01`,
        "HEAD",
      ]);
      const found: { sha: string; value: string }[] = [];
      for (const record of out.split("\x01")) {
        const [sha, values] = record.replace(/^\n+/, "").split("\0");
        if (!sha || values === undefined) continue;
        for (const v of values.split("\n")) if (v.trim() !== "") found.push({ sha: sha.trim(), value: v.trim() });
      }
      return found;
    },

    async findCommitByTrailer(key, value) {
      if (!(await headCommit())) return null;
      // --grep narrows the walk; the trailer itself is then checked exactly.
      const out = await git.raw([
        "log",
        "-F",
        `--grep=${key}: ${value}`,
        `--format=%H%x00%(trailers:key=${key},valueonly)%x01`,
        "HEAD",
      ]);
      for (const record of out.split("\x01")) {
        const [sha, values] = record.replace(/^\n+/, "").split("\0");
        if (!sha || values === undefined) continue;
        if (values.split("\n").some((v) => v.trim() === value)) return sha.trim();
      }
      return null;
    },

    async lastAcceptedCommit(path = "agent/agent.ts") {
      const head = await headCommit();
      if (!head) throw new HarnessError("GIT_STATE", "the repository has no commits yet");
      const sha = (await git.raw(["log", "-n", "1", "--format=%H", "HEAD", "--", ...pathspecs(path)])).trim();
      return sha || head;
    },

    async diffOfCommit(sha, path) {
      return git.raw(["show", "--format=", sha, "--", path]);
    },

    async fileAtCommit(sha, path) {
      try {
        // `./` makes the path relative to the experiment root, not the repository's top level.
        return await git.show([`${sha}:./${path}`]);
      } catch {
        return null;
      }
    },
  };
}

/** Commits, restores, init and the stale-lock repair. */
function repoWrites({
  absRoot,
  git,
  committerGit,
  headCommit,
  matchedFiles,
  treeFiles,
  worktreeFiles,
}: RepoAccess): Pick<Repo, RepoWrites> {
  return {
    async commitFile(path, message, trailer) {
      const g = await committerGit();
      const name = typeof path === "string" ? path : path.join(", ");
      try {
        // Several paths or patterns: the files they match now or at HEAD (a file removed is committed too).
        const files = typeof path === "string" ? [path] : await matchedFiles(path);
        await g.raw(["add", "-A", "--", ...files]);
        const trailerArgs = trailer ? ["--trailer", `${trailer.key}: ${trailer.value}`] : [];
        // Naming the paths commits only them (--only), whatever else is staged.
        await g.raw(["commit", "-m", message, ...trailerArgs, "--only", "--", ...files]);
      } catch (e) {
        throw gitError(`commit of ${name}`, e);
      }
      const sha = await headCommit();
      if (!sha) throw new HarnessError("GIT_STATE", `git commit of ${name} left no HEAD`);
      return sha;
    },

    async commitPaths(list, message) {
      const g = await committerGit();
      try {
        await g.raw(["add", "--", ...list]);
        const staged = (await g.raw(["diff", "--cached", "--name-only", "--", ...list])).trim();
        if (staged === "") return null;
        await g.raw(["commit", "-m", message, "--only", "--", ...list]);
      } catch (e) {
        throw gitError(`commit of ${list.join(", ")}`, e);
      }
      return headCommit();
    },

    async init() {
      try {
        await git.raw(["init", "-q"]);
      } catch (e) {
        throw gitError("init", e);
      }
    },

    async restoreFile(path, commit) {
      const what = `restore of ${typeof path === "string" ? path : path.join(", ")} from ${commit.slice(0, 7)}`;
      try {
        if (typeof path === "string") {
          await git.raw(["checkout", commit, "--", path]);
          return;
        }
        const there = await treeFiles(commit, path);
        if (there.length > 0) await git.raw(["checkout", commit, "--", ...there]);
        const keep = new Set(there);
        for (const f of await worktreeFiles(path)) {
          if (keep.has(f)) continue;
          await git.raw(["rm", "-q", "--cached", "--ignore-unmatch", "--", f]);
          rmSync(join(absRoot, f), { force: true });
        }
      } catch (e) {
        throw gitError(what, e);
      }
    },

    async repairStaleLocks() {
      const gitDir = (await git.raw(["rev-parse", "--absolute-git-dir"])).trim();
      const locks = gitLockFiles(gitDir);
      if (locks.length === 0) return [];
      const top = (await git.raw(["rev-parse", "--show-toplevel"])).trim();
      const running = gitProcessIn(top);
      if (running !== null) {
        throw new HarnessError(
          "GIT_STATE",
          `git (pid ${running}) is running in ${top} and holds ${locks.join(", ")}; let it finish, then try again`,
        );
      }
      for (const lock of locks) rmSync(join(gitDir, lock), { force: true });
      return locks;
    },
  };
}

export const shortSha = (sha: string): string => sha.slice(0, 7);
