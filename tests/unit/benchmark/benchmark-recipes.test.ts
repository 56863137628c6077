import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCommandAdapter } from "../../../src/benchmark/adapters/command.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const REPO = resolve(import.meta.dirname, "../../..");
const HARBOR_STUB_DIR = join(REPO, "tests", "fixtures", "harbor-stub");
const TAU2_STUB_DIR = join(REPO, "tests", "fixtures", "tau2-stub");

// A Harbor / tau2 agent as the original's agent/agent.py: a class the tool imports.
const PY_AGENT = `class HarnessAgent:
    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs
`;

let root = "";
let journal: Journal;
let logs: string[];
const savedEnv = { ...process.env };

function setup(commandRun: string, scenario: Record<string, unknown>, env: Record<string, string>) {
  Object.assign(process.env, env);
  process.env.HARBOR_STUB_SCENARIO = JSON.stringify(scenario);
  process.env.TAU2_STUB_SCENARIO = JSON.stringify(scenario);
  const stream = new Writable({
    write(chunk, _e, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const { log } = createLogger({ stdout: false, stream });
  const config = configSchema.parse({
    benchmark: "command",
    agent_model: "claude-test-model",
    max_concurrency: 3,
    command: { run: commandRun, timeout: 60 },
  });
  const adapter = createCommandAdapter({
    command: commandRun,
    timeoutS: 60,
    cwd: root,
    log,
    settings: { agentModel: config.agent_model, maxConcurrency: config.max_concurrency, taskTimeoutS: 300 },
  });
  return { adapter };
}

const agentPy = () => join(root, "agent", "agent.py");
const lines = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

beforeEach(() => {
  root = tempDir("recipe-");
  mkdirSync(join(root, "agent"));
  writeFileSync(join(root, "agent", "agent.py"), PY_AGENT);
  writeFileSync(join(root, "agent", "__init__.py"), "");
  journal = Journal.open(paths(root).journal);
  logs = [];
});
afterEach(() => {
  journal.close();
  process.env = { ...savedEnv };
});

describe.skipIf(!haveTool("python3"))("benchmarks/harbor wrapper on Harbor-shaped job directories", () => {
  const harborEnv = () => {
    const log = join(root, "harbor-calls.log");
    const jobs = join(root, "workspace", "harbor_jobs");
    return {
      log,
      jobs,
      env: { PATH: `${HARBOR_STUB_DIR}${delimiter}${process.env.PATH}`, HARBOR_STUB_LOG: log },
      run: `python3 ${join(REPO, "benchmarks", "harbor", "run.py")} --dataset terminal-bench@2.0 --env docker --jobs-dir workspace/harbor_jobs`,
    };
  };

  it("runs harbor with the agent import path, model and concurrency, and maps verifier rewards", async () => {
    const h = harborEnv();
    const scenario = {
      "fix-git": "pass",
      "cobol-modernization": "fail",
      "build-linux": "partial",
      "timeout-task": "no-verifier",
      "lost-task": "no-result",
      "broken-json": "garbage",
      flaky: "two-trials",
    };
    const { adapter } = setup(h.run, scenario, h.env);
    const ids = Object.keys(scenario);
    const out = await adapter.runTasks({
      split: "train",
      taskIds: ids,
      agentFile: agentPy(),
      tracesDir: join(root, "traces"),
    });
    expect(out).toEqual({
      "fix-git": 1,
      "cobol-modernization": 0,
      "build-linux": 0.5,
      "timeout-task": null, // no verifier result: infrastructure error, as in the original
      "lost-task": null,
      "broken-json": null,
      flaky: 0.5,
    });
    const [call] = lines(h.log);
    const argv: string[] = call.argv;
    const flag = (f: string) => argv[argv.indexOf(f) + 1];
    expect(flag("--agent-import-path")).toBe("agent.agent:HarnessAgent");
    expect(flag("--model")).toBe("claude-test-model");
    expect(flag("--n-concurrent")).toBe("3");
    expect(flag("--env")).toBe("docker");
    expect(flag("--dataset")).toBe("terminal-bench@2.0");
    expect(argv.filter((_a, i) => argv[i - 1] === "--include-task-name").sort()).toEqual([...ids].sort());
    // Train traces: the trial's result, agent trajectory and verifier output; the job dir is gone.
    const trace = join(root, "traces", "fix-git");
    expect(JSON.parse(readFileSync(join(trace, "result.json"), "utf8")).verifier_result.rewards.reward).toBe(1);
    expect(existsSync(join(trace, "agent", "trajectory.json"))).toBe(true);
    expect(readFileSync(join(trace, "verifier", "test-stdout.txt"), "utf8")).toContain("ok");
    expect(readFileSync(join(root, "traces", "timeout-task", "exception.txt"), "utf8")).toContain("AgentTimeoutError");
    expect(readdirSync(join(root, "traces", "flaky")).sort()).toEqual(["trial-1", "trial-2"]);
    expect(readdirSync(h.jobs)).toEqual([]);
  });

  it("a test run writes no traces, tells the agent not to save any, and leaves no job directory", async () => {
    const h = harborEnv();
    const { adapter } = setup(h.run, { a: "pass", b: "fail", c: "pass" }, h.env);
    // Even handed a traces dir by mistake, a test run writes nothing there.
    const traces = join(root, "traces");
    const out = await adapter.runTasks({
      split: "test",
      taskIds: ["a", "b", "c"],
      agentFile: agentPy(),
      tracesDir: traces,
    });
    expect(out).toEqual({ a: 1, b: 0, c: 1 });
    expect(lines(h.log)[0].save_trace).toBe("0");
    expect(existsSync(traces)).toBe(false);
    expect(existsSync(h.jobs) ? readdirSync(h.jobs) : []).toEqual([]);
    expect(readdirSync(tmpdir()).filter((d) => d.startsWith("auto-harness-harbor-"))).toEqual([]);
  });

  it("lists a local dataset's tasks without running harbor", async () => {
    const h = harborEnv();
    for (const t of ["hello-world", "regex-log"]) {
      mkdirSync(join(root, "tasks", t), { recursive: true });
      writeFileSync(join(root, "tasks", t, "task.toml"), 'version = "1.0"\n');
    }
    mkdirSync(join(root, "tasks", "not-a-task"));
    const run = `python3 ${join(REPO, "benchmarks", "harbor", "run.py")} --path tasks`;
    const { adapter } = setup(run, {}, h.env);
    expect(await adapter.listTasks()).toEqual(["hello-world", "regex-log"]);
    expect(existsSync(h.log)).toBe(false);
  });

  it("harbor failing before it writes a job is an infrastructure error for the whole run", async () => {
    const h = harborEnv();
    const { adapter } = setup(h.run, { a: "pass", __no_job__: true }, h.env);
    await expect(
      adapter.runTasks({ split: "train", taskIds: ["a"], agentFile: agentPy(), tracesDir: null }),
    ).rejects.toMatchObject({ code: "INFRA_FAILURE" });
    expect(logs.join("")).toContain("wrote no job directory");
  });

  it("a non-zero harbor exit keeps the trials it finished; the missing ones are infrastructure errors", async () => {
    const h = harborEnv();
    const { adapter } = setup(h.run, { a: "pass", b: "no-result", __exit__: 1 }, h.env);
    const out = await adapter.runTasks({
      split: "train",
      taskIds: ["a", "b", "c"],
      agentFile: agentPy(),
      tracesDir: null,
    });
    expect(out).toEqual({ a: 1, b: null, c: 0 });
  });

  it("an agent file outside the experiment directory is refused with a clear message", async () => {
    const h = harborEnv();
    const { adapter } = setup(h.run, { a: "pass" }, h.env);
    await expect(
      adapter.runTasks({ split: "train", taskIds: ["a"], agentFile: "/elsewhere/agent.py", tracesDir: null }),
    ).rejects.toMatchObject({ code: "INFRA_FAILURE" });
    expect(logs.join("")).toContain("must be a .py file inside the experiment directory");
  });
});

describe.skipIf(!haveTool("python3"))("benchmarks/tau2 wrapper on tau2-shaped results", () => {
  const tauEnv = () => {
    const log = join(root, "tau2-calls.log");
    const data = join(root, "tau2_data");
    return {
      log,
      data,
      env: { PYTHONPATH: TAU2_STUB_DIR, TAU2_STUB_LOG: log, TAU2_DATA_DIR: data },
      run: `python3 ${join(REPO, "benchmarks", "tau2", "run.py")} --domain retail`,
    };
  };

  it("registers the agent, runs the domain with the config's model and concurrency, and maps rewards", async () => {
    const t = tauEnv();
    const scenario = { "0": "pass", "1": "fail", "2": "infra", "3": "unevaluated", "4": "two-trials" };
    const { adapter } = setup(t.run, scenario, t.env);
    expect(await adapter.listTasks()).toEqual(["0", "1", "2", "3", "4"]);
    const traces = join(root, "traces");
    const out = await adapter.runTasks({
      split: "train",
      taskIds: ["0", "1", "2", "3", "4"],
      agentFile: agentPy(),
      tracesDir: traces,
    });
    expect(out).toEqual({ "0": 1, "1": 0, "2": null, "3": null, "4": 0.5 });
    const [config] = lines(t.log);
    expect(config).toMatchObject({
      domain: "retail",
      agent: "auto_harness_agent",
      llm_agent: "claude-test-model",
      llm_user: "claude-test-model",
      max_concurrency: 3,
      task_ids: ["0", "1", "2", "3", "4"],
    });
    const sim = JSON.parse(readFileSync(join(traces, "0", "simulation.json"), "utf8"));
    expect(sim.reward_info.reward).toBe(1);
    expect(sim.messages[0].content).toBe("help with 0");
    // tau2's own results directory is deleted after every run.
    expect(readdirSync(join(t.data, "simulations"))).toEqual([]);
  });

  it("a test run leaves neither traces nor tau2's conversation files on disk", async () => {
    const t = tauEnv();
    const { adapter } = setup(t.run, { a: "pass", b: "fail" }, t.env);
    const traces = join(root, "traces");
    const out = await adapter.runTasks({ split: "test", taskIds: ["a", "b"], agentFile: agentPy(), tracesDir: traces });
    expect(out).toEqual({ a: 1, b: 0 });
    expect(existsSync(traces)).toBe(false);
    expect(readdirSync(join(t.data, "simulations"))).toEqual([]);
  });

  it("tau2 saving nothing, or raising before it saved, is an infrastructure error", async () => {
    const t = tauEnv();
    const a = setup(t.run, { a: "pass", __no_file__: true }, t.env);
    await expect(
      a.adapter.runTasks({ split: "train", taskIds: ["a"], agentFile: agentPy(), tracesDir: null }),
    ).rejects.toMatchObject({ code: "INFRA_FAILURE" });
    expect(logs.join("")).toContain("tau2 wrote no results file");
    const b = setup(t.run, { a: "pass", __raise__: true }, t.env);
    await expect(
      b.adapter.runTasks({ split: "train", taskIds: ["a"], agentFile: agentPy(), tracesDir: null }),
    ).rejects.toMatchObject({ code: "INFRA_FAILURE" });
  });

  it("an agent file without the agent class fails with a message naming it", async () => {
    const t = tauEnv();
    writeFileSync(join(root, "agent", "agent.py"), "class SomethingElse: pass\n");
    const { adapter } = setup(t.run, { a: "pass" }, t.env);
    await expect(
      adapter.runTasks({ split: "train", taskIds: ["a"], agentFile: agentPy(), tracesDir: null }),
    ).rejects.toMatchObject({ code: "INFRA_FAILURE" });
    expect(logs.join("")).toContain("has no class HarnessAgent");
  });
});
