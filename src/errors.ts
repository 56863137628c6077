/** The project's typed errors. Handlers test `instanceof` or `code`, never message text. */

export type ErrorCode =
  | "CONFIG_INVALID"
  | "USAGE"
  | "WORKSPACE_LOCKED"
  | "RUN_STATE"
  | "NOT_AVAILABLE"
  | "FILE_DAMAGED"
  | "GIT_STATE"
  | "JOURNAL_CORRUPT"
  | "STEP_FAILED"
  | "INFRA_FAILURE"
  | "AGENT_LOAD_FAILED"
  | "LLM_UNAVAILABLE"
  | "LLM_REJECTED"
  | "BUDGET_EXHAUSTED"
  | "ABORTED";

export interface HarnessErrorOptions {
  cause?: unknown;
  /** The same call may succeed later (transient outage, rate limit). */
  retryable?: boolean;
  /** Exit code the CLI uses when this error ends a command. */
  exitCode?: number;
}

export class HarnessError extends Error {
  override name = "HarnessError";
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: HarnessErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
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
    super("ABORTED", message, { cause, retryable: true });
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
