/**
 * The records the gate trusts: the split and the suite are pinned in the journal with their hashes; the
 * workspace files are views of them. A view that differs from its pinned version is reported and ignored
 * (and written back from the journal), never trusted: the agent under test or a stray edit cannot move the
 * gate by rewriting a file.
 */
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";
import { FileDamagedError } from "../errors.ts";
import { type Journal, sha256 } from "../journal/journal.ts";
import type { Logger } from "../log.ts";
import { parseSplit, parseSuite, type SplitFile, type Suite, writeFileAtomic } from "../workspace/files.ts";

export interface Pinned<T> {
  value: T;
  /** Set when the workspace file differed from the journal's copy and was replaced by it. */
  restored: string | null;
}

const serialise = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

function trusted<T>(
  journal: Journal,
  name: string,
  file: string,
  parse: (text: string, file: string) => T,
  log: Logger,
  fallback: () => T | null,
): Pinned<T> | null {
  const pin = journal.pinned(name);
  const onDisk = existsSync(file) ? readFileSync(file, "utf8") : null;
  if (!pin) {
    // First use (an experiment prepared before records were pinned): the file as it is now becomes the record.
    const value = onDisk === null ? fallback() : parse(onDisk, file);
    if (value === null) return null;
    journal.pin(name, serialise(value));
    return { value, restored: null };
  }
  const value = parse(pin.content, `${name} (journal)`);
  if (onDisk !== null && sha256(onDisk) === pin.sha256) return { value, restored: null };
  const what = onDisk === null ? "is missing" : "differs from the journal's pinned copy";
  const rel = relative(process.cwd(), file) || file;
  log.warn({ file: rel, pinned: pin.sha256.slice(0, 12) }, `${rel} ${what}: ignored, rewritten from the journal`);
  writeFileAtomic(file, pin.content);
  return { value, restored: `${name} ${what}; the journal's copy was used and the file rewritten from it` };
}

export function trustedSplit(journal: Journal, file: string, log: Logger): Pinned<SplitFile> {
  const r = trusted(journal, "split", file, parseSplit, log, () => null);
  if (!r) throw new FileDamagedError(file, null, "missing; run `auto-harness prepare` first");
  return r;
}

/** The suite as the journal holds it; `threshold` always comes from the config (the record keeps the value used). */
export function trustedSuite(journal: Journal, file: string, threshold: number, log: Logger): Pinned<Suite> {
  const r = trusted(journal, "suite", file, parseSuite, log, () => ({ tasks: [], threshold, last_results: {} }))!;
  return r;
}

/** Pins the suite and writes its view. */
export function saveSuite(journal: Journal, file: string, suite: Suite): void {
  const text = serialise(suite);
  journal.pin("suite", text);
  writeFileAtomic(file, text);
}

export function pinSplit(journal: Journal, file: string, split: SplitFile): void {
  const text = serialise(split);
  journal.pin("split", text);
  writeFileAtomic(file, text);
}

/** The baseline's and the run's best val_score, from the journal only (results.tsv is a view). */
export function journalBest(journal: Journal): number | null {
  const baseline = journal.pinned("baseline");
  let best: number | null = baseline ? (JSON.parse(baseline.content) as { valScore: number | null }).valScore : null;
  // Decisions scored before a rebaseline used the old scorer: not comparable.
  const since = journal.fact("rebaselined_at");
  for (const d of journal.gateDecisions()) {
    if (typeof since === "number" && d.createdAt < since) continue;
    // A manual `gate` is not a record until `record` commits it; the loop's accepted gates are.
    if (d.runId === "manual") continue;
    if (d.accept && d.valScore !== null && (best === null || d.valScore > best)) best = d.valScore;
  }
  return best;
}
