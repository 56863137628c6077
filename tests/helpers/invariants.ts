import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { Journal } from "../../src/journal/journal.ts";
import { loopIterationOf, readResults } from "../../src/workspace/files.ts";

const git = (dir: string, ...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" });

/**
 * DESIGN §4's invariants after a finished run: one commit and one results row per accepted iteration, one
 * learnings entry per finished iteration, agent.ts equal to the last accepted commit, integrity ok, every
 * journaled reply paid once, no step left started. Returns the accepted iterations.
 */
export function expectInvariants(dir: string, iterations: number, label = ""): number[] {
  const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
  try {
    expect(journal.integrityCheck(), label).toBe("ok");
    const run = journal.latestRun()!;
    expect(run.status, label).toBe("done");
    expect(
      journal.steps(run.id).filter((s) => s.status === "started"),
      label,
    ).toEqual([]);
    const finished = journal.iterations(run.id);
    expect(
      finished.map((i) => i.iteration),
      label,
    ).toEqual(Array.from({ length: iterations }, (_, i) => i + 1));
    const accepted = finished.filter((i) => i.outcome === "accepted").map((i) => i.iteration);

    const rows = readResults(join(dir, "workspace", "results.tsv"));
    expect(rows.map(loopIterationOf), label).toEqual([0, ...accepted]);
    // Numbered by position, as record.py numbers rows.
    expect(
      rows.map((r) => r.iteration),
      label,
    ).toEqual(rows.map((_, i) => i));
    const log = git(dir, "log", "--format=%h%x00%(trailers:key=Harness-Run,valueonly)%x01");
    const trailers = log
      .split("\x01")
      .map((r) => r.trim().split("\0"))
      .filter(([, t]) => t?.trim())
      .map(([sha, t]) => ({ sha: sha!, trailer: t!.trim() }));
    expect(trailers.map((t) => t.trailer).sort(), label).toEqual(accepted.map((i) => `${run.id}/${i}`).sort());
    for (const row of rows.slice(1)) {
      expect(trailers.find((t) => t.trailer === `${run.id}/${loopIterationOf(row)}`)?.sha, label).toBe(row.commit);
    }

    const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
    for (let i = 1; i <= iterations; i++) {
      expect(
        learnings.split(`<!-- harness:entry run=${run.id} iteration=${i} -->`).length - 1,
        `${label} entry ${i}`,
      ).toBe(1);
    }
    expect(learnings.split(`<!-- harness:summary run=${run.id} -->`).length - 1, label).toBe(1);

    expect(readFileSync(join(dir, "agent", "agent.ts"), "utf8"), label).toBe(git(dir, "show", "HEAD:agent/agent.ts"));
    expect(git(dir, "status", "--porcelain"), label).toBe("");

    // Nothing paid twice: each step's reply was bought once and reused after a crash.
    const calls = journal.llmCalls(run.id);
    const keys = calls.map((c) => `${c.stepKey}|${c.promptHash}`);
    expect(new Set(keys).size, label).toBe(keys.length);
    return accepted;
  } finally {
    journal.close();
  }
}
