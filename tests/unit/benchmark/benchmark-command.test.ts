import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCommandAdapter, missingProgram, ProgramNotFound } from "../../../src/benchmark/adapters/command.ts";
import { createRunner } from "../../../src/benchmark/runner.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { HarnessError } from "../../../src/errors.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { paths } from "../../../src/workspace/paths.ts";

// A tiny external benchmark: three tasks; appends every invocation's env to calls.log; writes a trace for train.
const SCRIPT = `
const fs = require("node:fs");
const path = require("node:path");
const e = process.env;
fs.appendFileSync(path.join(__dirname, "calls.log"), JSON.stringify({
  split: e.HARNESS_SPLIT, ids: e.HARNESS_TASK_IDS, agent: e.HARNESS_AGENT_FILE, traces: e.HARNESS_TRACES_DIR ?? null,
}) + "\\n");
if (fs.existsSync(path.join(__dirname, "fail"))) { console.error("benchmark blew up: disk full"); process.exit(3); }
const all = { "cmd-1": 1, "cmd-2": 0.25, "cmd-3": null };
const ids = e.HARNESS_TASK_IDS ? e.HARNESS_TASK_IDS.split(",") : Object.keys(all);
const results = {};
for (const id of ids) {
  results[id] = all[id];
  if (e.HARNESS_TRACES_DIR) {
    fs.mkdirSync(path.join(e.HARNESS_TRACES_DIR, id), { recursive: true });
    fs.writeFileSync(path.join(e.HARNESS_TRACES_DIR, id, "log.txt"), "ran " + id);
  }
}
if (fs.existsSync(path.join(__dirname, "garbage"))) fs.writeFileSync(e.HARNESS_RESULTS_FILE, "{not json");
else fs.writeFileSync(e.HARNESS_RESULTS_FILE, JSON.stringify({ results }));
`;

let root = "";
let journal: Journal;
let logs: string[] = [];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "bench-cmd-"));
  mkdirSync(join(root, "agent"));
  mkdirSync(join(root, "ext"));
  writeFileSync(join(root, "agent", "agent.ts"), "export default { run: () => 1 };\n");
  writeFileSync(join(root, "ext", "bench.cjs"), SCRIPT);
  journal = Journal.open(paths(root).journal);
  logs = [];
});
afterEach(() => {
  journal.close();
  rmSync(root, { recursive: true, force: true });
});

function setup() {
  const stream = new Writable({
    write(chunk, _e, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const { log } = createLogger({ stdout: false, stream });
  const command = `node ext/bench.cjs`;
  const config = configSchema.parse({ benchmark: "command", command: { run: command, timeout: 30 } });
  const adapter = createCommandAdapter({ command, timeoutS: 30, cwd: root, log });
  return { adapter, runner: createRunner({ root, config, journal, log, adapter }) };
}
const calls = () =>
  readFileSync(join(root, "ext", "calls.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

describe("command adapter", () => {
  it("lists tasks with HARNESS_SPLIT=all and runs a split with the documented environment", async () => {
    const { runner } = setup();
    expect(await runner.listTasks()).toEqual(["cmd-1", "cmd-2", "cmd-3"]);
    const summary = await runner.run({ split: "train", taskIds: ["cmd-1", "cmd-2"], runId: null });
    expect(summary.results).toEqual({ "cmd-1": 1, "cmd-2": 0.25 });
    const [list, run] = calls();
    expect(list).toMatchObject({ split: "all", ids: "", traces: null });
    expect(run).toEqual({
      split: "train",
      ids: "cmd-1,cmd-2",
      agent: paths(root).agentFile,
      traces: paths(root).tracesLatest,
    });
    expect(readFileSync(join(paths(root).tracesLatest, "cmd-1", "log.txt"), "utf8")).toBe("ran cmd-1");
    expect(readFileSync(join(paths(root).tracesBaseline, "cmd-1", "log.txt"), "utf8")).toBe("ran cmd-1");
  });

  it("gives test runs no traces dir, and retries a null result once", async () => {
    const { runner } = setup();
    const summary = await runner.run({ split: "test", taskIds: ["cmd-1", "cmd-3"], runId: null });
    expect(summary.results).toEqual({ "cmd-1": 1, "cmd-3": null });
    const runs = calls().filter((c) => c.split === "test");
    expect(runs.map((c) => c.ids)).toEqual(["cmd-1,cmd-3", "cmd-3"]);
    expect(runs.every((c) => c.traces === null)).toBe(true);
  });

  it("treats a failing command as an infrastructure failure and logs its stderr tail (train only)", async () => {
    const { runner } = setup();
    await runner.listTasks();
    writeFileSync(join(root, "ext", "fail"), "");
    const error = await runner.run({ split: "train", taskIds: ["cmd-1", "cmd-2"], runId: null }).catch((e) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.code).toBe("INFRA_FAILURE");
    expect(calls().filter((c) => c.split === "train")).toHaveLength(2);
    expect(logs.join("")).toContain("benchmark blew up: disk full");
    expect(logs.join("")).toContain("exit code 3");

    logs.length = 0;
    await runner.run({ split: "test", taskIds: ["cmd-1", "cmd-2"], runId: null }).catch((e) => e);
    expect(logs.join("")).toContain("exit code 3");
    expect(logs.join("")).not.toContain("disk full");
  });

  it("treats an unreadable results file as an infrastructure error", async () => {
    const { adapter } = setup();
    writeFileSync(join(root, "ext", "garbage"), "");
    const error = await adapter
      .runTasks({ split: "train", taskIds: ["cmd-1"], agentFile: paths(root).agentFile, tracesDir: null })
      .catch((e) => e);
    expect(error.code).toBe("INFRA_FAILURE");
    expect(error.message).toContain("cannot read its results file");
  });

  it("a program the command runs is not installed: its name from the shell's words, never from a test run", async () => {
    const { log } = createLogger({ stdout: false });
    const adapter = createCommandAdapter({ command: "no-such-bench-tool --all", timeoutS: 30, cwd: root, log });
    const listed = await adapter.listTasks().catch((e) => e);
    expect(listed).toBeInstanceOf(ProgramNotFound);
    expect(listed.code).toBe("INFRA_FAILURE");
    expect(listed.program).toBe("no-such-bench-tool");
    const run = (split: "train" | "test") =>
      adapter
        .runTasks({ split, taskIds: ["cmd-1"], agentFile: paths(root).agentFile, tracesDir: null })
        .catch((e) => e);
    expect((await run("train")).program).toBe("no-such-bench-tool");
    // A test run's stderr stays private, the program's name in it too.
    const test = await run("test");
    expect(test).toBeInstanceOf(ProgramNotFound);
    expect(test.program).toBeNull();
    expect(test.message).not.toContain("no-such-bench-tool");
  });

  it.each([
    ["dash", "/bin/sh: 1: python3: not found", "python3"],
    ["bash", "/bin/sh: line 1: python3: command not found", "python3"],
    ["busybox", "sh: python3: not found", "python3"],
    ["a #! line through env", "/usr/bin/env: 'python3': No such file or directory", "python3"],
    ["another failure", "Traceback: ModuleNotFoundError: No module named 'x'", null],
  ])("names the missing program as %s says it", (_shell, said, program) => {
    expect(missingProgram(`some output\n${said}\n`)).toBe(program);
  });
});
