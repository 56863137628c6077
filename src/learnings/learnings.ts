import { existsSync, readFileSync } from "node:fs";
import type { LearnInput, LearnOutput, SummarizeInput } from "../contracts.ts";
import { bestValScore, round4 } from "../scoring.ts";
import { redact } from "../secrets.ts";
import { acceptanceReason } from "../verdicts.ts";
import { readResults, writeFileAtomic } from "../workspace/files.ts";
import { AGENT_FILE, paths } from "../workspace/paths.ts";

/**
 * workspace/learnings.md: one entry per finished iteration in the format of DESIGN §7, each behind a
 * hidden marker so a resumed step never appends twice, and a closing summary per run.
 */

export interface LearningEntry {
  /** Null for entries without a marker (written by hand or by the Python original). */
  runId: string | null;
  iteration: number;
  /** Best val_score before the iteration; null when none was recorded. */
  before: number | null;
  /** The gate's val_score; null when nothing was measured (no change, file guard, load check). */
  after: number | null;
  passed: boolean;
  whatChanged: string;
  pattern: string;
  worked: string;
  needsFromHuman: string;
}

export const LEARNINGS_HEADER = "# Learnings\n";

export const entryMarker = (runId: string, iteration: number): string =>
  `<!-- harness:entry run=${runId} iteration=${iteration} -->`;
export const summaryMarker = (runId: string): string => `<!-- harness:summary run=${runId} -->`;

const NOT_MEASURED = "n/a";
const score2 = (x: number | null): string => (x === null ? NOT_MEASURED : x.toFixed(2));

/** Fields are one line each, so an entry always parses back. */
const oneLine = (text: string | null | undefined, fallback: string): string => {
  const line = (text ?? "").replace(/\s+/g, " ").trim();
  return line === "" ? fallback : line;
};

export function formatEntry(entry: LearningEntry & { runId: string }): string {
  return `${entryMarker(entry.runId, entry.iteration)}\n${entryText(entry)}`;
}

/** An entry as DESIGN §7 shows it, without its marker. */
function entryText(entry: LearningEntry): string {
  return [
    `## Iteration ${entry.iteration} — val_score: ${score2(entry.before)} → ${score2(entry.after)} ${entry.passed ? "✓" : "✗"}`,
    "",
    `**What changed:** ${oneLine(entry.whatChanged, "nothing")}`,
    "",
    `**Pattern confirmed:** ${oneLine(entry.pattern, "none")}`,
    "",
    `**What worked / didn't work:** ${oneLine(entry.worked, "nothing to report")}`,
    "",
    `**Needs from human:** ${oneLine(entry.needsFromHuman, "none")}`,
    "",
  ].join("\n");
}

/** The learn step's entry, built from what the iteration's earlier steps returned. */
export function entryFromIteration(input: LearnInput): LearningEntry & { runId: string } {
  const { edit, gate, record } = input;
  const base = {
    runId: input.runId,
    iteration: input.iteration,
    before: input.bestBefore,
    pattern: oneLine(edit?.pattern, "none"),
    needsFromHuman: oneLine(edit?.needsFromHuman, "none"),
  };
  if (!edit?.changed) {
    const tried = edit?.hypothesis
      ? `Not tested: no edit was made for the hypothesis "${oneLine(edit.hypothesis, "")}".`
      : "";
    return {
      ...base,
      after: null,
      passed: false,
      whatChanged: `No change to ${AGENT_FILE}.`,
      worked: tried || "Nothing was tried: the coding agent made no edit.",
    };
  }
  const whatChanged = oneLine(edit.changeSummary || edit.commitMessage, "An edit without a summary.");
  if (!gate) {
    return {
      ...base,
      after: null,
      passed: false,
      whatChanged,
      worked: "Not gated: the iteration ended before the gate.",
    };
  }
  const passed = record?.accepted ?? gate.passed;
  const suite = `suite ${gate.suitePassed}/${gate.suiteTotal} passed`;
  let worked: string;
  if (passed) {
    const promoted = gate.promoted.length > 0 ? `; ${gate.promoted.length} task(s) promoted into the suite` : "";
    worked = `Worked: ${acceptanceReason(gate, input.bestBefore)}${promoted}. Hypothesis: ${oneLine(edit.hypothesis, "none given")}`;
  } else {
    const measured = gate.valScore === null ? "" : ` (val_score ${gate.valScore.toFixed(4)}, ${suite})`;
    worked = `Didn't work: ${gate.reasons.join("; ") || "rejected"}${measured}. Hypothesis: ${oneLine(edit.hypothesis, "none given")}`;
  }
  return { ...base, after: gate.valScore, passed, whatChanged, worked };
}

