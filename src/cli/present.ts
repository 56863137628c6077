import { classifyFault, HarnessError } from "../errors.ts";

export interface Writable {
  write(chunk: string): unknown;
}

/** How a command reports an error that ended it: the line's label and the exit code it maps to. */
export interface ErrorStyle {
  label: string;
  /** Prints the error's stable code beside the label (commands scripts parse, as the original's). */
  showCode: boolean;
  exitCode: (error: unknown) => number;
}

/** The top level: a user error prints one clear line with its exit code; anything else is a bug, exit 1. */
export const TOP_LEVEL: ErrorStyle = {
  label: "auto-harness",
  showCode: false,
  exitCode: (e) => (e instanceof HarnessError ? e.exitCode : 1),
};

/** The one place an error that ends a command is printed. Returns the exit code. */
export function presentError(raw: unknown, stderr: Writable, style: ErrorStyle = TOP_LEVEL): number {
  // A raw disk-full, read-only, I/O or journal-damage error is the environment's doing, not a bug.
  const error = classifyFault(raw) ?? raw;
  if (error instanceof HarnessError) {
    stderr.write(`${style.label}${style.showCode ? ` (${error.code})` : ""}: ${error.message}\n`);
  } else {
    stderr.write(`${style.label}: internal error, this is a bug: ${(error as Error)?.stack ?? String(error)}\n`);
  }
  return style.exitCode(error);
}

/** Runs a command, presenting whatever error ends it in the command's style. */
export async function presented(stderr: Writable, style: ErrorStyle, command: () => Promise<number>): Promise<number> {
  try {
    return await command();
  } catch (error) {
    return presentError(error, stderr, style);
  }
}
