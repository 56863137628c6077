import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { demoConfig } from "../../../dev/demo/main.ts";
import { simulatedAgentModel } from "../../../dev/demo/simulated-agent-model.ts";
import { isCodingAgentRequest, simulatedCodingModel } from "../../../dev/demo/simulated-coding-model.ts";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { loopIterationOf, readResults } from "../../../src/workspace/files.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const BIN = join(REPO_ROOT, "bin", "auto-harness.js");

function cli(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

let server: TestLlmServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

// The same invariants for a Python agent: its runtime, load check and edits go through the same loop.
describe.each([
  ["TypeScript", "agent/agent.ts"],
  ["Python", "agent/agent.py"],
])("the real loop under SIGKILL, %s agent", (_language, agentFile) => {
  it("prepare, then a run killed at seeded random moments and resumed, keeps every invariant", async () => {
    const dir = tempDir("e2e-");
    execFileSync("git", ["init", "-q"], { cwd: dir });
    writeFileSync(join(dir, "experiment_config.yaml"), demoConfig(4, agentFile.endsWith(".py")));
    server = await startTestLlmServer({
      responder: (req, index) =>
        isCodingAgentRequest(req) ? simulatedCodingModel(req, index) : simulatedAgentModel(req, index),
    });
    const env = { ...process.env, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "" };

    const prepare = cli(["prepare", "--dir", dir], env);
    expect(await prepare.exited, prepare.stderr()).toBe(0);

    // Seeded kill moments, spread over the run's steps (benchmark children, coding-agent turns, gate, record).
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let kills = 0;
    let code: number | null = null;
    for (let round = 0; round < 30 && code !== EXIT_NOTHING_TO_DO; round++) {
      const daemon = cli(["daemon", "--dir", dir], env);
      if (kills < 6) {
        // Short enough that a fast run (the Python agent's, on a quiet machine) still takes three or more.
        const timer = setTimeout(() => daemon.child.kill("SIGKILL"), 600 + Math.floor(next() * 2000));
        code = await daemon.exited;
        clearTimeout(timer);
        if (code === null) kills += 1;
      } else {
        code = await daemon.exited;
      }
      if (code !== null && code !== EXIT_NOTHING_TO_DO) throw new Error(`daemon exited ${code}: ${daemon.stderr()}`);
    }
    expect(code).toBe(EXIT_NOTHING_TO_DO);
    expect(kills).toBeGreaterThanOrEqual(3);

    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
    try {
      expect(journal.integrityCheck()).toBe("ok");
      const run = journal.runs.latestRun()!;
      expect(run.status).toBe("done");
      expect(journal.runs.steps(run.id).filter((s) => s.status === "started")).toEqual([]);
      const iterations = journal.runs.iterations(run.id);
      expect(iterations.map((i) => i.iteration)).toEqual([1, 2, 3, 4]);
      const accepted = iterations.filter((i) => i.outcome === "accepted").map((i) => i.iteration);
      expect(accepted.length).toBeGreaterThanOrEqual(1);
      expect(iterations.some((i) => i.outcome === "rejected")).toBe(true);

      // results.tsv: the baseline and exactly one row per accepted iteration.
      const rows = readResults(join(dir, "workspace", "results.tsv"));
      expect(rows.map((r) => r.iteration)).toEqual(rows.map((_r, i) => i));
      expect(rows.map(loopIterationOf)).toEqual([0, ...accepted]);

      // git: one improve commit per accepted iteration, each trailer once, each commit the row's.
      const log = execFileSync("git", ["log", "--format=%h %s%x00%(trailers:key=Harness-Run,valueonly)%x01"], {
        cwd: dir,
        encoding: "utf8",
      });
      const improves = log
        .split("\x01")
        .map((r) => r.trim())
        .filter((r) => / improve: /.test(r));
      const trailers = improves.map((r) => r.split("\0")[1]?.trim());
      expect(trailers.sort()).toEqual(accepted.map((i) => `${run.id}/${i}`).sort());
      for (const row of rows.slice(1)) expect(log).toContain(row.commit);

      // learnings.md: one entry per iteration and one closing summary.
      const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
      for (const i of [1, 2, 3, 4]) {
        expect(learnings.split(`run=${run.id} iteration=${i} -->`).length - 1, `entry ${i}`).toBe(1);
      }
      expect(learnings.split(`harness:summary run=${run.id}`).length - 1).toBe(1);

      // The agent file is the last accepted version, and nothing else is left modified.
      const head = execFileSync("git", ["show", `HEAD:${agentFile}`], { cwd: dir, encoding: "utf8" });
      expect(readFileSync(join(dir, agentFile), "utf8")).toBe(head);
      if (agentFile.endsWith(".py")) expect(head).toContain("def run(task, ctx)");
      expect(execFileSync("git", ["status", "--porcelain"], { cwd: dir, encoding: "utf8" })).toBe("");
    } finally {
      journal.close();
    }
  }, 600_000);
});
