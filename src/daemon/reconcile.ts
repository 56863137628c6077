import { existsSync, readFileSync } from "node:fs";
import type { EditOutput, GateOutput, LearnInput, RecordOutput } from "../contracts.ts";
import { type Repo, shortSha } from "../git/repo.ts";
import { closingSummaryKey } from "../journal/pins.ts";
import type { StepRow, Stores } from "../journal/stores.ts";
import {
  entryFromIteration,
  entryMarker,
  formatEntry,
  LEARNINGS_HEADER,
  type LearningsBlock,
  scanLearnings,
  summaryMarker,
} from "../learnings/learnings.ts";
import { RUN_TRAILER, runTrailerValue } from "../record/record.ts";
import { acceptanceReason } from "../verdicts.ts";
import {
  formatResultRow,
  LOOP_ITERATION_COLUMN,
  loopIterationOf,
  REASON_COLUMN,
  RESULTS_HEADER,
  type ResultRow,
  scanResults,
  writeFileAtomic,
} from "../workspace/files.ts";
import type { Paths } from "../workspace/paths.ts";

/**
 * Cross-checks at start and resume between the journal, results.tsv, learnings.md and the git trailers.
 * The journal and git hold the truth for what was accepted and what was learned; the two workspace files are
 * views of it. A view that lost rows, gained duplicates or was torn is reported with file and line and rebuilt
 * from the journal, never silently extended.
 */

export interface Finding {
  file: string;
  /** 1-based line in the file as found, or null (something missing). */
  line: number | null;
  problem: string;
  /** What was done about it; "reported" when nothing could be. */
  repair: string;
}

export const describeFinding = (f: Finding): string =>
  `${f.file}${f.line === null ? "" : `:${f.line}`}: ${f.problem}; ${f.repair}`;

interface Truth {
  /** Accepted iterations of the current generation, as the record step finished them. */
  rows: Map<number, ResultRow & { runId: string; commitSha: string }>;
  /** Finished iterations' learnings entries and finished runs' closing summaries, keyed by marker. */
  entries: Map<string, { runId: string; iteration: number; text: string; summary?: boolean }>;
  /** Each run's place in the journal's order, oldest first. */
  runOrder: Map<string, number>;
}

function outcome<T>(row: StepRow | undefined): T | null {
  return row && row.status === "done" ? (row.outcome as T | null) : null;
}

/**
 * What the journal recorded: the current generation's accepted rows (results.tsv starts over with each
 * generation, so an earlier one's rows, scored by the old scorer, are never brought back), and the learnings
 * entries and closing summaries of every run (learnings.md is one file across generations).
 */
export function journalTruth({ runs, pins }: Pick<Stores, "runs" | "pins">): Truth {
  const truth: Truth = { rows: new Map(), entries: new Map(), runOrder: new Map() };
  const current = runs.currentGeneration();
  for (const run of runs.runs()) {
    truth.runOrder.set(run.id, truth.runOrder.size);
    const summary = pins.fact(closingSummaryKey(run.id));
    if (typeof summary === "string") {
      truth.entries.set(summaryMarker(run.id), {
        runId: run.id,
        iteration: run.iteration,
        text: summary,
        summary: true,
      });
    }
    const steps = new Map<string, StepRow>();
    for (const s of runs.steps(run.id)) steps.set(`${s.iteration}:${s.step}`, s);
    const iterations = new Map(runs.iterations(run.id).map((i) => [i.iteration, i]));
    const numbers = new Set([...steps.values()].map((s) => s.iteration));
    for (const i of numbers) {
      const at = (step: string) => steps.get(`${i}:${step}`);
      const record = outcome<RecordOutput>(at("record"));
      const gate = outcome<GateOutput>(at("gate"));
      if (run.generation === current && record?.accepted && record.commit && gate?.valScore != null) {
        const finished = at("record")?.finishedAt ?? at("record")?.startedAt ?? 0;
        truth.rows.set(i, {
          runId: run.id,
          commitSha: record.commit,
          // Renumbered by position when written, as record.py numbers rows.
          iteration: i,
          valScore: gate.valScore,
          commit: shortSha(record.commit),
          evalsPassed: gate.suitePassed,
          evalsTotal: gate.suiteTotal,
          timestamp: new Date(finished).toISOString(),
          // The row as the record step wrote it, its reason included.
          extra: { [LOOP_ITERATION_COLUMN]: String(i), [REASON_COLUMN]: acceptanceReason(gate, gate.previousBest) },
        });
      }
      if (at("learn")?.status === "done") {
        const input: LearnInput = {
          runId: run.id,
          iteration: i,
          edit: outcome<EditOutput>(at("edit")),
          gate,
          record,
          bestBefore: iterations.get(i)?.bestBefore ?? null,
          trainScore: outcome<{ trainScore: number | null }>(at("benchmark"))?.trainScore ?? null,
        };
        truth.entries.set(entryMarker(run.id, i), {
          runId: run.id,
          iteration: i,
          text: formatEntry(entryFromIteration(input)),
        });
      }
    }
  }
  return truth;
}

