import { existsSync, statSync } from "node:fs";
import { journalCorrupt } from "../errors.ts";
import type { Repo } from "../git/repo.ts";
import { readEntries } from "../learnings/learnings.ts";
import { RUN_TRAILER } from "../record/record.ts";
import { readResults } from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";

function sizeOf(file: string): number | null {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}

/** What shows that runs happened here: rows after the baseline, learnings entries, run commits. */
export async function workspaceHistory(p: Paths, repo: Repo): Promise<string[]> {
  const evidence: string[] = [];
  try {
    const rows = readResults(p.results).filter((r) => r.iteration > 0).length;
    if (rows > 0) evidence.push(`${p.results} has ${rows} row(s) after the baseline`);
  } catch {
    evidence.push(`${p.results} exists (damaged)`);
  }
  if (existsSync(p.learnings)) {
    const entries = readEntries(p.learnings).filter((e) => e.runId !== null).length;
    if (entries > 0) evidence.push(`${p.learnings} has ${entries} entr${entries === 1 ? "y" : "ies"}`);
  }
  const commits = (await repo.isRepo()) ? (await repo.trailerCommits(RUN_TRAILER)).length : 0;
  if (commits > 0) evidence.push(`git history has ${commits} commit(s) with a ${RUN_TRAILER} trailer`);
  return evidence;
}

/**
 * A missing or empty journal in a workspace with a history is refused, never re-created: a new journal would
 * forget the run, its pinned records and every paid reply, and opening an empty one truncates its WAL.
 */
export async function refuseLostJournal(p: Paths, repo: Repo): Promise<void> {
  const size = sizeOf(p.journal);
  if (size !== null && size > 0) return;
  const evidence = await workspaceHistory(p, repo);
  if (evidence.length === 0) return;
  const wal = sizeOf(`${p.journal}-wal`);
  throw journalCorrupt(
    p.journal,
    `${size === null ? "the file is missing" : "the file is empty (0 bytes)"} while ${evidence.join("; ")}`,
    `is ${size === null ? "missing" : "empty"} in a workspace with a history; it was not re-created` +
      (wal ? ` and ${p.journal}-wal (${wal} bytes) was left untouched` : "") +
      ". If you mean to start over, move workspace/ aside and run `auto-harness prepare`",
  );
}
