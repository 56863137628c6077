import { readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { errorHandling, FileDamagedError, HarnessError } from "../../../src/errors.ts";
import { type CheckAgent, commitSteeringIfChanged, type GateDeps, runGate } from "../../../src/gate/gate.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { createLogger } from "../../../src/log.ts";
import { readSuite, writeSuite, writeTrainResults } from "../../../src/workspace/files.ts";
import { fakeRunner, makeRepo, type Table, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

const HEADER = "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\n";
const RESULTS = `${HEADER}0\t0.5000\tbaseline\t0\t0\t2026-01-01T00:00:00.000Z\n`;

function memoryLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { log: createLogger({ stdout: false, stream, level: "debug" }).log, lines };
}

interface Setup {
  train?: Table;
  test?: Table;
  check?: CheckAgent;
}

function deps(r: TempRepo, setup: Setup = {}) {
  const runner = fakeRunner({ train: setup.train ?? {}, test: setup.test ?? { secret_t1: 0.6, secret_t2: 0.6 } });
  const checked: string[] = [];
  const checkAgent: CheckAgent =
    setup.check ??
    (async (file) => {
      checked.push(file);
      return { ok: true };
    });
  const { log, lines } = memoryLog();
  const d: GateDeps = {
    root: r.root,
    config: { threshold: 0.8 },
    log,
    runner,
    repo: openRepo(r.root),
    checkAgent,
    runId: "run-1",
    iteration: 3,
  };
  return { d, runner, checked, lines };
}

function experiment(name: string): TempRepo {
  const r = makeRepo(name);
  r.write("workspace/results.tsv", RESULTS);
  r.write("agent/agent.ts", "export const prompt = 'edited';\n");
  return r;
}

describe("gate step 1: file guard against real repositories", () => {
  const violations: [string, (r: TempRepo) => void, string[]][] = [
    [
      "another tracked file modified",
      (r) => r.write("src/tools.ts", "export const tools = ['x'];\n"),
      ["src/tools.ts"],
    ],
    ["a new untracked file", (r) => r.write("agent/helper.ts", "export {};\n"), ["agent/helper.ts"]],
    ["a deleted file", (r) => unlinkSync(join(r.root, "README.md")), ["README.md"]],
    [
      "a renamed file",
      (r) => renameSync(join(r.root, "src/tools.ts"), join(r.root, "src/tools2.ts")),
      ["src/tools.ts", "src/tools2.ts"],
    ],
    ["a staged rename", (r) => r.git("mv", "README.md", "docs.md"), ["README.md", "docs.md"]],
  ];

  it.each(violations)("fails on %s, listing it, without loading or benchmarking", async (_name, change, offending) => {
    repo = experiment("guard");
    change(repo);
    const { d, runner, checked } = deps(repo);
    const out = await runGate(d);
    expect(out.passed).toBe(false);
    expect(out.valScore).toBeNull();
    expect(out.previousBest).toBe(0.5);
    expect(out.reasons).toEqual([
      `file guard: only agent/agent.ts may change, but these differ: ${offending.join(", ")}`,
    ]);
    expect(runner.calls).toEqual([]);
    expect(checked).toEqual([]);
  });

  it("allows changes inside workspace/ even when it is not ignored, and an operator's PROGRAM.md edit", async () => {
    repo = experiment("guard-ok");
    writeFileSync(join(repo.root, ".gitignore"), "");
    repo.git("commit", "-q", "-am", "stop ignoring workspace");
    repo.write("workspace/traces/latest/t1/trace.json", "{}\n");
    repo.write("PROGRAM.md", "# Program\nFocus on refunds.\n");
    const { d, runner, checked } = deps(repo);
    const out = await runGate(d);
    expect(out.reasons).toEqual([]);
    expect(out.passed).toBe(true);
    expect(checked).toEqual([join(repo.root, "agent/agent.ts")]);
    expect(runner.calls.map((c) => c.split)).toEqual(["test"]);
  });
});

describe("gate step 2: load check", () => {
  it("fails with the compiler's message and runs no benchmark", async () => {
    repo = experiment("load");
    const message = "agent/agent.ts(1,8): error TS1005: ';' expected.";
    const { d, runner } = deps(repo, { check: async () => ({ ok: false, message }) });
    const out = await runGate(d);
    expect(out.passed).toBe(false);
    expect(out.reasons).toEqual([`load check: agent/agent.ts does not load: ${message}`]);
    expect(runner.calls).toEqual([]);
  });
});

describe("gate steps 3-5 through the runner", () => {
  it("passes, updates last_results and promotes previously failing train tasks that now pass", async () => {
    repo = experiment("promote");
    const p = {
      suite: join(repo.root, "workspace/suite.json"),
      train: join(repo.root, "workspace/train_results.json"),
    };
    writeSuite(p.suite, { tasks: ["s1", "s2"], threshold: 0.5, last_results: { s1: 1, s2: 0 } });
    writeTrainResults(p.train, { s1: 1, s2: 0, f1: 0, f2: 0.2, f3: null, ok: 1 });
    const { d, runner, lines } = deps(repo, {
      train: { s1: 1, s2: 1, f1: 0.9, f2: 0.1, f3: 1, ok: 1 },
      test: { secret_t1: 0.5, secret_t2: 0.7 },
    });
    const out = await runGate(d);
    expect(out).toEqual({
      passed: true,
      valScore: 0.6,
      previousBest: 0.5,
      suitePassed: 2,
      suiteTotal: 2,
      promoted: ["f1"],
      reasons: [],
      rule: "original",
      stage: "full",
      testRuns: 2,
      // The config is the threshold's one source: the suite file's 0.5 gives way to it, and the change is said.
      notes: ["threshold changed from 0.5 to 0.8 (experiment_config.yaml)"],
    });
    expect(readSuite(p.suite)).toEqual({
      tasks: ["s1", "s2", "f1"],
      threshold: 0.8,
      last_results: { s1: 1, s2: 1, f1: 0.9 },
    });
    expect(runner.calls.map((c) => [c.split, c.taskIds, c.runId, c.iteration, c.writeTraces])).toEqual([
      ["train", ["s1", "s2"], "run-1", 3, false],
      ["test", undefined, "run-1", 3, false],
      ["train", ["f1", "f2"], "run-1", 3, false],
    ]);
    // Only the aggregate of the test split leaves the gate.
    expect(lines.join("")).not.toContain("secret_t");
    expect(lines.join("")).toContain('"valScore":0.6');
  });

  it("suite fails, test passes: both run and are reported, nothing promoted, last_results still updated", async () => {
    repo = experiment("suite-fail");
    const suiteFile = join(repo.root, "workspace/suite.json");
    writeSuite(suiteFile, { tasks: ["s1", "s2"], threshold: 0.8, last_results: {} });
    writeTrainResults(join(repo.root, "workspace/train_results.json"), { f1: 0 });
    const { d, runner } = deps(repo, { train: { s1: 1, s2: 0, f1: 1 }, test: { t: 0.9 } });
    const out = await runGate(d);
    expect(out.passed).toBe(false);
    expect(out.valScore).toBe(0.9);
    expect([out.suitePassed, out.suiteTotal]).toEqual([1, 2]);
    expect(out.promoted).toEqual([]);
    expect(out.reasons).toEqual(["regression suite: 1/2 passed (50.0%) < threshold 80.0%"]);
    expect(runner.calls).toHaveLength(2);
    expect(readSuite(suiteFile)).toEqual({ tasks: ["s1", "s2"], threshold: 0.8, last_results: { s1: 1, s2: 0 } });
  });

  it("an all-null test split is a resumable infrastructure failure", async () => {
    repo = experiment("infra");
    const { d } = deps(repo, { test: { t1: null, t2: null } });
    const err = await runGate(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).code).toBe("INFRA_FAILURE");
    expect(errorHandling(err)).toBe("resumable");
  });

  it("a truncated results.tsv stops the gate with file and line; no file is rewritten", async () => {
    repo = experiment("damaged");
    const results = join(repo.root, "workspace/results.tsv");
    const damaged = `${RESULTS}1\t0.61`;
    writeFileSync(results, damaged);
    const suiteFile = join(repo.root, "workspace/suite.json");
    writeSuite(suiteFile, { tasks: ["s1"], threshold: 0.8, last_results: {} });
    const suiteBefore = readFileSync(suiteFile);
    const { d, runner } = deps(repo, { train: { s1: 1 } });
    const err = await runGate(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileDamagedError);
    expect((err as FileDamagedError).message).toBe(`${results}:3: expected 6 tab-separated columns, found 2`);
    expect(readFileSync(results, "utf8")).toBe(damaged);
    expect(readFileSync(suiteFile)).toEqual(suiteBefore);
    expect(runner.calls).toEqual([]);
  });

  it("a damaged suite.json names the file and line", async () => {
    repo = experiment("damaged-suite");
    const suiteFile = join(repo.root, "workspace/suite.json");
    const text = '{\n  "tasks": ["a"],\n  "threshold": "high"\n}\n';
    writeFileSync(suiteFile, text);
    const err = await runGate(deps(repo).d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileDamagedError);
    expect((err as FileDamagedError).message).toMatch(new RegExp(`^${suiteFile}:3: threshold: `));
    expect(readFileSync(suiteFile, "utf8")).toBe(text);
  });

  it("stops between steps when aborted", async () => {
    repo = experiment("abort");
    const controller = new AbortController();
    const { d, runner } = deps(repo, {
      check: async () => {
        controller.abort();
        return { ok: true };
      },
    });
    const err = await runGate({ ...d, signal: controller.signal }).catch((e: unknown) => e);
    expect((err as HarnessError).code).toBe("ABORTED");
    expect(runner.calls).toEqual([]);
  });
});

