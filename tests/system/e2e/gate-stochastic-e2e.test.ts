/**
 * The bayes gate end to end, through the CLI, on the stochastic benchmark (tasks with known pass rates):
 * a neutral edit is rejected, a real fix accepted, and a gate killed mid-way resumes without running a
 * finished task again.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { openExperiment, openJournalAndLog } from "../../../src/cli/experiment.ts";
import { createRunnerFor } from "../../../src/cli/services.ts";
import { systemClock } from "../../../src/clock.ts";
import { scoreHoldout } from "../../../src/gate/holdout.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { setEnv } from "../../helpers/env.ts";
import { REPO_ROOT, sandboxLineHere } from "../../helpers/experiment.ts";
import { resultTimes } from "../../helpers/result-times.ts";
import { tempDir } from "../../helpers/temp.ts";

const BENCH = join(REPO_ROOT, "benchmarks", "stochastic");
const CLI = join(REPO_ROOT, "bin", "auto-harness.js");
const run = promisify(execFile);
// The agent never calls a model; the local test server answers the start-up check.
let server: TestLlmServer;
let ENV: NodeJS.ProcessEnv = {};

async function cli(dir: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args, "--dir", dir], {
      env: ENV,
      encoding: "utf8",
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function agent(skills: string[], variant: string): string {
  return `const SKILLS: string[] = ${JSON.stringify(skills)};\nconst VARIANT = ${JSON.stringify(variant)};\n\nexport default {\n  run: async () => ({ skills: SKILLS, variant: VARIANT }),\n};\n`;
}

let prepared = "";

/** A copy of one prepared experiment (prepare runs the 80-task baseline once per file). */
function experiment(dir: string): string {
  cpSync(prepared, dir, { recursive: true });
  return dir;
}

async function prepare(dir: string): Promise<string> {
  mkdirSync(join(dir, "agent"), { recursive: true });
  copyFileSync(join(BENCH, "agent.ts"), join(dir, "agent", "agent.ts"));
  writeFileSync(
    join(dir, "experiment_config.yaml"),
    [
      "benchmark: local",
      `local: { tasks: ${JSON.stringify(join(BENCH, "tasks.jsonl"))}, scorer: ${JSON.stringify(join(BENCH, "scorer.ts"))} }`,
      "max_concurrency: 8",
      "seed: 7",
      // This file tests the bayes rule (no longer the default); gate-paired-e2e tests the paired one.
      "gate_rule: bayes",
      sandboxLineHere(),
    ].join("\n"),
  );
  const prep = await cli(dir, "prepare");
  expect(prep.code, prep.stderr).toBe(0);
  return dir;
}

const journalOf = (dir: string) => Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });

