import { describe, expect, it } from "vitest";
import {
  AbortedError,
  ConfigError,
  type ErrorCode,
  type ErrorHandling,
  errorHandling,
  FileDamagedError,
  HarnessError,
} from "../src/errors.ts";

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
