import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { simulatedAgentModel } from "../../../dev/demo/simulated-agent-model.ts";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { createStandInSteps } from "../../../dev/steps/stand-in.ts";
import { createExampleAdapter } from "../../../src/benchmark/adapters/example.ts";
import { createRunner } from "../../../src/benchmark/runner.ts";
import { formatLive } from "../../../src/cli/live.ts";
import { main } from "../../../src/cli/program.ts";
import type { StepsFactory } from "../../../src/cli/run.ts";
import { formatStatus, readStatus, type StatusReport } from "../../../src/cli/status.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment, sandboxHere } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

let server: TestLlmServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

class Terminal extends Capture {
  isTTY = true;
  columns = 100;
}

const standIn: StepsFactory = (exp, opened, clock) =>
  createStandInSteps({ paths: exp.paths, journal: opened.journal, clock, delayMs: 0 });

describe("task progress in the journal: counts only", () => {
  it("a run's benchmark journals done/total with no task id, and status shows it with a bar and the ETA", async () => {
    server = await startTestLlmServer({ responder: simulatedAgentModel });
    const root = tempDir();
    mkdirSync(join(root, "agent"));
    writeFileSync(join(root, "agent", "agent.ts"), readFileSync("agent/templates/example.ts"));
    const journal = Journal.open(paths(root).journal);
    const { log } = createLogger({ stdout: false });
    const runner = createRunner({
      root,
      config: configSchema.parse({ benchmark: "example", max_concurrency: 4, ...sandboxHere() }),
      journal,
      log,
      adapter: createExampleAdapter(),
      agentBaseURL: server.url,
      agentApiKey: "test-key-local",
      typeCheck: false,
    });
    const ids = (await runner.listTasks()).slice(0, 5);
    journal.runs.createRun("run-p", {});
    await runner.run({ split: "test", taskIds: ids, runId: "run-p", iteration: 2 });
    const row = journal.runs.progress("run-p");
    expect(row).toMatchObject({ runId: "run-p", iteration: 2, split: "test", done: 5, total: 5 });
    const raw = JSON.stringify(
      new (await import("better-sqlite3")).default(paths(root).journal, { readonly: true })
        .prepare("SELECT * FROM run_progress")
        .all(),
    );
    for (const id of ids) expect(raw).not.toContain(id);
    journal.close();
  });

  it("status shows the progress of the step in flight, and only while a daemon runs it", () => {
    const dir = preparedExperiment(tempDir());
    const p = paths(dir);
    const journal = Journal.open(p.journal);
    journal.runs.createRun("run-s", {});
    journal.runs.stepStarted("run-s", 1, "benchmark");
    journal.runs.putProgress({ runId: "run-s", iteration: 1, split: "train", done: 12, total: 40, etaS: 130 });
    journal.close();
    expect(readStatus(dir).progress).toBeNull();
    // A daemon in another (live) process holds the workspace.
    writeFileSync(p.lock, JSON.stringify({ pid: process.ppid, startedAt: new Date().toISOString(), command: "run" }));
    const text = formatStatus(readStatus(dir));
    expect(text).toMatch(/\nprogress {3}train 12\/40 \[######\.{14}\] 30% {2}eta 2m 10s\n/);
  });
});

describe("the live view of a foreground run on a terminal", () => {
  const report = (over: Partial<StatusReport>): StatusReport => ({
    run: "run-1",
    status: "running",
    state: "gate",
    iteration: 3,
    step: "gate",
    stepStatus: "started",
    secondsInStep: 75,
    bestValScore: 0.52,
    baselineValScore: 0.48,
    accepted: 1,
    rejected: 1,
    noChange: 0,
    spendUsd: { total: 1.5, coding: 1, agent: 0.5 },
    budgetUsd: 20,
    lastError: null,
    stopReason: null,
    daemonPid: 1,
    queue: null,
    sandbox: "bwrap",
    progress: { split: "test", done: 9, total: 30, etaS: 42 },
    lastIteration: { iteration: 2, outcome: "rejected", valScore: 0.41, bestBefore: 0.52 },
    baselineSpendUsd: 0.3,
    ...over,
  });

  it("shows step, task progress with ETA, the last gate's verdict and spend against budget", () => {
    expect(formatLive(report({}))).toEqual([
      "run-1 · iteration 3 · gate · 1m 15s in step",
      "  progress   test 9/30 [#########.....................] 30%  eta 42s",
      "  last gate  iteration 2 rejected val_score 0.4100 (best before 0.5200)",
      "  best       val_score 0.5200 (baseline 0.4800) · 1 accepted, 1 rejected",
      "  spend      $1.50 of $20.00",
    ]);
  });

  it("on a terminal: the view on stderr and no JSON on stdout; --json brings the JSON back", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 2, budget_usd: 5 });
    const stdout = new Terminal();
    const stderr = new Terminal();
    const code = await main(["node", "auto-harness", "run", "--dir", dir], { stdout, stderr, stepsFactory: standIn });
    expect(code, stderr.text).toBe(0);
    expect(stdout.text).toBe("");
    expect(stderr.text).toMatch(/ {2}last gate {2}iteration 2 rejected/);
    expect(stderr.text).toMatch(/ {2}spend {6}\$0\.00 of \$5\.00\n/);
    // Repainted in place, not scrolled.
    expect(stderr.text).toMatch(/\x1b\[\d+F\x1b\[0J/);
    // The log file still has every line.
    const logs = join(dir, "workspace", "logs");
    expect(readFileSync(join(logs, readdirSync(logs)[0]!), "utf8")).toMatch(/"msg":"run done"/);

    // --json: no view; the JSON log goes to stdout (fd 1) as when stdout is not a terminal.
    const err2 = new Terminal();
    const code2 = await main(["node", "auto-harness", "run", "--new", "--json", "--dir", dir], {
      stdout: new Terminal(),
      stderr: err2,
      stepsFactory: standIn,
    });
    expect(code2).toBe(0);
    expect(err2.text).not.toMatch(/last gate/);
    expect(err2.text).toMatch(/run done: max_iterations reached/);
  });
});