describe("the bayes gate on the stochastic benchmark, through the CLI", () => {
  beforeAll(async () => {
    server = await startTestLlmServer({ responder: () => textReply("ok") });
    ENV = { ...process.env, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key" };
    prepared = await prepare(mkdtempSync(join(tmpdir(), "ah-gate-prepared-")));
  }, 300_000);
  afterAll(async () => {
    rmSync(prepared, { recursive: true, force: true });
    await server?.close();
  });

  it("seals a holdout, rejects a neutral edit, accepts a real fix, and --explain says why in ids and numbers", {
    timeout: 400_000,
  }, async () => {
    const dir = experiment(tempDir("ah-gate-e2e-"));
    const split = JSON.parse(readFileSync(join(dir, "workspace", "split.json"), "utf8"));
    expect(split.holdout).toHaveLength(16);
    for (const id of split.holdout) {
      expect(split.train).not.toContain(id);
      expect(split.test).not.toContain(id);
    }

    writeFileSync(join(dir, "agent", "agent.ts"), agent([], "neutral-1"));
    const neutral = await cli(dir, "gate");
    expect(neutral.code, neutral.stdout + neutral.stderr).toBe(1);
    expect(neutral.stdout).toMatch(/held-out split \(bayes\) \.\.\. FAIL/);

    writeFileSync(join(dir, "agent", "agent.ts"), agent(["alpha"], "fix-1"));
    const fix = await cli(dir, "gate");
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
    expect(fix.stdout).toMatch(/GATE PASSED: P\(improvement\) 0\.\d{3}/);

    const j = journalOf(dir);
    try {
      const decisions = j.gateRecords.gateDecisions("manual");
      expect(decisions.map((d) => [d.iteration, d.accept])).toEqual([
        [1, false],
        [2, true],
      ]);
      // The held-out runs never touched a sealed task.
      const holdout = new Set<string>(split.holdout);
      for (const d of decisions)
        for (const r of j.gateRecords.gateRuns("manual", d.iteration)) expect(holdout.has(r.taskId)).toBe(false);
    } finally {
      j.close();
    }

    const explain = await cli(dir, "gate", "--explain", "2");
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/accepted/);
    expect(explain.stdout).toMatch(/order seed \d+/);
    expect(explain.stdout).toMatch(/P\(improvement\)/);
  });

  it("a gate SIGKILLed mid-way resumes from its journal without running a finished task again", {
    timeout: 400_000,
  }, async () => {
    const dir = experiment(tempDir("ah-gate-kill-"));
    writeFileSync(join(dir, "agent", "agent.ts"), agent(["alpha"], "fix-kill"));
    const journalFile = join(dir, "workspace", "journal.sqlite");
    const child: ChildProcess = spawn(process.execPath, [CLI, "gate", "--dir", dir], {
      env: { ...ENV },
      stdio: "ignore",
    });
    const exited = new Promise((res) => child.on("exit", res));
    // Kill it once the first look's tasks are journaled.
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const j = Journal.open(journalFile, { readonly: true });
      try {
        if (j.gateRecords.gateRuns("manual", 1).length > 0) break;
      } finally {
        j.close();
      }
    }
    child.kill("SIGKILL");
    await exited;

    let killedAt: number;
    {
      const j = journalOf(dir);
      try {
        killedAt = j.gateRecords.gateRuns("manual", 1).length;
        expect(killedAt).toBeGreaterThan(0);
        expect(j.gateRecords.gateDecision("manual", 1)?.status).toBe("running");
      } finally {
        j.close();
      }
    }
    const before = resultTimes(dir);

    const resumed = await cli(dir, "gate");
    expect([0, 1]).toContain(resumed.code);
    const j = journalOf(dir);
    try {
      // Resumed, not started again: the same iteration, decided, its journaled results kept in order.
      expect(j.gateRecords.gateDecisions("manual").map((d) => [d.iteration, d.status])).toEqual([[1, "decided"]]);
      expect(j.gateRecords.gateRuns("manual", 1).length).toBeGreaterThanOrEqual(killedAt);
      const after = resultTimes(dir);
      // Every task result written before the kill is untouched: none of those tasks ran again.
      for (const [k, c] of before) expect(after.get(k)).toBe(c);
      expect(after.size).toBeGreaterThan(before.size);
    } finally {
      j.close();
    }
  });

  it("scores the sealed holdout once, paired with the baseline, and journals only the numbers", {
    timeout: 400_000,
  }, async () => {
    const dir = experiment(tempDir("ah-gate-holdout-"));
    writeFileSync(join(dir, "agent", "agent.ts"), agent(["alpha", "beta", "delta"], "final"));
    const restoreEnv = setEnv({ ANTHROPIC_BASE_URL: ENV.ANTHROPIC_BASE_URL!, ANTHROPIC_API_KEY: "test-key" });
    const exp = openExperiment({ dir });
    const opened = openJournalAndLog(exp, { stdout: false });
    try {
      const split = JSON.parse(readFileSync(join(dir, "workspace", "split.json"), "utf8"));
      const runner = createRunnerFor(exp, opened, systemClock);
      const o = { journal: opened.journal, runner, runId: "run-h", split, trials: 1, log: opened.log };
      const first = await scoreHoldout(o);
      expect(first).toMatchObject({ runId: "run-h", tasks: 16 });
      expect(first!.low).toBeLessThanOrEqual(first!.diff);
      expect(first!.high).toBeGreaterThanOrEqual(first!.diff);
      // Three families at 95% instead of 15-50%: the final agent is clearly ahead of the baseline.
      expect(first!.final).toBeGreaterThan(first!.baseline);
      const pinned = opened.journal.pins.pinned("holdout:run-h")!.content;
      for (const id of split.holdout) expect(pinned).not.toContain(id);
      // Once per run: a second call (a resumed summarize) reads the journal and runs nothing.
      const before = resultTimes(dir);
      expect(await scoreHoldout(o)).toEqual(first);
      expect(resultTimes(dir)).toEqual(before);
    } finally {
      opened.journal.close();
      restoreEnv();
    }
  });
});