function readText(file: string): string {
  return existsSync(file) ? readFileSync(file, "utf8") : "";
}

function appendBlock(file: string, marker: string, block: string): boolean {
  const text = readText(file);
  if (text.includes(marker)) return false;
  const head =
    text === ""
      ? `${LEARNINGS_HEADER}\n`
      : text.endsWith("\n\n")
        ? text
        : text.endsWith("\n")
          ? `${text}\n`
          : `${text}\n\n`;
  writeFileAtomic(file, `${head}${redact(block)}`);
  return true;
}

/**
 * Appends a note the loop wants the morning's reader to see between entries (a changed angle), once: its
 * marker line goes first. Not an entry: the entry parser and the reconciler read past it.
 */
export function appendNote(file: string, marker: string, text: string): boolean {
  return appendBlock(file, marker, `${marker}\n${text.endsWith("\n") ? text : `${text}\n`}`);
}

/** Appends the entry unless its marker is already there; returns whether it wrote. */
export function appendEntry(file: string, entry: LearningEntry & { runId: string }): boolean {
  return appendBlock(file, entryMarker(entry.runId, entry.iteration), formatEntry(entry));
}

/** The learn step: one entry per finished iteration, written at most once. */
export function learnIteration(root: string, input: LearnInput): LearnOutput {
  return { written: appendEntry(paths(root).learnings, entryFromIteration(input)) };
}

const HEADING = /^## Iteration (\d+) — val_score: (\S+) → (\S+) (✓|✗)\s*$/;
const MARKER = /^<!-- harness:entry run=(\S+) iteration=(\d+) -->\s*$/;
const FIELDS: [RegExp, "whatChanged" | "pattern" | "worked" | "needsFromHuman"][] = [
  [/^\*\*What changed:\*\*\s*(.*)$/, "whatChanged"],
  [/^\*\*Pattern confirmed:\*\*\s*(.*)$/, "pattern"],
  [/^\*\*What worked \/ didn't work:\*\*\s*(.*)$/, "worked"],
  [/^\*\*Needs from human:\*\*\s*(.*)$/, "needsFromHuman"],
];

const parseScore = (s: string): number | null => {
  const n = Number(s);
  return s === NOT_MEASURED || !Number.isFinite(n) ? null : n;
};

/** Reads the iteration entries back, in file order; the summary and other sections are skipped. */
export function parseEntries(text: string): LearningEntry[] {
  const entries: LearningEntry[] = [];
  let current: LearningEntry | null = null;
  let pendingRun: string | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const marker = MARKER.exec(line);
    if (marker) {
      pendingRun = marker[1]!;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      current = {
        runId: pendingRun,
        iteration: Number(heading[1]),
        before: parseScore(heading[2]!),
        after: parseScore(heading[3]!),
        passed: heading[4] === "✓",
        whatChanged: "",
        pattern: "",
        worked: "",
        needsFromHuman: "",
      };
      entries.push(current);
      pendingRun = null;
      continue;
    }
    if (line.startsWith("#")) {
      current = null;
      pendingRun = null;
      continue;
    }
    if (!current) continue;
    for (const [re, key] of FIELDS) {
      const m = re.exec(line);
      if (m) current[key] = m[1]!.trim();
    }
  }
  return entries;
}

const BLOCK_START = /^<!-- harness:(entry|summary) /;
const ENTRY_BLOCK = /^<!-- harness:entry run=(\S+) iteration=(\d+) -->/;
const SUMMARY_BLOCK = /^<!-- harness:summary run=(\S+) -->/;

