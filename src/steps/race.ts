/**
 * A round of several candidates: each edits its own copy of the experiment (a git worktree under the
 * workspace, never the working tree), taking a different failure pattern from the analysis while its
 * siblings take theirs, the coding sessions running at once within `max_concurrency`. A runner-up of the
 * last round (it beat the old champion, another won) is re-gated against the new one: its change applied
 * three-way on the new champion, never merged unjudged. Every finished candidate is journaled (its edit and
 * its files' hash), each session's conversation under its own key: a killed edit resumes with the finished
 * candidates kept and the rest replaying their paid replies.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import type { CandidateSession, CodingAgent } from "../coding-agent/index.ts";
import type { Config } from "../config/schema.ts";
import type { CandidateEdit, EditInput, EditOutput } from "../contracts.ts";
import { crashPoint } from "../crash-point.ts";
import type { GateCandidate } from "../gate/gate.ts";
import type { RoundCandidate } from "../gate/round.ts";
import type { Repo } from "../git/repo.ts";
import { openWorktrees } from "../git/worktrees.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { editableSpecs, listEditable } from "../workspace/editable.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";

/** Where candidate `id` of a round keeps its copy of the experiment. */
export const candidateDir = (root: string, runId: string, iteration: number, id: string): string =>
  join(paths(root).workspace, "candidates", runId, String(iteration), id);

const candidateKey = (runId: string, iteration: number, id: string) => `race:${runId}:${iteration}:${id}`;

/** The editable files of a copy, name and content: what a finished candidate left, to check it on resume. */
function filesHash(dir: string, specs: readonly string[]): string {
  const h = createHash("sha256");
  for (const f of listEditable(dir, specs))
    h.update(`${f}\u0000`)
      .update(readFileSync(join(dir, f)))
      .update("\u0000");
  return h.digest("hex");
}

interface Journaled {
  edit: CandidateEdit;
  files: string;
}

/** A runner-up of the round before this one: what it tried and its change, to re-gate. */
export function runnerUpOf(
  journal: Pick<Stores, "gateRecords">,
  runId: string,
  iteration: number,
): { from: number; candidate: RoundCandidate } | null {
  const last = journal.gateRecords
    .gateDecisions(runId)
    .filter((d) => d.status === "decided" && d.iteration < iteration)
    .at(-1);
  if (!last?.accept) return null;
  const candidates = (last.details.candidates as RoundCandidate[] | undefined) ?? [];
  const up = candidates.find((c) => c.verdict === "runner-up" && c.diff !== "");
  return up ? { from: last.iteration, candidate: up } : null;
}

export interface RaceDeps {
  root: string;
  config: Config;
  journal: Pick<Stores, "pins" | "gateRecords">;
  log: Logger;
  repo: Repo;
  codingAgent: CodingAgent;
}

/**
 * Runs `work` over `items`, at most `limit` at once. The first failure (the budget, an outage) stops the
 * rest: their signal is aborted and every one has ended before the failure is thrown, so no session of a
 * failed step still spends.
 */
async function pooled<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const stop = new AbortController();
  const abort = () => stop.abort(signal.reason);
  signal.addEventListener("abort", abort, { once: true });
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length && !failure) {
      try {
        await work(items[next++]!, stop.signal);
      } catch (error) {
        failure ??= { error };
        stop.abort(error);
      }
    }
  });
  await Promise.all(lanes);
  signal.removeEventListener("abort", abort);
  if (failure) throw (failure as { error: unknown }).error;
}

