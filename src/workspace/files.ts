import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { FileDamagedError } from "../errors.ts";
import { formatScore } from "../scoring.ts";

/**
 * The workspace's file formats (DESIGN §7), compatible with the Python original.
 * Readers never repair: a damaged file gets an error naming the file and line, and nothing is overwritten.
 */

/** Write-then-rename, so a crash never leaves a half-written file behind. */
export function writeFileAtomic(file: string, content: string | Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

function readJsonText(text: string, file: string): { value: unknown; text: string } {
  try {
    return { value: JSON.parse(text), text };
  } catch (e) {
    const message = (e as Error).message;
    const pos = /position (\d+)/.exec(message);
    // A file cut short ends "unexpectedly": the damage is at its last line.
    const end = /end of JSON input/.test(message) ? text.trimEnd().split("\n").length : null;
    const line = pos ? text.slice(0, Number(pos[1])).split("\n").length : text.trim() === "" ? 1 : end;
    throw new FileDamagedError(file, line, `not valid JSON (${message}); restore it or delete it and re-run prepare`);
  }
}

function lineOfKey(text: string, key: string): number | null {
  const idx = text.indexOf(`"${key}"`);
  return idx < 0 ? null : text.slice(0, idx).split("\n").length;
}

function parseWith<T>(schema: z.ZodType<T>, file: string): T {
  return parseText(schema, readFileSync(file, "utf8"), file);
}

function parseText<T>(schema: z.ZodType<T>, raw: string, file: string): T {
  const { value, text } = readJsonText(raw, file);
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join(".");
  const firstKey = issue.path.find((p) => typeof p === "string") as string | undefined;
  throw new FileDamagedError(
    file,
    firstKey ? lineOfKey(text, firstKey) : null,
    `${path || "(top level)"}: ${issue.message}`,
  );
}

// ---- results.tsv

export const RESULTS_HEADER = ["iteration", "val_score", "commit", "evals_passed", "evals_total", "timestamp"] as const;

export interface ResultRow {
  iteration: number;
  valScore: number;
  commit: string;
  evalsPassed: number;
  evalsTotal: number;
  timestamp: string;
  /** Columns appended after `timestamp`, by header name. */
  extra?: Record<string, string>;
}

export function formatResultRow(row: ResultRow, extraColumns: string[] = []): string {
  return [
    String(row.iteration),
    formatScore(row.valScore),
    row.commit,
    String(row.evalsPassed),
    String(row.evalsTotal),
    row.timestamp,
    ...extraColumns.map((c) => row.extra?.[c] ?? ""),
  ].join("\t");
}

export function parseResults(text: string, file = "results.tsv"): { rows: ResultRow[]; extraColumns: string[] } {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0)
    throw new FileDamagedError(file, 1, `empty; the first line must be the header ${RESULTS_HEADER.join("\\t")}`);
  const header = (lines[0] as string).split("\t");
  if (RESULTS_HEADER.some((h, i) => header[i] !== h)) {
    throw new FileDamagedError(
      file,
      1,
      `header must start with ${RESULTS_HEADER.join("\\t")} (got ${header.join("\\t")})`,
    );
  }
  const extraColumns = header.slice(RESULTS_HEADER.length);
  const rows = lines.slice(1).map((line, i) => {
    const lineNo = i + 2;
    const cells = line.split("\t");
    if (cells.length < RESULTS_HEADER.length) {
      throw new FileDamagedError(
        file,
        lineNo,
        `expected ${RESULTS_HEADER.length} tab-separated columns, found ${cells.length}`,
      );
    }
    const [iteration, valScore, commit, passed, total, timestamp] = cells as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const int = (v: string, name: string) => {
      if (!/^\d+$/.test(v)) throw new FileDamagedError(file, lineNo, `${name} must be a whole number, got "${v}"`);
      return Number(v);
    };
    const score = Number(valScore);
    if (valScore.trim() === "" || !Number.isFinite(score)) {
      throw new FileDamagedError(file, lineNo, `val_score must be a number, got "${valScore}"`);
    }
    if (commit.trim() === "") throw new FileDamagedError(file, lineNo, "commit is empty");
    if (Number.isNaN(Date.parse(timestamp))) {
      throw new FileDamagedError(file, lineNo, `timestamp must be ISO-8601, got "${timestamp}"`);
    }
    const extra = Object.fromEntries(extraColumns.map((c, j) => [c, cells[RESULTS_HEADER.length + j] ?? ""]));
    return {
      iteration: int(iteration, "iteration"),
      valScore: score,
      commit,
      evalsPassed: int(passed, "evals_passed"),
      evalsTotal: int(total, "evals_total"),
      timestamp,
      ...(extraColumns.length ? { extra } : {}),
    };
  });
  return { rows, extraColumns };
}

