import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { z } from "zod";
import { redact } from "../secrets.ts";

/** A task id as one safe path segment (ids come from benchmark files, not from us). */
export function traceDirName(taskId: string): string {
  const safe = taskId.replace(/[^A-Za-z0-9._-]/g, "_");
  return safe === "." || safe === ".." || safe === "" ? `_${safe}` : safe;
}

/** A train task's result.json, as the runner writes it. */
export interface TraceResult {
  reward: number | null;
  duration_ms: number;
  error: string | null;
}

// Lenient on what only describes the run, so files from before a field existed still read.
const traceResultSchema = z.object({
  reward: z.number().nullable(),
  duration_ms: z.number().optional(),
  error: z.string().nullable().default(null),
});

export interface TraceFiles {
  trace: unknown;
  result: TraceResult;
}

export type TraceResultRead =
  | { found: true; result: z.infer<typeof traceResultSchema> }
  | { found: false; why: "missing" | "foreign" };

/**
 * Reads latest/<id>/result.json back. "foreign" is a file not in the runner's format: a command benchmark
 * writes its own traces into that folder, in whatever shape its tool has.
 */
export function readTraceResult(latestDir: string, taskId: string): TraceResultRead {
  const file = join(latestDir, traceDirName(taskId), "result.json");
  if (!existsSync(file)) return { found: false, why: "missing" };
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return { found: false, why: "foreign" };
  }
  const parsed = traceResultSchema.safeParse(value);
  return parsed.success ? { found: true, result: parsed.data } : { found: false, why: "foreign" };
}

/**
 * Most of one model request or reply, or one tool's input or output, that a trace keeps while its task runs and
 * on disk: more than a reader of traces uses (the coding agent pages tool results of 20 000 characters), and six
 * 10 MB replies kept whole took the daemon to 1.6 GB.
 */
export const TRACE_BODY_MAX_CHARS = 256 * 1024;

/** A body as a trace keeps it: whole within the cap, else its head and how long it was. */
export function keptBody(value: unknown, maxChars = TRACE_BODY_MAX_CHARS): unknown {
  if (value === null || value === undefined) return value;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined || text.length <= maxChars) return value;
  // A copy, not a slice: V8 keeps a slice's whole parent string alive, the very 10 MB this cap lets go of.
  const head = Buffer.from(text.slice(0, maxChars), "utf8").toString("utf8");
  return { truncated: true, chars: text.length, head };
}

/**
 * Text the agent under test chose (its notes, answer, error and stderr) reaches the coding model through the
 * traces: it is capped and fenced as the agent's, so it reads as evidence, never as the harness speaking.
 */
export const AGENT_TEXT_OPEN = "⟦agent⟧ ";
export const AGENT_TEXT_CLOSE = " ⟦/agent⟧";
export const AGENT_TEXT_MAX = 2000;

/** The value as one capped string fenced as the agent's; a fence inside it is removed so it cannot close early. */
export function agentText(value: unknown, max = AGENT_TEXT_MAX): string {
  const raw = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  const text = raw.split(AGENT_TEXT_OPEN.trim()).join("").split(AGENT_TEXT_CLOSE.trim()).join("").trim();
  const capped = text.length > max ? `${text.slice(0, max)}… [${text.length - max} more characters cut]` : text;
  return `${AGENT_TEXT_OPEN}${capped}${AGENT_TEXT_CLOSE}`;
}

