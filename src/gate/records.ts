/**
 * The records the gate trusts: the split and the suite are pinned in the journal with their hashes; the
 * workspace files are views of them. A view that differs from its pinned version is reported and ignored
 * (and written back from the journal), never trusted: the agent under test or a stray edit cannot move the
 * gate by rewriting a file.
 */
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";
import { FileDamagedError } from "../errors.ts";
import { pinnedBaseline, sha256 } from "../journal/pins.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { bestValScore } from "../scoring.ts";
import {
  parseSplit,
  parseSuite,
  readResults,
  type SplitFile,
  type Suite,
  writeFileAtomic,
} from "../workspace/files.ts";

export interface Pinned<T> {
  value: T;
  /** Set when the workspace file differed from the journal's copy and was replaced by it. */
  restored: string | null;
}

type Pins = Pick<Stores, "pins">;

const serialise = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

function trusted<T>(
  { pins }: Pins,
  name: string,
  file: string,
  parse: (text: string, file: string) => T,
  log: Logger,
  fallback: () => T | null,
): Pinned<T> | null {
  const pin = pins.pinned(name);
  const onDisk = existsSync(file) ? readFileSync(file, "utf8") : null;
  if (!pin) {
    // First use (an experiment prepared before records were pinned): the file as it is now becomes the record.
    const value = onDisk === null ? fallback() : parse(onDisk, file);
    if (value === null) return null;
    pins.pin(name, serialise(value));
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

export function trustedSplit(journal: Pins, file: string, log: Logger): Pinned<SplitFile> {
  const r = trusted(journal, "split", file, parseSplit, log, () => null);
  if (!r) throw new FileDamagedError(file, null, "missing; run `auto-harness prepare` first");
  return r;
}

/** The suite as the journal holds it; `threshold` always comes from the config (the record keeps the value used). */
export function trustedSuite(journal: Pins, file: string, threshold: number, log: Logger): Pinned<Suite> {
  const r = trusted(journal, "suite", file, parseSuite, log, () => ({ tasks: [], threshold, last_results: {} }))!;
  return r;
}

/** Pins the suite and writes its view. */
export function saveSuite({ pins }: Pins, file: string, suite: Suite): void {
  const text = serialise(suite);
  pins.pin("suite", text);
  writeFileAtomic(file, text);
}

export function pinSplit({ pins }: Pins, file: string, split: SplitFile): void {
  const text = serialise(split);
  pins.pin("split", text);
  writeFileAtomic(file, text);
}

/**
 * First use of an experiment prepared before the baseline was pinned: the best row of its results.tsv becomes
 * the record (the incumbent scored it, as `adopt` pins an adopted experiment's), once.
 */
export function pinLegacyBaseline({ pins }: Pins, resultsFile: string): void {
  if (pins.pinned("baseline") || !existsSync(resultsFile)) return;
  const best = bestValScore(readResults(resultsFile));
  if (best !== null) pins.pin("baseline", JSON.stringify({ valScore: best }));
}

/**
 * The best val_score so far, from the journal only (results.tsv is a view), in the current generation (an
 * earlier one was scored by another scorer): the baseline's, every accepted decision of the loop, and the
 * best each run's machine recorded. The one source the gate, the daemon's starting point, `status`, the
 * report and `adopt` read.
 */
export function bestSoFar({ pins, gateRecords, runs }: Pick<Stores, "pins" | "gateRecords" | "runs">): number | null {
  const generation = runs.currentGeneration();
  const scores = [
    pinnedBaseline(pins)?.valScore ?? null,
    // A manual `gate` is not a record until `record` commits it; the loop's accepted gates are.
    ...gateRecords
      .generationDecisions(generation)
      .filter((d) => d.runId !== "manual" && d.accept)
      .map((d) => d.valScore),
    ...runs.runs(generation).map((r) => r.bestValScore),
  ].filter((v): v is number => v !== null);
  return scores.length === 0 ? null : Math.max(...scores);
}
