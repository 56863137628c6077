import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  AbortedError,
  ConfigError,
  classifyFault,
  type ErrorCode,
  type ErrorHandling,
  errorHandling,
  FileDamagedError,
  HarnessError,
} from "../../../src/errors.ts";
import { tempDir } from "../../helpers/temp.ts";

describe("errorHandling: what the loop does when an error ends a step", () => {
  const table: [ErrorCode, ErrorHandling][] = [
    ["ABORTED", "resumable"],
    ["LLM_UNAVAILABLE", "resumable"],
    ["INFRA_FAILURE", "resumable"],
    ["BUDGET_EXHAUSTED", "budget"],
    ["LLM_REJECTED", "fatal"],
    ["FILE_DAMAGED", "fatal"],
    ["JOURNAL_CORRUPT", "fatal"],
    ["CONFIG_INVALID", "fatal"],
    ["USAGE", "fatal"],
    ["RUN_STATE", "fatal"],
    ["BENCHMARK_BUG", "fatal"],
    ["WORKSPACE_LOCKED", "retryable"],
    ["NOT_AVAILABLE", "retryable"],
    ["GIT_STATE", "retryable"],
    ["STEP_FAILED", "retryable"],
    ["AGENT_LOAD_FAILED", "retryable"],
  ];
  it.each(table)("%s is %s", (code, handling) => {
    expect(errorHandling(new HarnessError(code, "x"))).toBe(handling);
  });

  it("the subclasses carry their code's handling", () => {
    expect(errorHandling(new AbortedError())).toBe("resumable");
    expect(errorHandling(new FileDamagedError("f", 1, "bad"))).toBe("fatal");
    expect(errorHandling(new ConfigError(["a: b"], "c.yaml"))).toBe("fatal");
  });

  it.each([
    ["a plain Error", new Error("boom")],
    ["a foreign code", Object.assign(new Error("x"), { code: "ECONNRESET" })],
    ["an inherited name as code", { code: "toString" }],
    ["a string", "boom"],
    ["null", null],
  ])("%s is unexpected, so the step is tried again", (_name, error) => {
    expect(errorHandling(error)).toBe("retryable");
  });
});

describe("classifyFault: errors the environment raises, typed where they happen", () => {
  const raw = (code: string, message = "boom") => Object.assign(new Error(message), { code });
  it.each([
    ["ENOSPC", "STORAGE_FAILURE", 75, /disk full/],
    ["EDQUOT", "STORAGE_FAILURE", 75, /disk full/],
    ["SQLITE_FULL", "STORAGE_FAILURE", 75, /disk full writing the journal j\.sqlite/],
    ["EROFS", "STORAGE_FAILURE", 75, /read-only file system/],
    ["SQLITE_READONLY_DBMOVED", "STORAGE_FAILURE", 75, /read-only file system/],
    ["EIO", "STORAGE_FAILURE", 75, /I\/O error/],
    ["SQLITE_IOERR_WRITE", "STORAGE_FAILURE", 75, /I\/O error/],
    ["SQLITE_CORRUPT", "JOURNAL_CORRUPT", 2, /journal j\.sqlite is damaged \(SQLite: boom\)\. To recover/],
    ["SQLITE_NOTADB", "JOURNAL_CORRUPT", 2, /\.recover/],
  ])("%s is %s, exit %i, with the fix", (code, typed, exit, message) => {
    const error = classifyFault(raw(code), "j.sqlite");
    expect(error?.code).toBe(typed);
    expect(error?.exitCode).toBe(exit);
    expect(error?.message).toMatch(message);
    expect(errorHandling(error)).toBe(typed === "STORAGE_FAILURE" ? "resumable" : "fatal");
  });
  it("leaves everything else alone", () => {
    expect(classifyFault(raw("ENOENT"))).toBeNull();
    expect(classifyFault(raw("SQLITE_BUSY"))).toBeNull();
    expect(classifyFault(new Error("no code"))).toBeNull();
    expect(classifyFault(new HarnessError("GIT_STATE", "x"))).toBeNull();
  });
});

describe("classifyFault: a recursive mkdir on a read-only mount", () => {
  it("is a read-only file system (exit 75), not the ENOENT Node reports for it", () => {
    if (process.getuid?.() !== 0) {
      process.stderr.write("SKIP: a read-only bind mount needs root: the recursive-mkdir case is skipped\n");
      return;
    }
    const dir = tempDir("ro-");
    execFileSync("mount", ["--bind", dir, dir]);
    try {
      execFileSync("mount", ["-o", "remount,bind,ro", dir]);
      let raised: unknown;
      try {
        mkdirSync(join(dir, "incumbent", "agent"), { recursive: true });
      } catch (error) {
        raised = error;
      }
      expect((raised as NodeJS.ErrnoException).code).toBe("ENOENT");
      const fault = classifyFault(raised);
      expect(fault?.code).toBe("STORAGE_FAILURE");
      expect(fault?.exitCode).toBe(75);
      expect(fault?.message).toMatch(/^read-only file system .*EROFS/);
      // A plain missing parent stays what it is.
      const missing = new Error("gone");
      Object.assign(missing, { code: "ENOENT", syscall: "mkdir", path: join(tempDir("rw-"), "a", "b") });
      expect(classifyFault(missing)).toBeNull();
    } finally {
      execFileSync("umount", [dir]);
    }
  });
});