// ---- results.tsv

function reconcileResults(file: string, truth: Truth): Finding[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  const scanned = scanResults(text, file);
  const { header } = scanned;
  const rows = scanned.rows.map((r) => r.row);
  const findings: Finding[] = scanned.damage.map((d) => ({ file, ...d }));
  const have = new Set(rows.map(loopIterationOf));
  const rebuilt: ResultRow[] = [];
  for (const [iteration, row] of truth.rows) {
    if (have.has(iteration)) continue;
    rebuilt.push(row);
    findings.push({
      file,
      line: null,
      problem: `no row for iteration ${iteration}, which the journal records accepted as ${row.commit}`,
      repair: "rebuilt from the journal",
    });
  }
  if (findings.length === 0) return [];
  let extra = header.split("\t").slice(RESULTS_HEADER.length);
  for (const column of [LOOP_ITERATION_COLUMN, REASON_COLUMN]) {
    if (rebuilt.length > 0 && !extra.includes(column)) extra = [...extra, column];
  }
  // In loop order, numbered by position as record.py numbers rows.
  const all = [...rows, ...rebuilt]
    .sort((a, b) => loopIterationOf(a) - loopIterationOf(b))
    .map((r, i) => ({ ...r, iteration: i }));
  const head = [...RESULTS_HEADER, ...extra].join("\t");
  writeFileAtomic(file, `${head}\n${all.map((r) => `${formatResultRow(r, extra)}\n`).join("")}`);
  return findings;
}

// ---- learnings.md

