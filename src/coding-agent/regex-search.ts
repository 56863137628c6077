/**
 * Regular-expression search with a hard time limit. JavaScript's RegExp backtracks without bound: the
 * pattern `([a-z]+\s?)+$` over an ordinary trace held the daemon's event loop for more than five minutes.
 * The match runs in a worker thread that is terminated at the deadline (termination interrupts a running
 * match), so the daemon keeps answering and the coding model gets an error it can act on. A worker keeps
 * the JavaScript syntax the model knows and needs no native build (re2 compiles from source here, like
 * better-sqlite3; re2-wasm differs in syntax and is unmaintained).
 */
import { Worker } from "node:worker_threads";

export interface SearchFile {
  file: string;
  text: string;
}

export type RegexSearchResult =
  | { ok: true; matches: string[]; more: boolean }
  | { ok: false; reason: "invalid" | "timeout"; message: string };

// Longest part of a line a pattern is tried on, and shown of it.
const LINE_LIMIT = 10_000;
const SHOWN = 300;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { pattern, files, maxMatches, lineLimit, shown } = workerData;
const re = new RegExp(pattern);
const matches = [];
let more = false;
outer: for (const { file, text } of files) {
  const lines = text.split("\\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    re.lastIndex = 0;
    if (!re.test(line.slice(0, lineLimit))) continue;
    if (matches.length >= maxMatches) { more = true; break outer; }
    matches.push(file + ":" + (i + 1) + ": " + (line.length > shown ? line.slice(0, shown) + "…" : line));
  }
}
parentPort.postMessage({ matches, more });
`;

/** Compiles the pattern here first, so a syntax error is reported without starting a worker. */
export function regexProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Searches the files' lines for the pattern; gives up after `timeoutMs`, however the pattern behaves. */
export function searchWithDeadline(
  pattern: string,
  files: SearchFile[],
  options: { maxMatches: number; timeoutMs: number },
): Promise<RegexSearchResult> {
  const problem = regexProblem(pattern);
  if (problem !== null) return Promise.resolve({ ok: false, reason: "invalid", message: problem });
  return new Promise((resolve) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { pattern, files, maxMatches: options.maxMatches, lineLimit: LINE_LIMIT, shown: SHOWN },
    });
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (result: RegexSearchResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(result);
    };
    // The limit counts from when the worker runs: starting a thread on a loaded machine is not the pattern's fault.
    worker.once("online", () => {
      if (settled) return;
      timer = setTimeout(
        () =>
          finish({
            ok: false,
            reason: "timeout",
            message: `the regular expression ran longer than ${options.timeoutMs / 1000}s over the traces and was stopped (nested quantifiers such as (a+)+ backtrack without end); simplify it, or search for a substring`,
          }),
        options.timeoutMs,
      );
    });
    worker.once("message", (m: { matches: string[]; more: boolean }) => finish({ ok: true, ...m }));
    worker.once("error", (e) => finish({ ok: false, reason: "invalid", message: e.message }));
    worker.once("exit", () => finish({ ok: false, reason: "invalid", message: "the search stopped unexpectedly" }));
  });
}
