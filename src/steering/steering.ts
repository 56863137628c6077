/**
 * The operator steers by editing PROGRAM.md and experiment_config.yaml; the harness commits those edits as
 * `steer:`. A steering edit must come from the operator, never from an agent process: an agent that rewrote
 * PROGRAM.md got its words committed as the operator's. So the accepted version of each steering file is pinned
 * in the journal, every agent process runs inside a window (task runs, load checks), and a steering file that
 * changed during a window is restored to what it was when the window opened, its changed text set aside for the
 * operator and reported. Only a change made outside every window, against the pinned version, is committed.
 * When every agent runs sealed the sandbox is the wall (the experiment is read-only to it) and windows only delay
 * the commit.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { BenchmarkRunner } from "../benchmark/types.ts";
import type { Config } from "../config/schema.ts";
import type { Repo } from "../git/repo.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import { STEERING_FILES } from "../workspace/paths.ts";
import { type RejectedSteering, rejectedSteeringKey, steeringProblems } from "./validate.ts";

type CheckAgent = (agentFile: string) => Promise<{ ok: true } | { ok: false; message: string }>;

export const sha256 = (text: string | Buffer): string => createHash("sha256").update(text).digest("hex");

/** Where a steering file's text changed inside an agent window is kept for the operator. */
export const REFUSED_DIR = "workspace/steering-refused";

export interface SteeringGuard {
  /** True while any agent process may be running. */
  inWindow(): boolean;
  /** The runner, with each run inside a window. */
  wrapRunner(runner: BenchmarkRunner): BenchmarkRunner;
  /** The load check, inside a window. */
  wrapCheck(check: CheckAgent): CheckAgent;
  /** Runs `fn` inside a window. */
  within<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Commits each steering file that differs from its pinned version, outside any window, as `steer:`, and
   * pins it. Returns the last commit made, or null.
   */
  commitChanges(repo: Repo): Promise<string | null>;
}

export interface SteeringDeps {
  root: string;
  /** The pinned steering versions. */
  journal: Pick<Stores, "pins">;
  log: Pick<Logger, "warn" | "info">;
  now?: () => Date;
  /**
   * Every agent process runs sealed (read-only view of the experiment), so none can write a steering file: a change
   * during a window is the operator's, and restoring it would throw away most edits of a night (tasks run most of
   * the time). Windows then only guard unsealed agents.
   */
  agentsSealed?: boolean;
}

/** Whether no agent process of this config can write the experiment: the sandbox, or a sandboxed command. */
export function agentsSealed(config: Pick<Config, "benchmark" | "sandbox" | "command">): boolean {
  return config.benchmark === "command" ? config.command?.sandbox === true : config.sandbox === "bwrap";
}