describe("commitSteeringIfChanged", () => {
  it("commits an operator's PROGRAM.md edit without a run trailer, once", async () => {
    repo = makeRepo("steer");
    const r = openRepo(repo.root);
    expect(await commitSteeringIfChanged(r)).toBeNull();
    repo.write("PROGRAM.md", "# Program\nTry shorter prompts.\n");
    repo.write("README.md", "# unrelated dirty file\n");
    const sha = await commitSteeringIfChanged(r);
    expect(sha).not.toBeNull();
    expect(repo.git("log", "-1", "--format=%B", sha!).trim()).toBe("steer: PROGRAM.md updated");
    expect(repo.git("show", "--name-only", "--format=", sha!).trim()).toBe("PROGRAM.md");
    expect(await commitSteeringIfChanged(r)).toBeNull();
    expect(repo.git("status", "--porcelain").trim()).toBe("M README.md");
  });

  it("commits an operator's config edit the same way, one commit per steering file", async () => {
    repo = makeRepo("steer-config");
    const r = openRepo(repo.root);
    repo.write("experiment_config.yaml", "benchmark: example\nmax_iterations: 40\n");
    repo.write("PROGRAM.md", "# Program\nFocus on refunds.\n");
    const before = Number(repo.git("rev-list", "--count", "HEAD").trim());
    await commitSteeringIfChanged(r);
    expect(Number(repo.git("rev-list", "--count", "HEAD").trim())).toBe(before + 2);
    expect(repo.git("log", "-2", "--format=%s").trim().split("\n").sort()).toEqual([
      "steer: PROGRAM.md updated",
      "steer: experiment_config.yaml updated",
    ]);
    expect(repo.git("status", "--porcelain").trim()).toBe("");
  });
});