/** A stretch of learnings.md from one marker line to the next (the first has none: the file's head). */
export interface LearningsBlock {
  /** The marker line, trimmed, or null for the text before the first marker. */
  marker: string | null;
  /** 1-based line of the marker (1 for the head). */
  line: number;
  /** The raw lines, each with its newline (the file's last line as found). */
  text: string;
  /** An entry in DESIGN §7's format that lost its tail (the file was cut inside it). */
  incomplete: boolean;
  /** The run and iteration an entry marker names; null for the head and summaries. */
  entry: { runId: string; iteration: number } | null;
  /** The run a closing summary's marker names; null for the head and entries. */
  summary?: { runId: string } | null;
}

/** Splits learnings.md into marker blocks with their lines, and says whether the last line is torn. */
export function scanLearnings(text: string): { blocks: LearningsBlock[]; torn: boolean } {
  const blocks: LearningsBlock[] = [{ marker: null, line: 1, text: "", incomplete: false, entry: null }];
  text.split("\n").forEach((raw, i) => {
    if (BLOCK_START.test(raw)) {
      const marker = raw.trim();
      const m = ENTRY_BLOCK.exec(marker);
      const entry = m ? { runId: m[1]!, iteration: Number(m[2]) } : null;
      const sm = SUMMARY_BLOCK.exec(marker);
      blocks.push({ marker, line: i + 1, text: "", incomplete: false, entry, summary: sm ? { runId: sm[1]! } : null });
    }
    const current = blocks.at(-1) as LearningsBlock;
    current.text += `${raw}\n`;
  });
  const last = blocks.at(-1) as LearningsBlock;
  last.text = last.text.slice(0, -1);
  for (const block of blocks) {
    if (!block.entry) continue;
    const body = block.text.split("\n").slice(1);
    const formatted = body.some((l) => l.startsWith("## Iteration ") && l.includes("val_score:"));
    block.incomplete = formatted && !body.some((l) => l.startsWith("**Needs from human:**"));
  }
  return { blocks, torn: text !== "" && !text.endsWith("\n") };
}

export function readEntries(file: string): LearningEntry[] {
  return parseEntries(readText(file));
}

export function recentEntries(file: string, n: number): LearningEntry[] {
  return n <= 0 ? [] : readEntries(file).slice(-n);
}

/** The latest rejected edits (no-change iterations left out): hypotheses the coding agent should not retry blindly. */
export function recentRejected(file: string, n: number): LearningEntry[] {
  return n <= 0 ? [] : rejectedOf(readEntries(file)).slice(-n);
}

const rejectedOf = (entries: LearningEntry[]): LearningEntry[] =>
  entries.filter((e) => !e.passed && !e.whatChanged.startsWith("No change"));

/**
 * The coding agent's history: the "What changed" of recently rejected edits, so hypotheses are not retried
 * blindly, and the last few entries.
 */
export function learningsDigest(file: string, lastEntries = 3, maxChars = 4000): string {
  const entries = readEntries(file);
  const rejected = rejectedOf(entries)
    .slice(-10)
    .map((e) => e.whatChanged);
  const recent = entries
    .slice(-lastEntries)
    .map((e) => entryText(e).trim())
    .join("\n\n");
  const parts = [];
  if (rejected.length > 0) parts.push(`Recently rejected changes:\n${rejected.map((r) => `- ${r}`).join("\n")}`);
  if (recent) parts.push(`Last learnings entries:\n${recent}`);
  const text = parts.join("\n\n");
  return text.length > maxChars ? `${text.slice(0, maxChars)}\n[learnings cut; view workspace/learnings.md]` : text;
}

// ---- closing summary

export interface SummaryFacts extends SummarizeInput {
  /** The sealed holdout's result in words, or why there is none; shown first. */
  holdout?: string | null;
  /** Short sha of the best row in results.tsv, or "baseline". */
  bestCommit: string | null;
  baselineScore: number | null;
  /** This run's entries (for patterns and requests to the operator). */
  entries: LearningEntry[];
}

const IGNORED_PATTERNS = new Set(["none", "n/a", ""]);

