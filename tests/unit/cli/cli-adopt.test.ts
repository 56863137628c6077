import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { isCodingAgentRequest, simulatedCodingModel } from "../../../dev/demo/simulated-coding-model.ts";
import { startTestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { main } from "../../../src/cli/program.ts";
import { runRecordCommand } from "../../../src/cli/record.ts";
import { loadConfig } from "../../../src/config/load.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { recordIteration } from "../../../src/record/record.ts";
import { loopIterationOf, readResults, readSplit, readSuite, readTrainResults } from "../../../src/workspace/files.ts";
import { Capture } from "../../helpers/capture.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const REPO = resolve(import.meta.dirname, "../../..");
// The original's file writers, re-created in Python: the fixture is written the way the original writes it.
const WRITERS = join(REPO, "tests", "fixtures", "original_writers.py");
const py = (...args: string[]) => execFileSync("python3", [WRITERS, ...args], { encoding: "utf8" }).trim();

function original(benchmark: string, fresh = false): string {
  const dir = tempDir("adopt-");
  py("experiment", dir, benchmark, ...(fresh ? ["--fresh"] : []));
  return dir;
}

async function adopt(dir: string) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", "adopt", dir], { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const read = (dir: string, file: string) => readFileSync(join(dir, file), "utf8");

describe.skipIf(!haveTool("python3"))("adopt: an experiment of the Python original", () => {
  it("takes over a Terminal-Bench experiment in place, keeping its history, without a new baseline", async () => {
    const dir = original("terminal-bench");
    const before = {
      results: read(dir, "workspace/results.tsv"),
      learnings: read(dir, "workspace/learnings.md"),
      suite: read(dir, "workspace/suite.json"),
      train: read(dir, "workspace/train_results.json"),
      agent: read(dir, "agent/agent.py"),
      log: execFileSync("git", ["-C", dir, "log", "--format=%s"], { encoding: "utf8" }),
    };
    const res = await adopt(dir);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    // History untouched.
    expect(read(dir, "workspace/results.tsv")).toBe(before.results);
    expect(read(dir, "workspace/learnings.md")).toBe(before.learnings);
    expect(read(dir, "workspace/suite.json")).toBe(before.suite);
    expect(read(dir, "workspace/train_results.json")).toBe(before.train);
    expect(read(dir, "agent/agent.py")).toBe(before.agent);
    const log = execFileSync("git", ["-C", dir, "log", "--format=%s"], { encoding: "utf8" });
    expect(log).toBe(`adopt: experiment of the Python original\n${before.log}`);
    // Our config: the Harbor wrapper with the original's dataset and environment, the Python agent.
    const config = loadConfig(join(dir, "experiment_config.yaml"));
    expect(config).toMatchObject({
      benchmark: "command",
      agent_file: "agent/agent.py",
      agent_model: "claude-sonnet-4-6",
      max_concurrency: 50,
      threshold: 0.8,
    });
    expect(config.command?.run).toBe(
      `python3 ${join(REPO, "benchmarks", "harbor", "run.py")} --dataset terminal-bench@2.0 --env e2b`,
    );
    expect(read(dir, "experiment_config.original.yaml")).toContain("benchmark: terminal-bench");
    // The split is the original's.
    const taskSplit = JSON.parse(read(dir, "tbench_data/task_split.json"));
    const split = readSplit(join(dir, "workspace", "split.json"));
    expect(split?.train).toEqual(taskSplit.train);
    expect(split?.test).toEqual(taskSplit.test);
    // Our readers accept every file as the original wrote it.
    expect(readResults(join(dir, "workspace", "results.tsv")).map((r) => r.iteration)).toEqual([0, 1, 2]);
    expect(readSuite(join(dir, "workspace", "suite.json")).tasks).toHaveLength(2);
    expect(Object.values(readTrainResults(join(dir, "workspace", "train_results.json"))!.results)).toContain(null);
    // Adopting again changes nothing.
    const again = await adopt(dir);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("already an auto-harness experiment");
  });

  it("our record and the original's record.py agree on the next row, and the original reads our rows", async () => {
    const dir = original("terminal-bench");
    expect((await adopt(dir)).code).toBe(0);
    const results = join(dir, "workspace", "results.tsv");
    const repo = openRepo(dir);
    // The loop accepts loop iteration 5 (after rejected ones): row 3, loop_iteration 5.
    writeFileSync(join(dir, "agent", "agent.py"), "class HarnessAgent:\n    SYSTEM_PROMPT = 'v4'\n");
    const gate = {
      passed: true,
      valScore: 0.75,
      previousBest: 0.6286,
      suitePassed: 2,
      suiteTotal: 2,
      promoted: [],
      reasons: [],
    };
    const edit = {
      changed: true,
      hypothesis: "h",
      changeSummary: "rule 4",
      commitMessage: "rule 4",
      pattern: "p",
      needsFromHuman: "none",
    };
    await recordIteration({
      root: dir,
      repo,
      runId: "run-1",
      iteration: 5,
      agentFile: "agent/agent.py",
      edit,
      gate,
      now: () => new Date("2026-03-01T02:00:00Z"),
    });
    // The original's record.py, on our file, writes row 4.
    expect(py("record", dir, "--val-score", "0.8", "--evals-passed", "2", "--evals-total", "2")).toBe("4");
    // Our record writes row 5.
    const stdout = new Capture();
    const code = await runRecordCommand({
      root: dir,
      repo,
      options: ["--val-score", "0.81", "--evals-passed", "2", "--evals-total", "2"],
      stdout,
    });
    expect(code).toBe(0);
    const rows = readResults(results);
    expect(rows.map((r) => r.iteration)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rows.map(loopIterationOf)).toEqual([0, 1, 2, 5, 4, 5]);
    expect(read(dir, "workspace/results.tsv").split("\n")[0]).toBe(
      // New columns only after timestamp: loop_iteration, then why each row's change was accepted.
      "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\tloop_iteration\treason",
    );
    // gating.py's best_val_score (csv.DictReader) reads our file.
    expect(py("best", dir)).toBe("0.81");
  });

  it("adopts a just-prepared experiment, whose train_results.json still says split null", async () => {
    const dir = original("terminal-bench", true);
    expect(JSON.parse(read(dir, "workspace/train_results.json"))).toEqual({
      split: null,
      timestamp: null,
      results: {},
    });
    const res = await adopt(dir);
    expect(res.code).toBe(0);
    expect(readTrainResults(join(dir, "workspace", "train_results.json"))?.results).toEqual({});
  });

  it("adopts a tau-bench experiment with tau2's own split and the tau2 wrapper", async () => {
    const dir = original("tau-bench");
    expect((await adopt(dir)).code).toBe(0);
    const config = loadConfig(join(dir, "experiment_config.yaml"));
    expect(config.command?.run).toBe(
      `python3 ${join(REPO, "benchmarks", "tau2", "run.py")} --domain retail --user-model claude-haiku-4-5`,
    );
    const split = readSplit(join(dir, "workspace", "split.json"));
    expect(split?.train).toHaveLength(14);
    expect(split?.test).toHaveLength(6);
  });

  it("refuses what it cannot adopt with one clear line, writing nothing", async () => {
    const bird = original("bird-interact");
    const res = await adopt(bird);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/benchmark `bird-interact` has no wrapper here/);
    expect(read(bird, "experiment_config.yaml")).toContain("benchmark: bird-interact");
    expect(existsSync(join(bird, "workspace", "split.json"))).toBe(false);

    const damaged = original("terminal-bench");
    writeFileSync(join(damaged, "workspace", "results.tsv"), "iter\tval\n0\t0.5\n");
    const bad = await adopt(damaged);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("results.tsv:1: header must start with");
    expect(read(damaged, "experiment_config.yaml")).toContain("benchmark: terminal-bench");

    const noSplit = original("terminal-bench");
    execFileSync("rm", ["-rf", join(noSplit, "tbench_data")]);
    const missing = await adopt(noSplit);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no task split found");
    expect(existsSync(join(noSplit, "experiment_config.original.yaml"))).toBe(false);
  });

  it("the loop continues an adopted Terminal-Bench experiment: Harbor wrapper, no new baseline, numbering after the original's", async () => {
    const dir = original("terminal-bench");
    expect((await adopt(dir)).code).toBe(0);
    const config = join(dir, "experiment_config.yaml");
    writeFileSync(config, `${read(dir, "experiment_config.yaml")}max_iterations: 1\n`);
    execFileSync("git", ["-C", dir, "commit", "-qam", "one iteration"]);
    const server = await startTestLlmServer({
      responder: (req, i) => (isCodingAgentRequest(req) ? simulatedCodingModel(req, i) : textReply("ok")),
    });
    try {
      const scenario = Object.fromEntries(
        Array.from({ length: 20 }, (_, i) => [`task-${String(i).padStart(2, "0")}`, i % 2 ? "pass" : "fail"]),
      );
      const env = {
        ...process.env,
        ANTHROPIC_BASE_URL: server.url,
        ANTHROPIC_API_KEY: "test-key",
        PATH: `${join(REPO, "tests", "fixtures", "harbor-stub")}:${process.env.PATH}`,
        HARBOR_STUB_LOG: join(dir, "harbor.log"),
        HARBOR_STUB_SCENARIO: JSON.stringify(scenario),
      };
      const code = await new Promise<number | null>((done) => {
        const child = spawn(process.execPath, [join(REPO, "bin", "auto-harness.js"), "run", "--dir", dir], {
          env,
          stdio: "ignore",
        });
        child.on("exit", done);
      });
      expect(code).toBe(0);
    } finally {
      await server.close();
    }
    // Harbor ran the train split only (no baseline), through the wrapper.
    const calls = read(dir, "harbor.log")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).argv as string[]);
    const train = JSON.parse(read(dir, "tbench_data/task_split.json")).train as string[];
    expect(calls[0]?.filter((_a, i, all) => all[i - 1] === "--include-task-name").sort()).toEqual([...train].sort());
    expect(readResults(join(dir, "workspace", "results.tsv")).map((r) => r.commit)[0]).toBe("baseline");
    const headings = read(dir, "workspace/learnings.md")
      .split("\n")
      .filter((l) => l.startsWith("## Iteration"));
    expect(headings.map((h) => Number(/Iteration (\d+)/.exec(h)?.[1]))).toEqual([1, 2, 3, 4]);
  }, 120_000);
});
