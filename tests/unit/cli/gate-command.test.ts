import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runGateCommand } from "../../../src/cli/gate.ts";
import type { CheckAgent } from "../../../src/gate/gate.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { createLogger } from "../../../src/log.ts";
import { writeSuite, writeTrainResults } from "../../../src/workspace/files.ts";
import { BASELINE_RESULTS, fakeRunner, makeRepo, type Table, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

const RESULTS = BASELINE_RESULTS;

async function gateCommand(r: TempRepo, tables: { train: Table; test: Table }, checkAgent?: CheckAgent) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runGateCommand({
    root: r.root,
    config: { threshold: 0.8 },
    log: createLogger({ stdout: false }).log,
    runner: fakeRunner(tables),
    repo: openRepo(r.root),
    checkAgent: checkAgent ?? (async () => ({ ok: true })),
    runId: null,
    iteration: null,
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
  });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

function experiment(name: string): TempRepo {
  const r = makeRepo(name);
  r.write("workspace/results.tsv", RESULTS);
  r.write("agent/agent.ts", "export const prompt = 'edited';\n");
  writeSuite(join(r.root, "workspace/suite.json"), {
    tasks: ["s1", "s2", "s3", "s4", "s5"],
    threshold: 0.8,
    last_results: {},
  });
  writeTrainResults(join(r.root, "workspace/train_results.json"), { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1, f1: 0 });
  return r;
}

describe("gate command", () => {
  it("prints every step and exits 0 on pass", async () => {
    repo = experiment("cmd-pass");
    const res = await gateCommand(repo, {
      train: { s1: 1, s2: 1, s3: 1, s4: 1, s5: 0, f1: 1 },
      test: { t1: 0.6, t2: 0.7 },
    });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe(
      [
        "Step 1: file guard ... PASS (only agent/agent.ts changed)",
        "Step 2: load check ... PASS",
        "Step 3: regression suite ... PASS (4/5 passed = 80.0%, threshold 80.0%)",
        "Step 4: full test split ... PASS (val_score 0.6500 vs best 0.6000)",
        "Step 5: suite promotion ... 1 of 1 previously failing task(s) promoted: f1",
        "GATE PASSED: val_score 0.6500",
        "",
      ].join("\n"),
    );
    expect(res.stderr).toBe("");
  });

  it("reports both measured steps and exits 1 when the test split regresses", async () => {
    repo = experiment("cmd-fail");
    const res = await gateCommand(repo, {
      train: { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1 },
      test: { t1: 0.5, t2: null },
    });
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("Step 3: regression suite ... PASS (5/5 passed = 100.0%, threshold 80.0%)\n");
    expect(res.stdout).toContain(
      "Step 4: full test split ... FAIL (val_score 0.5000 vs best 0.6000, 1 infra error(s) excluded)\n",
    );
    expect(res.stdout).not.toContain("Step 5");
    expect(res.stdout).toMatch(/GATE FAILED:\n {2}- full test split: val_score 0\.5000 < best 0\.6000\n$/);
  });

  it("exits 1 on a load failure and prints the compiler's message", async () => {
    repo = experiment("cmd-load");
    const res = await gateCommand(repo, { train: {}, test: { t: 1 } }, async () => ({
      ok: false,
      message: "error TS2304: Cannot find name 'x'.",
    }));
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("Step 2: load check ... FAIL\nerror TS2304: Cannot find name 'x'.\n");
    expect(res.stdout).not.toContain("Step 3");
  });

  it("exits 1 on a file guard violation and names the file", async () => {
    repo = experiment("cmd-guard");
    repo.write("src/tools.ts", "tampered\n");
    const res = await gateCommand(repo, { train: {}, test: { t: 1 } });
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("Step 1: file guard ... FAIL (other files changed: src/tools.ts)\n");
  });

  it("exits 2 on an infrastructure failure", async () => {
    repo = experiment("cmd-infra");
    const res = await gateCommand(repo, { train: { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1 }, test: { t1: null } });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /^GATE ERROR \(INFRA_FAILURE\): full test split: all 1 task\(s\) ended in an infrastructure error/,
    );
  });

  it("exits 2 on a damaged results.tsv, naming file and line, leaving it untouched", async () => {
    repo = experiment("cmd-damaged");
    const file = join(repo.root, "workspace/results.tsv");
    const damaged = `${RESULTS}1\tabc\tdeadbee\t1\t1\t2026-01-01T00:00:00.000Z\n`;
    writeFileSync(file, damaged);
    const res = await gateCommand(repo, { train: {}, test: { t: 1 } });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`GATE ERROR (FILE_DAMAGED): ${file}:3: val_score must be a number, got "abc"\n`);
    expect(readFileSync(file, "utf8")).toBe(damaged);
  });
});
