import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { agentText, readTraceResult, traceDirName, writeTrainTrace } from "../../../src/benchmark/traces.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ah-traces-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("train trace result.json", () => {
  it("reads back what the writer wrote, for ids that are not safe path segments too", async () => {
    const latest = join(dir, "latest");
    const baseline = join(dir, "baseline");
    for (const id of ["t1", "suite/../odd id"]) {
      await writeTrainTrace(latest, baseline, id, {
        trace: [],
        result: { reward: 0.25, duration_ms: 12, error: `refused ${id}` },
      });
      // The error string is the agent's own text: it is stored fenced as such.
      expect(readTraceResult(latest, id)).toEqual({
        found: true,
        result: { reward: 0.25, duration_ms: 12, error: agentText(`refused ${id}`) },
      });
    }
  });

  it("tells a missing file from one a command benchmark wrote in its own shape", () => {
    const latest = join(dir, "latest");
    expect(readTraceResult(latest, "t1")).toEqual({ found: false, why: "missing" });
    mkdirSync(join(latest, traceDirName("t2")), { recursive: true });
    writeFileSync(join(latest, "t2", "result.json"), JSON.stringify({ score: 1, message: "ok" }));
    expect(readTraceResult(latest, "t2")).toEqual({ found: false, why: "foreign" });
    mkdirSync(join(latest, "t3"), { recursive: true });
    writeFileSync(join(latest, "t3", "result.json"), "{not json");
    expect(readTraceResult(latest, "t3")).toEqual({ found: false, why: "foreign" });
  });

  it("keeps a task's first trace as its baseline, and completes a baseline a crash cut short", async () => {
    const latest = join(dir, "latest");
    const baseline = join(dir, "baseline");
    const files = (reward: number) => ({ trace: { reward }, result: { reward, duration_ms: 1, error: null } });
    await writeTrainTrace(latest, baseline, "t1", files(0));
    await writeTrainTrace(latest, baseline, "t1", files(1));
    expect(readTraceResult(latest, "t1")).toMatchObject({ result: { reward: 1 } });
    expect(readTraceResult(baseline, "t1")).toMatchObject({ result: { reward: 0 } });
    expect(JSON.parse(readFileSync(join(baseline, "t1", "trace.json"), "utf8"))).toEqual({ reward: 0 });
    // result.json is written last: a baseline without it was never finished, and is written again.
    unlinkSync(join(baseline, "t1", "result.json"));
    await writeTrainTrace(latest, baseline, "t1", files(1));
    expect(existsSync(join(baseline, "t1", "result.json"))).toBe(true);
    expect(JSON.parse(readFileSync(join(baseline, "t1", "trace.json"), "utf8"))).toEqual({ reward: 1 });
  });
});