export function createSteeringGuard(deps: SteeringDeps): SteeringGuard {
  const { root, log } = deps;
  const { pins } = deps.journal;
  const now = deps.now ?? (() => new Date());
  const read = (file: string): Buffer | null => {
    const abs = join(root, file);
    return existsSync(abs) ? readFileSync(abs) : null;
  };
  let open = 0;
  let atOpen = new Map<string, Buffer | null>();

  function enter(): void {
    if (open++ === 0) atOpen = new Map(STEERING_FILES.map((f) => [f, read(f)]));
  }

  function exit(): void {
    if (--open > 0 || deps.agentsSealed) return;
    for (const file of STEERING_FILES) {
      const before = atOpen.get(file) ?? null;
      const after = read(file);
      if (after === null ? before === null : before !== null && after.equals(before)) continue;
      // Changed while an agent process could run: not the operator's word, whoever wrote it.
      let keptAt: string | null = null;
      if (after !== null) {
        keptAt = setAside(root, file, after, now());
        pins.recordSteering({ path: file, sha256: sha256(after), status: "refused", commit: null });
      }
      if (before === null) rmSync(join(root, file), { force: true });
      else writeFileAtomic(join(root, file), before.toString("utf8"));
      log.warn(
        { file, keptAt },
        `${file} changed while an agent process was running: restored and not committed${keptAt ? `; the changed text is in ${keptAt} (if the edit was yours, make it again)` : ""}`,
      );
    }
  }

  async function within<T>(fn: () => Promise<T>): Promise<T> {
    enter();
    try {
      return await fn();
    } finally {
      exit();
    }
  }

  return {
    inWindow: () => open > 0,
    within,
    wrapRunner: (runner) => ({
      listTasks: () => runner.listTasks(),
      run: (request) => within(() => runner.run(request)),
    }),
    wrapCheck: (check) => (agentFile) => within(() => check(agentFile)),

    async commitChanges(repo) {
      if (open > 0) return null;
      const head = await repo.headCommit();
      let last: string | null = null;
      for (const file of STEERING_FILES) {
        const text = read(file);
        if (text === null) continue;
        const hash = sha256(text);
        let pinned = pins.acceptedSteering(file)?.sha256;
        if (pinned === undefined && head) {
          // First look: the committed version is the accepted one.
          const committed = await repo.fileAtCommit(head, file);
          if (committed !== null) {
            pinned = sha256(committed);
            pins.recordSteering({ path: file, sha256: pinned, status: "accepted", commit: head });
          }
        }
        if (pinned === hash) continue;
        const problems = steeringProblems(file, text);
        if (problems.length > 0) {
          const accepted = await acceptedSteeringText(repo, pins, file);
          rejectSteeringEdit({ root, pins, log, file, text, accepted, problems, at: now() });
          continue;
        }
        if (!(await repo.fileDiffersFromHead(file))) {
          pins.recordSteering({ path: file, sha256: hash, status: "accepted", commit: head });
          continue;
        }
        last = await repo.commitFile(file, `steer: ${file} updated`);
        pins.recordSteering({ path: file, sha256: hash, status: "accepted", commit: last });
        if (pins.fact(rejectedSteeringKey(file))) pins.putFact(rejectedSteeringKey(file), null);
        log.info({ file, commit: last }, `${file} changed: committed as steering`);
      }
      return last;
    },
  };
}

/** Keeps a steering text the harness will not use in workspace/steering-refused/; returns where, from the root. */
function setAside(root: string, file: string, text: Buffer, at: Date): string {
  const keptAt = `${REFUSED_DIR}/${file}.${at.toISOString().replace(/[:.]/g, "-")}`;
  mkdirSync(join(root, REFUSED_DIR), { recursive: true });
  writeFileAtomic(join(root, keptAt), text.toString("utf8"));
  return keptAt;
}

/** The text of a steering file's last accepted version: its pinned commit's, else HEAD's; null if never committed. */
export async function acceptedSteeringText(
  repo: Pick<Repo, "headCommit" | "fileAtCommit">,
  pins: Pick<Stores["pins"], "acceptedSteering">,
  file: string,
): Promise<string | null> {
  const commit = pins.acceptedSteering(file)?.commit ?? (await repo.headCommit());
  return commit ? await repo.fileAtCommit(commit, file) : null;
}

/**
 * An edit that cannot be used is not committed: its text is set aside, the accepted version put back (the run,
 * and every later start, go on with it), and the rejection journaled for `status` with the field and the fix.
 */
export function rejectSteeringEdit(o: {
  root: string;
  pins: Pick<Stores["pins"], "putFact">;
  log: Pick<Logger, "warn">;
  file: string;
  text: Buffer;
  accepted: string | null;
  problems: string[];
  at: Date;
}): RejectedSteering {
  const keptAt = setAside(o.root, o.file, o.text, o.at);
  if (o.accepted !== null) writeFileAtomic(join(o.root, o.file), o.accepted);
  const rejected: RejectedSteering = {
    file: o.file,
    sha256: sha256(o.text),
    problems: o.problems,
    keptAt,
    at: o.at.toISOString(),
  };
  o.pins.putFact(rejectedSteeringKey(o.file), rejected);
  const more = o.problems.length > 1 ? ` (and ${o.problems.length - 1} more)` : "";
  o.log.warn(
    { file: o.file, problems: o.problems, keptAt },
    `${o.file} edit rejected, not committed: ${o.problems[0]}${more}; the run goes on with the last accepted version; your text is in ${keptAt}: fix it and save it as ${o.file} again`,
  );
  return rejected;
}
