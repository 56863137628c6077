/** The project's typed errors. Handlers test `instanceof` or `code`, never message text. */
import { accessSync, constants, existsSync } from "node:fs";
import { dirname } from "node:path";

export type ErrorCode =
  | "CONFIG_INVALID"
  | "USAGE"
  | "WORKSPACE_LOCKED"
  | "RUN_STATE"
  | "NOT_AVAILABLE"
  | "FILE_DAMAGED"
  | "GIT_STATE"
  | "JOURNAL_CORRUPT"
  | "STORAGE_FAILURE"
  | "STEP_FAILED"
  | "INFRA_FAILURE"
  | "AGENT_LOAD_FAILED"
  | "LLM_UNAVAILABLE"
  | "LLM_REJECTED"
  | "BUDGET_EXHAUSTED"
  | "ABORTED"
  | "PREFLIGHT_FAILED"
  | "BENCHMARK_BUG";

/**
 * What the loop does when an error ends a step, decided by its code alone:
 * - "resumable": the world is not ready (outage, infrastructure, shutdown); pause, and `resume` continues there;
 * - "budget": a stop rule; the run ends cleanly with its closing summary;
 * - "fatal": the operator must fix something (a key, a damaged file, the config); trying again cannot help;
 * - "retryable": try the step again now, up to the configured attempts.
 */
export type ErrorHandling = "resumable" | "budget" | "fatal" | "retryable";

const HANDLING: Record<ErrorCode, ErrorHandling> = {
  ABORTED: "resumable",
  LLM_UNAVAILABLE: "resumable",
  INFRA_FAILURE: "resumable",
  // A full disk, a read-only remount, an I/O error: the run pauses and continues once the disk is back.
  STORAGE_FAILURE: "resumable",
  BUDGET_EXHAUSTED: "budget",
  LLM_REJECTED: "fatal",
  FILE_DAMAGED: "fatal",
  JOURNAL_CORRUPT: "fatal",
  CONFIG_INVALID: "fatal",
  USAGE: "fatal",
  RUN_STATE: "fatal",
  PREFLIGHT_FAILED: "fatal",
  // The scorer throws on the incumbent's answer too: the operator fixes the benchmark, then resumes.
  BENCHMARK_BUG: "fatal",
  WORKSPACE_LOCKED: "retryable",
  NOT_AVAILABLE: "retryable",
  GIT_STATE: "retryable",
  STEP_FAILED: "retryable",
  AGENT_LOAD_FAILED: "retryable",
};

/** The loop's handling of an error; an error without one of our codes is unexpected, so the step is tried again. */
export function errorHandling(error: unknown): ErrorHandling {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && Object.hasOwn(HANDLING, code) ? HANDLING[code as ErrorCode] : "retryable";
}

export interface HarnessErrorOptions {
  cause?: unknown;
  /** Exit code the CLI uses when this error ends a command. */
  exitCode?: number;
}

export class HarnessError extends Error {
  override name = "HarnessError";
  readonly code: ErrorCode;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: HarnessErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Bad usage or configuration: the operator must fix something; exit 2, nothing written. */
export class UserError extends HarnessError {
  override name = "UserError";
  constructor(code: ErrorCode, message: string, options: Omit<HarnessErrorOptions, "exitCode"> = {}) {
    super(code, message, { ...options, exitCode: 2 });
  }
}

export class ConfigError extends UserError {
  override name = "ConfigError";
  readonly problems: string[];
  constructor(problems: string[], file: string) {
    super("CONFIG_INVALID", `${file}: ${problems.length} problem(s)\n  ${problems.join("\n  ")}`);
    this.problems = problems;
  }
}

/** A file the harness owns was damaged (hand-edited, truncated); names file and line. */
export class FileDamagedError extends HarnessError {
  override name = "FileDamagedError";
  constructor(
    readonly file: string,
    readonly line: number | null,
    detail: string,
  ) {
    super("FILE_DAMAGED", `${file}${line === null ? "" : `:${line}`}: ${detail}`, { exitCode: 2 });
  }
}

/** Work was stopped on purpose (shutdown); the step re-runs on resume. */
export class AbortedError extends HarnessError {
  override name = "AbortedError";
  constructor(message = "aborted", cause?: unknown) {
    super("ABORTED", message, { cause });
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Exit code of a run paused by something that passes (an outage, a full disk): pm2 starts it again later. */
export const EXIT_RESUMABLE = 75;

const DISK_FULL = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
const READ_ONLY = new Set(["EROFS"]);
const IO_ERROR = new Set(["EIO"]);

/**
 * Journal damage, a full disk, a read-only file system or an I/O error, raised as a raw errno or SQLite
 * error wherever it happens, turned into a typed error that says what to do. Null for anything else.
 * `journalFile` names the journal in a SQLite error's message (SQLite does not say which file).
 */
export function classifyFault(
  error: unknown,
  journalFile = "workspace/journal.sqlite",
  /** What continues once the cause is fixed: the run's resume, or the command again (prepare). */
  next = "then `auto-harness resume` (under pm2 the paused run resumes by itself)",
): HarnessError | null {
  if (error instanceof HarnessError || !(error instanceof Error)) return null;
  const code = mkdirCause(error as NodeJS.ErrnoException);
  if (typeof code !== "string") return null;
  // Extended SQLite codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED …) count as their primary one.
  const is = (primary: string) => code === primary || code.startsWith(`${primary}_`);
  const what = code.startsWith("SQLITE_") ? `the journal ${journalFile}` : "a file";
  const storage = (detail: string, fix: string) =>
    new HarnessError("STORAGE_FAILURE", `${detail} writing ${what} (${code}: ${error.message}); ${fix}`, {
      cause: error,
      exitCode: EXIT_RESUMABLE,
    });
  const resume = next;
  if (DISK_FULL.has(code) || is("SQLITE_FULL")) {
    return storage("disk full", `free space on the experiment's disk and in the temp dir, ${resume}`);
  }
  if (READ_ONLY.has(code) || is("SQLITE_READONLY")) {
    return storage("read-only file system", `make the experiment directory writable again, ${resume}`);
  }
  if (IO_ERROR.has(code) || is("SQLITE_IOERR")) {
    return storage("I/O error", `check the disk (dmesg, fsck) and free space, ${resume}`);
  }
  if (is("SQLITE_CORRUPT") || is("SQLITE_NOTADB")) return journalCorrupt(journalFile, error);
  return null;
}

/**
 * Node's recursive mkdir reports ENOENT where the kernel said EROFS or EACCES: the nearest directory that
 * exists says which (access(2) answers EROFS on a read-only mount).
 */
function mkdirCause(error: NodeJS.ErrnoException): string | undefined {
  if (error.code !== "ENOENT" || error.syscall !== "mkdir" || !error.path) return error.code;
  let dir = dirname(error.path);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return error.code;
  } catch (probe) {
    return (probe as NodeJS.ErrnoException).code ?? error.code;
  }
}

/** JOURNAL_CORRUPT with the file, what SQLite said and the recovery steps; exit 2, nothing more written. */
export function journalCorrupt(journalFile: string, cause: unknown, what = "is damaged"): HarnessError {
  return new HarnessError(
    "JOURNAL_CORRUPT",
    `journal ${journalFile} ${what} (SQLite: ${errorMessage(cause)}). To recover: stop the daemon; copy ${journalFile} ` +
      `and its -wal and -shm files aside; rebuild it with \`sqlite3 ${journalFile} .recover | sqlite3 recovered.sqlite\` ` +
      "and move recovered.sqlite into its place (or restore the journal from a backup); then `auto-harness resume`",
    { cause, exitCode: 2 },
  );
}