/** The trace files with every agent-chosen text capped and fenced (notes, answer, error). */
export function sealAgentText(files: TraceFiles): TraceFiles {
  const result = { ...files.result, error: files.result.error === null ? null : agentText(files.result.error) };
  const t = files.trace;
  if (t === null || typeof t !== "object" || Array.isArray(t)) return { trace: t, result };
  const trace: Record<string, unknown> = { ...(t as Record<string, unknown>) };
  if (trace.answer !== undefined && trace.answer !== null) trace.answer = agentText(trace.answer);
  if (typeof trace.error === "string") trace.error = agentText(trace.error);
  if (Array.isArray(trace.events)) {
    trace.events = trace.events.map((e: unknown) => {
      if (e === null || typeof e !== "object" || (e as { kind?: unknown }).kind !== "note") return e;
      const note = { ...(e as Record<string, unknown>) };
      note.message = agentText(note.message);
      if (note.data !== undefined) note.data = agentText(note.data);
      return note;
    });
  }
  return { trace, result };
}

const traceJson = (files: TraceFiles) => redact(`${JSON.stringify(files.trace, null, 2)}\n`);
const resultJson = (files: TraceFiles) => redact(`${JSON.stringify(files.result, null, 2)}\n`);

/** The baseline trace is the reference for "what changed": it is never overwritten. */
export function copyToBaselineOnce(latestDir: string, baselineDir: string, taskId: string): void {
  const from = join(latestDir, traceDirName(taskId));
  const to = join(baselineDir, traceDirName(taskId));
  if (existsSync(to) || !existsSync(from)) return;
  mkdirSync(baselineDir, { recursive: true });
  cpSync(from, to, { recursive: true });
}

/**
 * Train only: writes latest/<id>/ and, the first time only, baseline/<id>/. The file system calls (four
 * files per task on a first run) run in a worker thread and the harness only serialises: with sixteen
 * tasks finishing together, those calls were the largest cost between one task and the next.
 */
export async function writeTrainTrace(
  latestDir: string,
  baselineDir: string,
  taskId: string,
  files: TraceFiles,
): Promise<void> {
  const name = traceDirName(taskId);
  const sealed = sealAgentText(files);
  await traceWriter().write({
    latest: join(latestDir, name),
    baseline: join(baselineDir, name),
    trace: traceJson(sealed),
    result: resultJson(sealed),
  });
}

// The first trace of a task is its baseline: the same two files from the same text, result.json last,
// so a baseline cut short by a crash is written again rather than kept half.
const WRITER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
const path = require("node:path");
const atomic = (file, content) => {
  const tmp = file + "." + process.pid + ".tmp";
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
};
parentPort.on("message", ({ id, latest, baseline, trace, result }) => {
  try {
    fs.mkdirSync(latest, { recursive: true });
    atomic(path.join(latest, "trace.json"), trace);
    atomic(path.join(latest, "result.json"), result);
    if (!fs.existsSync(path.join(baseline, "result.json"))) {
      fs.mkdirSync(baseline, { recursive: true });
      atomic(path.join(baseline, "trace.json"), trace);
      atomic(path.join(baseline, "result.json"), result);
    }
    parentPort.postMessage({ id, error: null });
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;

interface TraceWrite {
  latest: string;
  baseline: string;
  trace: string;
  result: string;
}

let writer: { write(w: TraceWrite): Promise<void> } | null = null;

/** One writer thread per harness process, started on first use; it never keeps the process alive. */
function traceWriter(): { write(w: TraceWrite): Promise<void> } {
  if (writer) return writer;
  const worker = new Worker(WRITER_SOURCE, { eval: true });
  const waiting = new Map<number, { resolve(): void; reject(e: Error): void }>();
  let next = 0;
  worker.unref();
  const stop = (error: Error) => {
    if (writer === self) writer = null;
    for (const w of waiting.values()) w.reject(error);
    waiting.clear();
  };
  worker.on("message", (m: { id: number; error: string | null }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    if (m.error === null) w?.resolve();
    else w?.reject(new Error(m.error));
  });
  worker.on("error", stop);
  worker.on("exit", (code) => stop(new Error(`the trace writer stopped (code ${code})`)));
  const self = {
    write: (w: TraceWrite) =>
      new Promise<void>((resolve, reject) => {
        const id = ++next;
        waiting.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage({ id, ...w });
      }),
  };
  writer = self;
  return self;
}