/** The round's edits, one per candidate: the edit step of a race. */
export async function raceEdit(deps: RaceDeps, input: EditInput, signal: AbortSignal): Promise<EditOutput> {
  const { root, config, journal } = deps;
  const { runId, iteration } = input;
  const specs = editableSpecs(config);
  const worktrees = openWorktrees(root);
  const base = await deps.repo.headCommit();
  if (!base) throw new Error("the experiment has no commit to copy");
  await pruneOtherRounds(root, runId, iteration, worktrees);
  const ids = Array.from({ length: config.candidates }, (_, i) => `c${i + 1}`);
  const regate = runnerUpOf(journal, runId, iteration);
  // Each slot's failure pattern: the runner-up keeps its own, the fresh sessions take the analysis's in order.
  const patterns = input.analysis?.patterns ?? [];
  const fresh = (k: number) => (patterns.length === 0 ? null : patterns[k % patterns.length]!);
  const slotPattern = ids.map((_, i) => (regate ? (i === 0 ? regate.candidate.pattern : fresh(i - 1)) : fresh(i)));
  const done = new Map<string, CandidateEdit>();
  const sessions: CandidateSession[] = [];

  // Copies are made one at a time (git's own locks), the sessions then run at once.
  for (const [i, id] of ids.entries()) {
    const dir = candidateDir(root, runId, iteration, id);
    const kept = journal.pins.fact(candidateKey(runId, iteration, id)) as Journaled | undefined;
    if (kept && existsSync(dir) && filesHash(dir, specs) === kept.files) {
      done.set(id, kept.edit);
      continue;
    }
    await worktrees.fresh(dir, base);
    if (i === 0 && regate) {
      const edit = await regated(deps, regate, id, dir);
      if (edit) {
        journal.pins.putFact(candidateKey(runId, iteration, id), { edit, files: filesHash(dir, specs) });
        done.set(id, edit);
        continue;
      }
    }
    const own = slotPattern[i] ?? null;
    const siblings = slotPattern.filter((p, j): p is string => j !== i && p !== null && p !== own);
    sessions.push({ id, root: dir, pattern: own, siblings: [...new Set(siblings)], index: i + 1, of: ids.length });
  }

  await pooled(sessions, config.max_concurrency, signal, async (session, lane) => {
    const out = await deps.codingAgent.edit(input, lane, session);
    const edit: CandidateEdit = { ...out, id: session.id };
    journal.pins.putFact(candidateKey(runId, iteration, session.id), { edit, files: filesHash(session.root, specs) });
    done.set(session.id, edit);
    crashPoint("race:candidate-edited");
  });
  const candidates = ids.map((id) => done.get(id)!);
  const lead = candidates.find((c) => c.changed) ?? candidates[0]!;
  const { id: _id, regatedFrom: _from, ...fields } = lead;
  return { ...fields, changed: candidates.some((c) => c.changed), candidates };
}

/** Where one candidate of a round in flight stands, for `status` and the live view. */
export interface CandidateProgress {
  id: string;
  /** editing; edited (or unchanged); racing, with its held-out runs so far; then its verdict once decided. */
  stage: "editing" | "edited" | "unchanged" | "racing" | "winner" | "runner-up" | "rejected";
  runs: number;
  pattern: string | null;
}

/** The round's candidates as the journal holds them now (null: a round of one). */
export function raceProgress(
  journal: Pick<Stores, "pins" | "gateRecords">,
  runId: string,
  iteration: number,
  candidates: number,
): CandidateProgress[] | null {
  if (candidates <= 1) return null;
  const decision = journal.gateRecords.gateDecision(runId, iteration);
  if (decision?.status === "decided") {
    const decided = (decision.details.candidates as RoundCandidate[] | undefined) ?? [];
    return decided.map((c) => ({ id: c.id, stage: c.verdict, runs: c.runs, pattern: c.pattern }));
  }
  const runs = new Map<string, number>();
  for (const r of journal.gateRecords.gateRuns(runId, iteration)) runs.set(r.arm, (runs.get(r.arm) ?? 0) + 1);
  return Array.from({ length: candidates }, (_, i) => {
    const id = `c${i + 1}`;
    const kept = journal.pins.fact(candidateKey(runId, iteration, id)) as Journaled | undefined;
    const stage = runs.has(id) ? "racing" : !kept ? "editing" : kept.edit.changed ? "edited" : "unchanged";
    return { id, stage, runs: runs.get(id) ?? 0, pattern: kept?.edit.pattern ?? null };
  });
}

/** "c1 editing · c2 racing (12 held-out runs) · c3 unchanged" */
export function raceLine(items: readonly CandidateProgress[]): string {
  return items.map((c) => `${c.id} ${c.stage}${c.runs > 0 ? ` (${c.runs} held-out runs)` : ""}`).join(" · ");
}

