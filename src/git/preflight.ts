import { UserError } from "../errors.ts";
import { AGENT_FILE, isSteering } from "../workspace/paths.ts";
import { openRepo, type Repo } from "./repo.ts";

export interface PreflightOptions {
  repo?: Repo;
  /** The agent file relative to the root (config `agent_file`). */
  agentFile?: string;
}

// workspace/ is runtime data; the steering files the operator may edit at any time (the harness commits them).
const exempt = (path: string): boolean => isSteering(path) || path.startsWith("workspace/");

/**
 * Start-up checks of a run: the file guard and the record step need a clean, committed starting point.
 * Throws a UserError (exit 2) whose message names the fix in one line.
 */
export async function preflight(root: string, options: PreflightOptions = {}): Promise<void> {
  const repo = options.repo ?? openRepo(root);
  if (!(await repo.isRepo())) {
    throw new UserError(
      "GIT_STATE",
      `${root} is not a git repository; run: git init && git add -A && git commit -m "initial agent"`,
    );
  }
  if (!(await repo.headCommit())) {
    throw new UserError("GIT_STATE", `${root} has no commits yet; run: git add -A && git commit -m "initial agent"`);
  }
  const agent = options.agentFile ?? AGENT_FILE;
  if (await repo.fileDiffersFromHead(agent)) {
    throw new UserError(
      "GIT_STATE",
      `${agent} differs from HEAD; commit it (git add ${agent} && git commit -m "agent") or discard it (git checkout HEAD -- ${agent})`,
    );
  }
  const dirty = (await repo.uncommittedTracked()).filter((p) => !exempt(p));
  if (dirty.length > 0) {
    throw new UserError(
      "GIT_STATE",
      `tracked files have uncommitted changes (${dirty.join(", ")}); commit or stash them (git stash) before starting`,
    );
  }
}
