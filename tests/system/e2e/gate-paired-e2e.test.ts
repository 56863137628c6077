/**
 * The paired rule (the default) end to end, through the CLI, on the stochastic benchmarks with known truth
 * (binary, and graded: 0, 0.5 or 1 per run): neutral and train-only edits rejected, a graded fix accepted
 * with its interval, a net-negative trade rejected, a bad-hour baseline no way in for a neutral edit, the
 * recorded val_score the held-out first pass, a SIGKILLed gate resuming to the same decision, and a sealed
 * holdout too small to tell the night's claim saying so. The agents run unsealed here (`sandbox: none`):
 * the seal has its own tests, and these gates run hundreds of tasks.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { openExperiment, openJournalAndLog } from "../../../src/cli/experiment.ts";
import { createRunnerFor } from "../../../src/cli/services.ts";
import { systemClock } from "../../../src/clock.ts";
import { holdoutLine, scoreHoldout } from "../../../src/gate/holdout.ts";
import { firstPassMean } from "../../../src/gate/round.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { setEnv } from "../../helpers/env.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { resultTimes } from "../../helpers/result-times.ts";
import { stochasticAgent } from "../../helpers/stochastic.ts";
import { tempDir } from "../../helpers/temp.ts";

const BENCH = join(REPO_ROOT, "benchmarks");
const CLI = join(REPO_ROOT, "bin", "auto-harness.js");
const run = promisify(execFile);
let server: TestLlmServer;
let ENV: NodeJS.ProcessEnv = {};

async function cli(dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args, "--dir", dir], {
      env: { ...ENV, ...env },
      encoding: "utf8",
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function prepare(scorer: "stochastic" | "stochastic-graded", env: NodeJS.ProcessEnv = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `ah-paired-${scorer}-`));
  mkdirSync(join(dir, "agent"), { recursive: true });
  writeFileSync(join(dir, "agent", "agent.ts"), stochasticAgent({ variant: "v0" }));
  const tasks = JSON.stringify(join(BENCH, "stochastic", "tasks.jsonl"));
  const scorerFile = JSON.stringify(join(BENCH, scorer, "scorer.ts"));
  writeFileSync(
    join(dir, "experiment_config.yaml"),
    `benchmark: local\nlocal: { tasks: ${tasks}, scorer: ${scorerFile} }\nmax_concurrency: 8\nseed: 7\nsandbox: none\n`,
  );
  const prep = await cli(dir, ["prepare"], env);
  expect(prep.code, prep.stderr).toBe(0);
  return dir;
}

const prepared: Record<string, string> = {};
const copyOf = (which: string) => {
  const dir = tempDir(`ah-paired-${which}-`);
  cpSync(prepared[which]!, dir, { recursive: true });
  return dir;
};
const setAgent = (dir: string, source: string) => writeFileSync(join(dir, "agent", "agent.ts"), source);
const journalOf = (dir: string) => Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });

function split(dir: string): { train: string[]; test: string[]; holdout: string[] } {
  return JSON.parse(readFileSync(join(dir, "workspace", "split.json"), "utf8"));
}

/** Passes the families of the train tasks it names by their question only: no help on held-out tasks. */
function trainOnlyAgent(dir: string): string {
  const questions = readFileSync(join(BENCH, "stochastic", "tasks.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; input: { question: string } })
    .filter((t) => split(dir).train.includes(t.id))
    .map((t) => t.input.question);
  return `const SEEN = new Set(${JSON.stringify(questions)});\nexport default {\n  run: async (task: { input: { question: string } }) =>\n    SEEN.has(task.input.question)\n      ? { skills: ["alpha", "beta", "delta"], variant: "train-only" }\n      : { skills: [], variant: "train-only" },\n};\n`;
}

const FIX = stochasticAgent({ skills: ["alpha", "delta"], variant: "fix-1" });

describe("the paired gate on stochastic benchmarks, through the CLI", () => {
  beforeAll(async () => {
    server = await startTestLlmServer({ responder: () => textReply("ok") });
    ENV = { ...process.env, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key" };
    delete ENV.STOCHASTIC_SHIFT;
    prepared.binary = await prepare("stochastic");
    prepared.graded = await prepare("stochastic-graded");
  }, 300_000);
  afterAll(async () => {
    for (const dir of Object.values(prepared)) rmSync(dir, { recursive: true, force: true });
    await server?.close();
  });

  it("rejects a neutral edit and a train-only edit (it passes the train tasks it names, nothing held out)", {
    timeout: 300_000,
  }, async () => {
    const dir = copyOf("binary");
    setAgent(dir, stochasticAgent({ variant: "neutral-1" }));
    const neutral = await cli(dir, ["gate"]);
    expect(neutral.code, neutral.stdout + neutral.stderr).toBe(1);
    expect(neutral.stdout).toMatch(/held-out split \(paired\) \.\.\. FAIL/);

    setAgent(dir, trainOnlyAgent(dir));
    const trainOnly = await cli(dir, ["gate"]);
    expect(trainOnly.code, trainOnly.stdout + trainOnly.stderr).toBe(1);
    expect(trainOnly.stdout).toMatch(/held-out split \(paired\) \.\.\. FAIL/);
  });

  it("accepts a graded fix with its interval; the recorded val_score is the held-out first pass; --explain shows the fitted rewards", {
    timeout: 300_000,
  }, async () => {
    const dir = copyOf("graded");
    setAgent(dir, FIX);
    const fix = await cli(dir, ["gate"]);
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
    expect(fix.stdout).toMatch(
      /GATE PASSED: c1 accepted, val_score (\d\.\d{4}), paired first pass \+\d\.\d{4} over \d+ task\(s\), 95% interval [-+]\d\.\d{4} to \+\d\.\d{4}/,
    );
    const j = journalOf(dir);
    try {
      const d = j.gateRecords.gateDecision("manual", 1)!;
      const runs = j.gateRecords.gateRuns("manual", 1);
      expect(d.accept).toBe(true);
      expect(d.valScore).toBe(firstPassMean(runs, "c1"));
      expect(fix.stdout).toContain(`val_score ${d.valScore!.toFixed(4)}`);
    } finally {
      j.close();
    }
    const explain = await cli(dir, ["gate", "--explain", "1"]);
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/Rewards: rewards on 3 levels \(0, 0\.5, 1\)/);
    expect(explain.stdout).toMatch(/The night's error budget: 0\.1 expected false acceptances/);
  });

  it("rejects a net-negative trade: a family fixed, a larger one broken", { timeout: 300_000 }, async () => {
    const dir = copyOf("graded");
    setAgent(dir, stochasticAgent({ skills: ["alpha"], breaks: ["gamma"], variant: "trade-1" }));
    const trade = await cli(dir, ["gate"]);
    expect(trade.code, trade.stdout + trade.stderr).toBe(1);
  });

  it("a baseline measured in a bad hour does not let a neutral edit through", { timeout: 300_000 }, async () => {
    const dir = await prepare("stochastic", { STOCHASTIC_SHIFT: "0.3" });
    try {
      setAgent(dir, stochasticAgent({ variant: "neutral-bad-hour" }));
      const neutral = await cli(dir, ["gate"]);
      expect(neutral.code, neutral.stdout + neutral.stderr).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a gate SIGKILLed mid-race resumes to the decision an uninterrupted gate makes, running no finished task again", {
    timeout: 300_000,
  }, async () => {
    const killed = copyOf("graded");
    const whole = copyOf("graded");
    for (const dir of [killed, whole]) setAgent(dir, FIX);
    const child: ChildProcess = spawn(process.execPath, [CLI, "gate", "--dir", killed], { env: ENV, stdio: "ignore" });
    const exited = new Promise((res) => child.on("exit", res));
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const j = journalOf(killed);
      try {
        if (j.gateRecords.gateRuns("manual", 1).length >= 10) break;
      } finally {
        j.close();
      }
    }
    child.kill("SIGKILL");
    await exited;
    const before = resultTimes(killed);
    const resumed = await cli(killed, ["gate"]);
    const uninterrupted = await cli(whole, ["gate"]);
    expect(resumed.code).toBe(uninterrupted.code);
    const decided = (dir: string) => {
      const j = journalOf(dir);
      try {
        const d = j.gateRecords.gateDecisions("manual");
        return d.map((x) => [x.iteration, x.status, x.accept, x.valScore, x.testRuns]);
      } finally {
        j.close();
      }
    };
    expect(decided(killed)).toEqual(decided(whole));
    const after = resultTimes(killed);
    for (const [k, c] of before) expect(after.get(k)).toBe(c);
  });

  it("the sealed holdout says when it is too small to tell the gain the night claims", {
    timeout: 300_000,
  }, async () => {
    const dir = copyOf("binary");
    setAgent(dir, stochasticAgent({ variant: "neutral-final" }));
    const restoreEnv = setEnv({ ANTHROPIC_BASE_URL: ENV.ANTHROPIC_BASE_URL!, ANTHROPIC_API_KEY: "test-key" });
    const exp = openExperiment({ dir });
    const opened = openJournalAndLog(exp, { stdout: false });
    try {
      const runner = createRunnerFor(exp, opened, systemClock);
      const h = await scoreHoldout({
        journal: opened.journal,
        runner,
        runId: "run-h",
        split: split(dir) as Parameters<typeof scoreHoldout>[0]["split"],
        trials: 1,
        log: opened.log,
        // What the night's best val_score claims over the baseline's; the final agent truly changed nothing.
        claimedGain: 0.1,
      });
      expect(h!.low).toBeLessThan(0);
      expect(h!.high).toBeGreaterThan(0.1);
      expect(h!.verdict!.verdict).toBe("too small to tell");
      expect(h!.verdict!.tasksToTell).toBeGreaterThan(h!.tasks);
      expect(holdoutLine(h!)).toMatch(
        /too small to tell against the \+0\.1000 the gate's scores claim \(about \d+ sealed tasks would tell\)/,
      );
    } finally {
      opened.journal.close();
      restoreEnv();
    }
  });
});