export function readResults(file: string): ResultRow[] {
  if (!existsSync(file)) return [];
  return parseResults(readFileSync(file, "utf8"), file).rows;
}

/**
 * results.tsv numbers its rows as the original's record.py does: `iteration` is the row's position
 * (0 = the baseline, then 1, 2, … per accepted change), so record.py and our `record` agree on the next
 * row. The loop iteration that produced a row (rejected iterations leave gaps) is the appended column
 * `loop_iteration`, blank in rows the original wrote.
 */
export const LOOP_ITERATION_COLUMN = "loop_iteration";

/** Why the row's change was accepted, in one line (appended after `loop_iteration`). */
export const REASON_COLUMN = "reason";

export function initResults(file: string): boolean {
  if (existsSync(file)) return false;
  writeFileAtomic(file, `${[...RESULTS_HEADER, LOOP_ITERATION_COLUMN].join("\t")}\n`);
  return true;
}

/** The loop iteration of a row: its `loop_iteration` column, else (rows the original wrote) its row number. */
export function loopIterationOf(row: ResultRow): number {
  const raw = row.extra?.[LOOP_ITERATION_COLUMN];
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : row.iteration;
}

/** The number the next row gets: the count of data rows, as record.py's next_iteration(). */
export const nextRowNumber = (rows: ResultRow[]): number => rows.length;

/**
 * Appends a row numbered as record.py would number it. Idempotent across crashes: a row whose
 * `loop_iteration` equals the new row's is not written twice. A column the row carries that the
 * header lacks is appended to the header (old rows keep their cells; missing cells read as blank).
 * Returns the row number written, or null when the row was already there.
 */
export function appendResult(file: string, row: Omit<ResultRow, "iteration">): number | null {
  const text = existsSync(file) ? readFileSync(file, "utf8") : `${RESULTS_HEADER.join("\t")}\n`;
  const { rows, extraColumns } = parseResults(text, file);
  const loop = row.extra?.[LOOP_ITERATION_COLUMN];
  if (loop !== undefined && rows.some((r) => r.extra?.[LOOP_ITERATION_COLUMN] === loop)) return null;
  const columns = [...extraColumns, ...Object.keys(row.extra ?? {}).filter((c) => !extraColumns.includes(c))];
  const iteration = nextRowNumber(rows);
  let body = text.endsWith("\n") ? text : `${text}\n`;
  if (columns.length > extraColumns.length) {
    const newline = body.indexOf("\n");
    body = `${[...RESULTS_HEADER, ...columns].join("\t")}${body.slice(newline)}`;
  }
  writeFileAtomic(file, `${body}${formatResultRow({ ...row, iteration }, columns)}\n`);
  return iteration;
}

// ---- suite.json

const suiteSchema = z.object({
  tasks: z.array(z.string()),
  threshold: z.number().min(0).max(1),
  last_results: z.record(z.string(), z.number().nullable()).default({}),
  /** Per-task pass counts of the accepted agents (flake-aware suite). */
  rates: z.record(z.string(), z.object({ passes: z.number(), runs: z.number() })).optional(),
  /** Tasks that flipped without an edit: shown as flaky, never allowed to block a change. */
  quarantined: z.array(z.string()).optional(),
});
export type Suite = z.infer<typeof suiteSchema>;
export const parseSuite = (text: string, file = "suite.json"): Suite => parseText(suiteSchema, text, file);