/** The round's candidates for the gate, each in its copy. */
export function gateCandidates(root: string, runId: string, iteration: number, edit: EditOutput): GateCandidate[] {
  return (edit.candidates ?? []).map((c) => ({ id: c.id, root: candidateDir(root, runId, iteration, c.id), edit: c }));
}

/** The edit a round stands for: the accepted candidate's, else its first changed one's. */
export function editOf(edit: EditOutput, winner: string | null | undefined): EditOutput {
  const c = edit.candidates?.find((x) => x.id === winner) ?? edit.candidates?.find((x) => x.changed);
  if (!c) return edit;
  const { id: _id, regatedFrom: _from, ...fields } = c;
  return { ...fields, candidates: edit.candidates ?? [] };
}

/**
 * Puts the winner's editable files into the experiment's working tree (what it lacks is removed), so the
 * record step commits them there. Idempotent.
 */
export function bringWinner(root: string, from: string, specs: readonly string[]): void {
  const theirs = new Set(listEditable(from, specs));
  for (const f of listEditable(root, specs)) if (!theirs.has(f)) rmSync(join(root, f), { force: true });
  for (const f of theirs) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileAtomic(join(root, f), readFileSync(join(from, f)));
  }
}

/** Copies of other rounds left by a killed step: removed (git forgets them too). */
async function pruneOtherRounds(
  root: string,
  runId: string,
  iteration: number,
  worktrees: ReturnType<typeof openWorktrees>,
): Promise<void> {
  const top = join(paths(root).workspace, "candidates");
  if (!existsSync(top)) return;
  for (const run of readdirSync(top))
    for (const it of readdirSync(join(top, run)))
      if (run !== runId || it !== String(iteration)) await worktrees.remove(join(top, run, it));
}

/** The runner-up's change on the new champion, or null (logged) when it does not apply there. */
async function regated(
  deps: RaceDeps,
  regate: NonNullable<ReturnType<typeof runnerUpOf>>,
  id: string,
  dir: string,
): Promise<CandidateEdit | null> {
  const c = regate.candidate;
  if (!(await openWorktrees(deps.root).apply(dir, c.diff))) {
    deps.log.warn(
      { from: regate.from, runnerUp: c.id },
      `runner-up ${c.id} of iteration ${regate.from} does not apply on the new champion; a fresh candidate takes its place`,
    );
    return null;
  }
  deps.log.info(
    { candidate: id, from: regate.from, runnerUp: c.id },
    `re-gating runner-up ${c.id} of iteration ${regate.from} as ${id}`,
  );
  return {
    id,
    changed: true,
    hypothesis: c.hypothesis ?? `runner-up ${c.id} of iteration ${regate.from}`,
    changeSummary:
      c.changeSummary ?? `runner-up ${c.id} of iteration ${regate.from}, re-gated against the new champion`,
    commitMessage: c.changeSummary ?? `Runner-up ${c.id} of iteration ${regate.from}`,
    pattern: c.pattern ?? "unknown",
    needsFromHuman: "none",
    regatedFrom: regate.from,
  };
}

/** Removes every candidate's copy (the run is over: nothing of an unfinished round stays behind). */
export async function removeAllCandidates(root: string): Promise<void> {
  const top = join(paths(root).workspace, "candidates");
  if (!existsSync(top)) return;
  const worktrees = openWorktrees(root);
  for (const run of readdirSync(top))
    for (const it of readdirSync(join(top, run)))
      for (const id of readdirSync(join(top, run, it))) await worktrees.remove(join(top, run, it, id));
  rmSync(top, { recursive: true, force: true });
}

/** Removes a finished round's copies (its runner-up's change is journaled with the decision). */
export async function removeRound(
  root: string,
  runId: string,
  iteration: number,
  ids: readonly string[],
): Promise<void> {
  const worktrees = openWorktrees(root);
  for (const id of ids) await worktrees.remove(candidateDir(root, runId, iteration, id));
  rmSync(dirname(candidateDir(root, runId, iteration, "x")), { recursive: true, force: true });
}