export function frequentPatterns(entries: LearningEntry[], limit = 3): { pattern: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const e of entries) {
    const key = e.pattern.trim();
    if (IGNORED_PATTERNS.has(key.toLowerCase())) continue;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()]
    .map(([pattern, count]) => ({ pattern, count }))
    .sort((a, b) => b.count - a.count || a.pattern.localeCompare(b.pattern))
    .slice(0, limit);
}

export function formatSummary(facts: SummaryFacts): string {
  const best =
    facts.bestValScore === null
      ? "none measured"
      : facts.bestCommit && facts.bestCommit !== "baseline"
        ? `${facts.bestValScore.toFixed(4)} (commit ${facts.bestCommit})`
        : `${facts.bestValScore.toFixed(4)} (baseline; no accepted change beat it)`;
  const baseline = facts.baselineScore === null ? "" : `, baseline ${facts.baselineScore.toFixed(4)}`;
  const patterns = frequentPatterns(facts.entries);
  const look: string[] = [];
  if (facts.accepted > 0 && facts.bestCommit && facts.bestCommit !== "baseline") {
    look.push(`the best change: \`git show ${facts.bestCommit} -- ${AGENT_FILE}\``);
  }
  if (facts.accepted === 0) {
    look.push("no change passed the gate: review PROGRAM.md and the rejected hypotheses above");
  }
  const seen = new Set<string>();
  for (const e of [...facts.entries].reverse()) {
    const need = e.needsFromHuman.trim();
    if (IGNORED_PATTERNS.has(need.toLowerCase()) || seen.has(need)) continue;
    seen.add(need);
    look.push(`iteration ${e.iteration} asked: ${need}`);
    if (seen.size >= 5) break;
  }
  if (look.length === 0) look.push("nothing in particular");
  return [
    summaryMarker(facts.runId),
    `## Run summary — ${facts.runId}`,
    "",
    ...(facts.holdout ? [`**Sealed holdout:** ${facts.holdout}`, ""] : []),
    `**Stopped because:** ${oneLine(facts.stopReason, "unknown")}`,
    "",
    `**Best val_score:** ${best}${baseline}`,
    "",
    `**Iterations:** ${facts.iterations} — ${facts.accepted} accepted, ${facts.rejected} rejected`,
    "",
    `**Most frequent patterns:** ${patterns.length === 0 ? "none named" : patterns.map((p) => `${p.pattern} (${p.count})`).join(", ")}`,
    "",
    "**Look at:**",
    "",
    ...look.map((l) => `- ${l}`),
    "",
  ].join("\n");
}

/** Appends the run's closing summary unless its marker is already there. */
export function appendSummary(file: string, facts: SummaryFacts): boolean {
  return appendBlock(file, summaryMarker(facts.runId), formatSummary(facts));
}

/** A run's closing summary, from the facts results.tsv and learnings.md hold now. */
export function closingSummary(root: string, input: SummarizeInput, holdout: string | null = null): string {
  const p = paths(root);
  const rows = readResults(p.results);
  const bestScore = input.bestValScore ?? bestValScore(rows);
  // The newest row at the best score is the agent as it stands.
  const bestRow = bestScore === null ? undefined : rows.filter((r) => round4(r.valScore) === round4(bestScore)).at(-1);
  const all = readEntries(p.learnings);
  const mine = all.filter((e) => e.runId === input.runId);
  return formatSummary({
    ...input,
    holdout,
    bestValScore: bestScore,
    bestCommit: bestRow?.commit ?? null,
    baselineScore: rows.find((r) => r.iteration === 0)?.valScore ?? null,
    entries: mine.length > 0 ? mine : all,
  });
}

/** Appends a run's closing summary, as `closingSummary` made it, unless its marker is already there. */
export function appendClosingSummary(root: string, runId: string, text: string): boolean {
  return appendBlock(paths(root).learnings, summaryMarker(runId), text);
}

/** The summarize step: gathers the facts from results.tsv and learnings.md, then appends the summary once. */
export function writeClosingSummary(root: string, input: SummarizeInput, holdout: string | null = null): boolean {
  return appendClosingSummary(root, input.runId, closingSummary(root, input, holdout));
}