export function readSuite(file: string, defaultThreshold = 0.8): Suite {
  if (!existsSync(file)) return { tasks: [], threshold: defaultThreshold, last_results: {} };
  return parseWith(suiteSchema, file);
}

export function writeSuite(file: string, suite: Suite): void {
  writeFileAtomic(file, `${JSON.stringify(suite, null, 2)}\n`);
}

// ---- train_results.json

// The original writes `{"split": null, "timestamp": null, "results": {}}` before its first benchmark run.
const trainResultsSchema = z.object({
  split: z.literal("train").nullable(),
  timestamp: z.string().nullable(),
  results: z.record(z.string(), z.number().min(0).max(1).nullable()),
});
export type TrainResults = z.infer<typeof trainResultsSchema>;

export function readTrainResults(file: string): TrainResults | null {
  if (!existsSync(file)) return null;
  return parseWith(trainResultsSchema, file);
}

export function writeTrainResults(file: string, results: Record<string, number | null>, now = new Date()): void {
  const body: TrainResults = { split: "train", timestamp: now.toISOString(), results };
  writeFileAtomic(file, `${JSON.stringify(body, null, 2)}\n`);
}

// ---- split.json

const splitSchema = z.object({
  seed: z.number(),
  created_at: z.string(),
  train: z.array(z.string()),
  test: z.array(z.string()),
  /** Tasks with an infrastructure error at baseline: in neither split. */
  excluded: z.array(z.string()).default([]),
  /** Sealed tasks: in no gate, scored once at the end of a run. */
  holdout: z.array(z.string()).default([]),
  counts: z.object({
    train: z.number(),
    test: z.number(),
    train_passing: z.number(),
    test_passing: z.number(),
    excluded: z.number(),
  }),
});
export type SplitFile = z.infer<typeof splitSchema>;

export const parseSplit = (text: string, file = "split.json"): SplitFile => parseText(splitSchema, text, file);

export function readSplit(file: string): SplitFile | null {
  if (!existsSync(file)) return null;
  return parseWith(splitSchema, file);
}

export function writeSplit(file: string, split: z.input<typeof splitSchema>): void {
  writeFileAtomic(file, `${JSON.stringify(split, null, 2)}\n`);
}

/** Damage a reader can name by line and a rewrite can repair. */
export interface ResultsDamage {
  line: number;
  problem: string;
  repair: string;
}

/**
 * Reads results.tsv leniently, each kept row with its 1-based line and raw text: a torn last line (no trailing
 * newline) and duplicated iterations are damage to repair; any other damage still stops with the file and line,
 * since nothing here knows the right content.
 */
export function scanResults(
  text: string,
  file: string,
): { header: string; rows: { line: number; raw: string; row: ResultRow }[]; damage: ResultsDamage[] } {
  const damage: ResultsDamage[] = [];
  const lines = text.split("\n");
  const torn = text !== "" && !text.endsWith("\n");
  if (lines.at(-1) === "") lines.pop();
  const header = lines[0] ?? "";
  // The header and every complete row must parse; parseResults names the file and line otherwise.
  const complete = torn ? lines.slice(0, -1) : lines;
  if (torn && lines.length === 1) throw new FileDamagedError(file, 1, "the header line is torn (no newline)");
  const { rows } = parseResults(`${complete.join("\n")}\n`, file);
  if (torn) {
    damage.push({
      line: lines.length,
      problem: `torn last line (no trailing newline): "${(lines.at(-1) ?? "").slice(0, 80)}"`,
      repair: "dropped",
    });
  }
  const seen = new Set<number>();
  const unique: { line: number; raw: string; row: ResultRow }[] = [];
  rows.forEach((row, i) => {
    const line = i + 2;
    const loop = loopIterationOf(row);
    if (seen.has(loop)) {
      damage.push({ line, problem: `duplicate row for iteration ${loop}`, repair: "dropped (the first row is kept)" });
      return;
    }
    seen.add(loop);
    unique.push({ line, raw: complete[i + 1] ?? "", row });
  });
  return { header, rows: unique, damage };
}
