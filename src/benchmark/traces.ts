import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { cp, mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { redact } from "../secrets.ts";
import { writeFileAtomic } from "../workspace/files.ts";

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

/** Train only: writes latest/<id>/ and, the first time only, baseline/<id>/. */
export function writeTrainTrace(latestDir: string, baselineDir: string, taskId: string, files: TraceFiles): void {
  const dir = join(latestDir, traceDirName(taskId));
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, "trace.json"), redact(`${JSON.stringify(files.trace, null, 2)}\n`));
  writeFileAtomic(join(dir, "result.json"), redact(`${JSON.stringify(files.result, null, 2)}\n`));
  copyToBaselineOnce(latestDir, baselineDir, taskId);
}

/** The baseline trace is the reference for "what changed": it is never overwritten. */
export function copyToBaselineOnce(latestDir: string, baselineDir: string, taskId: string): void {
  const from = join(latestDir, traceDirName(taskId));
  const to = join(baselineDir, traceDirName(taskId));
  if (existsSync(to) || !existsSync(from)) return;
  mkdirSync(baselineDir, { recursive: true });
  cpSync(from, to, { recursive: true });
}

async function writeAtomicAsync(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

/**
 * The same as writeTrainTrace, off the event loop's critical path: with many tasks in flight,
 * synchronous file writes between tasks were the runner's main cost.
 */
export async function writeTrainTraceAsync(
  latestDir: string,
  baselineDir: string,
  taskId: string,
  files: TraceFiles,
): Promise<void> {
  const name = traceDirName(taskId);
  const dir = join(latestDir, name);
  await mkdir(dir, { recursive: true });
  await writeAtomicAsync(join(dir, "trace.json"), redact(`${JSON.stringify(files.trace, null, 2)}\n`));
  await writeAtomicAsync(join(dir, "result.json"), redact(`${JSON.stringify(files.result, null, 2)}\n`));
  const to = join(baselineDir, name);
  if (
    await stat(to).then(
      () => true,
      () => false,
    )
  )
    return;
  await mkdir(baselineDir, { recursive: true });
  await cp(dir, to, { recursive: true, errorOnExist: false, force: false });
}
