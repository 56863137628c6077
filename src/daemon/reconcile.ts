import { existsSync, readFileSync } from "node:fs";
import { FileDamagedError } from "../errors.ts";
import { type Repo, shortSha } from "../git/repo.ts";
import type { Journal, StepRow } from "../journal/journal.ts";
import { entryFromIteration, entryMarker, formatEntry, LEARNINGS_HEADER } from "../learnings/learnings.ts";
import { RUN_TRAILER, runTrailerValue } from "../record/record.ts";
import type { EditOutput, GateOutput, LearnInput, RecordOutput } from "../steps/contracts.ts";
import {
  formatResultRow,
  LOOP_ITERATION_COLUMN,
  loopIterationOf,
  parseResults,
  RESULTS_HEADER,
  type ResultRow,
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
  /** Accepted iterations, as the record step finished them. */
  rows: Map<number, ResultRow & { runId: string; commitSha: string }>;
  /** Finished iterations' learnings entries, keyed by marker. */
  entries: Map<string, { runId: string; iteration: number; text: string }>;
}

function outcome<T>(row: StepRow | undefined): T | null {
  return row && row.status === "done" ? (row.outcome as T | null) : null;
}

/** What the journal recorded: accepted rows and learnings entries of every run. */
export function journalTruth(journal: Journal): Truth {
  const truth: Truth = { rows: new Map(), entries: new Map() };
  for (const run of journal.runs()) {
    const steps = new Map<string, StepRow>();
    for (const s of journal.steps(run.id)) steps.set(`${s.iteration}:${s.step}`, s);
    const iterations = new Map(journal.iterations(run.id).map((i) => [i.iteration, i]));
    const numbers = new Set([...steps.values()].map((s) => s.iteration));
    for (const i of numbers) {
      const at = (step: string) => steps.get(`${i}:${step}`);
      const record = outcome<RecordOutput>(at("record"));
      const gate = outcome<GateOutput>(at("gate"));
      if (record?.accepted && record.commit && gate?.valScore != null) {
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
          extra: { [LOOP_ITERATION_COLUMN]: String(i) },
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

/**
 * Reads results.tsv leniently: a torn last line (no trailing newline) and duplicated iterations are findings
 * to repair; any other damage still stops with the file and line, since nothing here knows the right content.
 */
export function scanResults(text: string, file: string): { header: string; rows: ResultRow[]; findings: Finding[] } {
  const findings: Finding[] = [];
  const lines = text.split("\n");
  const torn = text !== "" && !text.endsWith("\n");
  if (lines.at(-1) === "") lines.pop();
  const header = lines[0] ?? "";
  // The header and every complete row must parse; parseResults names the file and line otherwise.
  const complete = torn ? lines.slice(0, -1) : lines;
  if (torn && lines.length === 1) throw new FileDamagedError(file, 1, "the header line is torn (no newline)");
  const { rows } = parseResults(`${complete.join("\n")}\n`, file);
  if (torn) {
    findings.push({
      file,
      line: lines.length,
      problem: `torn last line (no trailing newline): "${(lines.at(-1) ?? "").slice(0, 80)}"`,
      repair: "dropped",
    });
  }
  const seen = new Set<number>();
  const unique: ResultRow[] = [];
  rows.forEach((row, i) => {
    const loop = loopIterationOf(row);
    if (seen.has(loop)) {
      findings.push({
        file,
        line: i + 2,
        problem: `duplicate row for iteration ${loop}`,
        repair: "dropped (the first row is kept)",
      });
      return;
    }
    seen.add(loop);
    unique.push(row);
  });
  return { header, rows: unique, findings };
}

function reconcileResults(file: string, truth: Truth): Finding[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  const { header, rows, findings } = scanResults(text, file);
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
  if (rebuilt.length > 0 && !extra.includes(LOOP_ITERATION_COLUMN)) extra = [...extra, LOOP_ITERATION_COLUMN];
  // In loop order, numbered by position as record.py numbers rows.
  const all = [...rows, ...rebuilt]
    .sort((a, b) => loopIterationOf(a) - loopIterationOf(b))
    .map((r, i) => ({ ...r, iteration: i }));
  const head = [...RESULTS_HEADER, ...extra].join("\t");
  writeFileAtomic(file, `${head}\n${all.map((r) => `${formatResultRow(r, extra)}\n`).join("")}`);
  return findings;
}

// ---- learnings.md

const BLOCK_START = /^<!-- harness:(entry|summary) /;
const ENTRY_MARKER = /^<!-- harness:entry run=(\S+) iteration=(\d+) -->/;

interface Block {
  marker: string | null;
  line: number;
  text: string;
}

function splitBlocks(text: string): Block[] {
  const blocks: Block[] = [{ marker: null, line: 1, text: "" }];
  text.split("\n").forEach((raw, i) => {
    if (BLOCK_START.test(raw)) blocks.push({ marker: raw.trim(), line: i + 1, text: "" });
    const current = blocks.at(-1) as Block;
    current.text += `${raw}\n`;
  });
  const last = blocks.at(-1) as Block;
  last.text = last.text.slice(0, -1);
  return blocks;
}

/** An entry in DESIGN §7's format that lost its tail (the file was cut inside it). */
function entryIncomplete(block: Block): boolean {
  if (!block.marker || !ENTRY_MARKER.test(block.marker)) return false;
  const body = block.text.split("\n").slice(1);
  const formatted = body.some((l) => l.startsWith("## Iteration ") && l.includes("val_score:"));
  return formatted && !body.some((l) => l.startsWith("**Needs from human:**"));
}

function reconcileLearnings(file: string, truth: Truth): Finding[] {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const findings: Finding[] = [];
  const blocks = splitBlocks(text);
  const torn = text !== "" && !text.endsWith("\n");
  const kept: Block[] = [];
  const seen = new Set<string>();
  blocks.forEach((block, i) => {
    const isLast = i === blocks.length - 1;
    if (block.marker && seen.has(block.marker)) {
      findings.push({ file, line: block.line, problem: `duplicate of ${block.marker}`, repair: "dropped" });
      return;
    }
    if (block.marker && ((isLast && torn) || entryIncomplete(block))) {
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
      problem: `no entry for ${entry.runId} iteration ${entry.iteration}, which the journal records finished`,
      repair: "rebuilt from the journal",
    });
    const at = kept.findIndex((b) => {
      const m = b.marker ? ENTRY_MARKER.exec(b.marker) : null;
      if (b.marker === `<!-- harness:summary run=${entry.runId} -->`) return true;
      return m !== null && m[1] === entry.runId && Number(m[2]) > entry.iteration;
    });
    const block: Block = { marker, line: 0, text: `${entry.text}\n` };
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
export async function reconcileWorkspace(opts: { paths: Paths; journal: Journal; repo: Repo }): Promise<Finding[]> {
  const truth = journalTruth(opts.journal);
  return [
    ...reconcileResults(opts.paths.results, truth),
    ...reconcileLearnings(opts.paths.learnings, truth),
    ...(await crossCheckGit(opts.repo, truth)),
  ];
}
