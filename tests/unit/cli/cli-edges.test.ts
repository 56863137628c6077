import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../../src/cli/program.ts";
import { formatStatus, readStatus } from "../../../src/cli/status.ts";
import { validateConfig } from "../../../src/config/load.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment, sandboxLineHere } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

async function cli(args: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", ...args], { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

describe("every command on a directory that is not (yet) an experiment", () => {
  it("status on a directory that does not exist says so, exit 2", async () => {
    const dir = join(tempDir(), "nope");
    const r = await cli(["status", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`auto-harness: ${dir} does not exist; pass --dir <experiment>\n`);
    expect(existsSync(dir)).toBe(false);
  });

  it("status on an empty directory says it holds no experiment, exit 2", async () => {
    const dir = tempDir();
    const r = await cli(["status", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/holds no experiment \(no experiment_config\.yaml, no workspace\/\)/);
  });

  const BENCHMARK_HINT =
    ": it checks the agent, the tasks and the scorer (a scorer's exception included), then measures the baseline";
  it.each([
    ["gate", ""],
    ["benchmark", BENCHMARK_HINT],
    ["report", ""],
    ["run", ""],
    ["daemon", ""],
  ])("%s on an unprepared experiment exits 2 with the fix and writes nothing", async (command, hint) => {
    const dir = tempDir();
    writeFileSync(join(dir, "experiment_config.yaml"), `benchmark: example\n${sandboxLineHere()}`);
    const r = await cli([command, "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`auto-harness: ${dir} is not prepared; run \`auto-harness prepare\` first${hint}\n`);
    expect(readdirSync(dir)).toEqual(["experiment_config.yaml"]);
  });

  it("prepare for `local` without an agent writes nothing, then exits 2", async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, "experiment_config.yaml"),
      `benchmark: local\nlocal: { tasks: tasks.jsonl, scorer: scorer.ts }\n${sandboxLineHere()}`,
    );
    writeFileSync(join(dir, "tasks.jsonl"), '{"id":"t1","input":"x"}\n');
    const before = readdirSync(dir).sort();
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no agent: benchmark `local` has no template .*; write agent\/agent\.ts yourself/);
    expect(readdirSync(dir).sort()).toEqual(before);
  });
});

describe("smaller contracts", () => {
  it("record --help prints the usage, exit 0", async () => {
    const dir = preparedExperiment(tempDir());
    const r = await cli(["record", "--help", "--dir", dir]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^Usage: auto-harness record --val-score X --evals-passed N --evals-total M/);
    expect(r.out).toMatch(/--iteration K/);
  });

  it("prepare's human lines go to stderr; stdout stays empty", async () => {
    const dir = preparedExperiment(tempDir());
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/ {2}kept {5}workspace\/split\.json and the baseline/);
  });

  it("a typo inside `local:` lists the keys of `local`, not the top-level ones", () => {
    const { errors } = validateConfig({ benchmark: "local", local: { tasks: "t.jsonl", scorer: "s.ts", zzzzzzzz: 1 } });
    expect(errors).toEqual(["local.zzzzzzzz: unknown key; remove it (known keys: tasks, scorer)"]);
    const near = validateConfig({ benchmark: "local", local: { tasks: "t.jsonl", scroer: "s.ts" } }).errors;
    expect(near).toContain('local.scroer: unknown key (did you mean "scorer"?)');
  });

  it("status after `pm2 stop` does not claim pm2 restarts the daemon by itself", () => {
    const dir = preparedExperiment(tempDir());
    mkdirSync(join(dir, "workspace"), { recursive: true });
    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
    journal.runs.createRun("run-x", {});
    journal.runs.setRunStatus("run-x", "stopped");
    journal.close();
    const text = formatStatus(readStatus(dir));
    expect(text).toMatch(
      /\nnext {7}`auto-harness resume` continues from this step; under pm2, `npx pm2 start auto-harness`/,
    );
    expect(text).toMatch(/pm2 does not restart a stopped daemon/);
    expect(text).not.toMatch(/pm2 does it by itself/);
  });
});

describe("siblings: the other commands on a directory that is not (yet) an experiment", () => {
  it.each([
    ["stop"],
    ["resume"],
    ["report"],
    ["rebaseline"],
    ["benchmark"],
    ["record", "--val-score", "0.5", "--evals-passed", "0", "--evals-total", "0"],
  ])("%s on a directory that does not exist says so, exit 2", async (...args) => {
    const dir = join(tempDir(), "nope");
    const r = await cli([...args, "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`${dir} does not exist; pass --dir <experiment>`));
    expect(existsSync(dir)).toBe(false);
  });

  it("stop before any run says so and creates no journal", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "experiment_config.yaml"), "benchmark: example\n");
    const r = await cli(["stop", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toBe("auto-harness: no unfinished run to stop (no run yet)\n");
    expect(readdirSync(dir)).toEqual(["experiment_config.yaml"]);
  });

  it("record outside a git repository exits 2 with the fix, not a stack trace", async () => {
    const dir = tempDir();
    const r = await cli(["record", "--val-score", "0.5", "--evals-passed", "0", "--evals-total", "0", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/is not a git repository; run `auto-harness prepare` first/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});