function reconcileLearnings(file: string, truth: Truth): Finding[] {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const findings: Finding[] = [];
  const { blocks, torn } = scanLearnings(text);
  const kept: LearningsBlock[] = [];
  const seen = new Set<string>();
  blocks.forEach((block, i) => {
    const isLast = i === blocks.length - 1;
    if (block.marker && seen.has(block.marker)) {
      findings.push({ file, line: block.line, problem: `duplicate of ${block.marker}`, repair: "dropped" });
      return;
    }
    if (block.marker && ((isLast && torn) || block.incomplete)) {
      findings.push({
        file,
        line: block.line,
        problem: `${block.marker} is cut short${isLast && torn ? " (no trailing newline)" : ""}`,
        repair: truth.entries.has(block.marker)
          ? "rebuilt from the journal"
          : "dropped (its iteration is unfinished: the learn step writes it again)",
      });
      return;
    }
    if (block.marker) seen.add(block.marker);
    kept.push(isLast && torn ? { ...block, text: `${block.text}\n` } : block);
  });
  if (torn && findings.length === 0) {
    findings.push({ file, line: text.split("\n").length, problem: "no trailing newline", repair: "newline added" });
  }
  // Entries the journal finished but the file lacks, inserted before the first later entry of the same run.
  for (const [marker, entry] of truth.entries) {
    if (seen.has(marker)) continue;
    findings.push({
      file,
      line: null,
      problem: entry.summary
        ? `no closing summary for ${entry.runId}, which the journal records written`
        : `no entry for ${entry.runId} iteration ${entry.iteration}, which the journal records finished`,
      repair: "rebuilt from the journal",
    });
    const at = kept.findIndex((b) => {
      // A summary closes its run: before the first block of a later run.
      if (entry.summary) return laterRun(b, entry.runId, truth.runOrder);
      if (b.marker === summaryMarker(entry.runId)) return true;
      return b.entry !== null && b.entry.runId === entry.runId && b.entry.iteration > entry.iteration;
    });
    const block: LearningsBlock = {
      marker,
      line: 0,
      text: entry.text.endsWith("\n") ? entry.text : `${entry.text}\n`,
      incomplete: false,
      entry: entry.summary ? null : { runId: entry.runId, iteration: entry.iteration },
      summary: entry.summary ? { runId: entry.runId } : null,
    };
    if (at < 0) kept.push(block);
    else kept.splice(at, 0, block);
  }
  if (findings.length === 0) return [];
  let out = "";
  for (const b of kept) {
    if (b.text === "") continue;
    if (out !== "" && b.marker && !out.endsWith("\n\n")) out += out.endsWith("\n") ? "\n" : "\n\n";
    out += b.text;
  }
  if (out === "") out = `${LEARNINGS_HEADER}\n`;
  if (!out.endsWith("\n")) out += "\n";
  writeFileAtomic(file, out);
  return findings;
}

function laterRun(b: LearningsBlock, runId: string, order: Map<string, number>): boolean {
  const of = b.entry?.runId ?? b.summary?.runId;
  return of !== undefined && (order.get(of) ?? -1) > (order.get(runId) ?? Number.POSITIVE_INFINITY);
}

// ---- git

async function crossCheckGit(repo: Repo, truth: Truth): Promise<Finding[]> {
  if (!(await repo.isRepo())) return [];
  const findings: Finding[] = [];
  const commits = await repo.trailerCommits(RUN_TRAILER);
  const byValue = new Map<string, string[]>();
  for (const c of commits) byValue.set(c.value, [...(byValue.get(c.value) ?? []), c.sha]);
  for (const [value, shas] of byValue) {
    if (shas.length > 1) {
      findings.push({
        file: "git history",
        line: null,
        problem: `${shas.length} commits carry ${RUN_TRAILER}: ${value} (${shas.map(shortSha).join(", ")})`,
        repair: "reported",
      });
    }
  }
  for (const row of truth.rows.values()) {
    // Only a real sha can be looked up (test stand-ins record made-up ones).
    if (!/^[0-9a-f]{7,40}$/.test(row.commitSha)) continue;
    const shas = byValue.get(runTrailerValue(row.runId, row.iteration)) ?? [];
    if (!shas.some((sha) => sha === row.commitSha)) {
      findings.push({
        file: "git history",
        line: null,
        problem: `the journal records iteration ${row.iteration} accepted as ${row.commit}, but HEAD's history has no such commit with ${RUN_TRAILER}: ${runTrailerValue(row.runId, row.iteration)}`,
        repair: "reported (was the branch reset?)",
      });
    }
  }
  return findings;
}

/** Runs every cross-check and repairs what the journal and git can restore; returns what it found. */
export async function reconcileWorkspace(opts: {
  paths: Paths;
  journal: Pick<Stores, "runs" | "pins">;
  repo: Repo;
}): Promise<Finding[]> {
  const truth = journalTruth(opts.journal);
  return [
    ...reconcileResults(opts.paths.results, truth),
    ...reconcileLearnings(opts.paths.learnings, truth),
    ...(await crossCheckGit(opts.repo, truth)),
  ];
}
