/**
 * Every bad input a user can type, through the real CLI on a real scaffold: one clear line, exit 2, and the
 * experiment directory byte for byte as it was (git included: no commit). Nothing ends in "internal error".
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { pythonFor } from "../../../src/benchmark/sealed/sandbox.ts";
import { PREPARE_AGAIN } from "../../../src/cli/prepare.ts";
import { classifyFault } from "../../../src/errors.ts";
import { cli } from "../../helpers/cli.ts";
import { preparedExperiment, REPO_ROOT, sandboxLineHere } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

/** Every file under dir (git's own included) with its content hash: what "nothing written" means. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const f = join(d, name);
      if (statSync(f).isDirectory()) walk(f);
      else out[f.slice(dir.length)] = createHash("sha256").update(readFileSync(f)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

const commits = (dir: string) => execFileSync("git", ["rev-list", "--all"], { cwd: dir, encoding: "utf8" });

/** `prepare` on dir refuses with `line`, exit 2, and leaves the directory and its git history as they were. */
async function expectPrepareRefuses(dir: string, line: RegExp): Promise<void> {
  const before = snapshot(dir);
  const head = commits(dir);
  const r = await cli(["prepare", "--dir", dir]);
  expect(r.code).toBe(2);
  expect(r.err).toMatch(line);
  expect(r.err).not.toMatch(/internal error/);
  expect(snapshot(dir)).toEqual(before);
  expect(commits(dir)).toBe(head);
}

async function scaffold(benchmark: "local" | "command" = "local"): Promise<string> {
  const dir = join(tempDir("bad-input-"), "exp");
  const r = await cli(["init", "--dir", dir, "--benchmark", benchmark]);
  expect(r.code, r.err).toBe(0);
  return dir;
}

const BAD: [string, (dir: string) => void, RegExp][] = [
  [
    "an agent with a syntax error",
    (d) => writeFileSync(join(d, "agent/agent.ts"), "export default { async run(task) { return ( };\n"),
    /^auto-harness: agent\/agent\.ts does not load: .+; fix it, then run the command again\n$/,
  ],
  [
    "an agent without a default export",
    (d) => writeFileSync(join(d, "agent/agent.ts"), "export const greeting = 'hello';\n"),
    /^auto-harness: agent\/agent\.ts does not load: .*default export.*\n$/,
  ],
  [
    "a tasks file with a line that is not JSON",
    (d) => writeFileSync(join(d, "tasks.jsonl"), '{"id":"a","input":"x","expected":"y"}\n{"id": "b", oops\n'),
    /^auto-harness: .*tasks\.jsonl:2: not valid JSON: .*\n$/,
  ],
  [
    "a tasks file with a duplicate id",
    (d) =>
      writeFileSync(
        join(d, "tasks.jsonl"),
        '{"id":"a","input":"x","expected":"y"}\n{"id":"a","input":"z","expected":"w"}\n',
      ),
    /^auto-harness: .*tasks\.jsonl:2: duplicate task id "a"\n$/,
  ],
  [
    "a missing scorer",
    (d) => rmSync(join(d, "scorer.ts")),
    /^auto-harness: the scorer scorer\.ts does not exist; write it, or fix local\.scorer in experiment_config\.yaml\n$/,
  ],
  [
    "a scorer that does not load",
    (d) => writeFileSync(join(d, "scorer.ts"), "export default function score( {\n"),
    /^auto-harness: the scorer scorer\.ts does not load: .+\n$/,
  ],
  [
    "a scorer that throws",
    (d) =>
      writeFileSync(
        join(d, "scorer.ts"),
        "export default function score() { throw new Error('no expected field'); }\n",
      ),
    /^auto-harness: the scorer scorer\.ts threw on task "[^"]+" with an empty answer: no expected field; a scorer returns a reward for any answer \(0 for a wrong one\)\n$/,
  ],
];

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("prepare checks everything before writing anything", () => {
  it.each(BAD)(
    "%s: one line, exit 2, the directory and git unchanged",
    async (_name, breakIt, line) => {
      const dir = await scaffold();
      breakIt(dir);
      await expectPrepareRefuses(dir, line);
      expect(existsSync(join(dir, "workspace"))).toBe(false);
    },
    60_000,
  );

  it("a benchmark command that fails: its own words, exit 2, nothing written", async () => {
    const dir = await scaffold("command");
    writeFileSync(join(dir, "bench/run_bench.py"), "import sys\nsys.exit('the benchmark is not installed')\n");
    const before = snapshot(dir);
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^auto-harness: the benchmark command `python3 bench\/run_bench\.py` failed when asked for its tasks \(HARNESS_SPLIT=all, HARNESS_LIST_ONLY=1\); fix it in experiment_config\.yaml \(command\.run\): benchmark command failed: exit code 1; its stderr ends:\n[\s\S]*the benchmark is not installed/,
    );
    expect(snapshot(dir)).toEqual(before);
  }, 60_000);
});

/** The scaffold's experiment_config.yaml with one edit (and any new file), committed as a user would before `prepare`. */
function editConfig(dir: string, from: string, to: string): void {
  const config = join(dir, "experiment_config.yaml");
  const text = readFileSync(config, "utf8");
  expect(text).toContain(from);
  writeFileSync(config, text.replace(from, to));
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, stdio: "pipe" });
  git("add", "-A");
  git("commit", "-qm", "config");
}

describe("a tool that is not installed: the first line names the field and what to install or set", () => {
  afterEach(() => vi.unstubAllEnvs());

  it.each([
    [
      "command.run's own program",
      "no-such-bench-tool bench/run_bench.py",
      /^auto-harness: command\.run: `no-such-bench-tool` is not on PATH; install it, or name it by its path in command\.run \(experiment_config\.yaml\)\n$/,
    ],
    [
      "a program its script runs",
      "sh bench/run.sh",
      /^auto-harness: command\.run: `no-such-bench-tool` is not installed \(the benchmark command `sh bench\/run\.sh` exits 127, not found on PATH\); install it, or fix command\.run in experiment_config\.yaml; .*\n(.*\n)* {2}\| .*no-such-bench-tool: (command )?not found\n$/,
    ],
  ])(
    "a benchmark command whose tool is missing (%s): that first, exit 2, nothing written",
    async (_name, run, said) => {
      const dir = await scaffold("command");
      writeFileSync(join(dir, "bench", "run.sh"), 'no-such-bench-tool "$@"\n');
      editConfig(dir, "python3 bench/run_bench.py", run);
      await expectPrepareRefuses(dir, said);
    },
    60_000,
  );

  it.each([
    [
      "a sealed agent",
      "local" as const,
      null,
      /^auto-harness: sandbox: bubblewrap \(bwrap\) is not installed, .*: install the Debian package `bubblewrap`, or set `sandbox: none` in experiment_config\.yaml/,
    ],
    [
      "a sealed benchmark command",
      "command" as const,
      ["timeout: 3600 }", "timeout: 3600, sandbox: true }"] as const,
      /^auto-harness: command\.sandbox: bubblewrap \(bwrap\) is not installed, .*: install the Debian package `bubblewrap`, or set `sandbox: false` under `command` in experiment_config\.yaml/,
    ],
  ])("%s where bubblewrap is missing: one line, exit 2, nothing written", async (_name, benchmark, edit, line) => {
    const dir = await scaffold(benchmark);
    if (edit) editConfig(dir, ...edit);
    const before = snapshot(dir);
    // A PATH without bwrap (the harness looks for it there), as on a machine that lacks it.
    vi.stubEnv("PATH", tempDir("no-bwrap-"));
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err.trimEnd().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(line);
    expect(snapshot(dir)).toEqual(before);
  });
});

describe("a Python agent whose interpreter is missing: one line that names what to install or set", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("AUTO_HARNESS_PYTHON naming no interpreter: that, exit 2, nothing written (not a syntax error)", async () => {
    const dir = join(tempDir("bad-python-"), "exp");
    expect((await cli(["init", "--dir", dir, "--language", "python"])).code).toBe(0);
    if (sandboxLineHere()) editConfig(dir, "max_concurrency:", `${sandboxLineHere()}max_concurrency:`);
    vi.stubEnv("AUTO_HARNESS_PYTHON", "/nonexistent/python3");
    await expectPrepareRefuses(
      dir,
      /^auto-harness: .*AUTO_HARNESS_PYTHON is \/nonexistent\/python3, which is not an executable file: point it at a Python 3 interpreter, or unset it to use \/usr\/bin\/python3.*\n$/,
    );
  }, 60_000);

  it("no system Python and none on PATH: sealed, the Debian package; unsealed, Python 3 or AUTO_HARNESS_PYTHON", () => {
    vi.stubEnv("PATH", tempDir("no-python-"));
    vi.stubEnv("AUTO_HARNESS_PYTHON", "");
    expect(() => pythonFor("bwrap", "/nonexistent/python3")).toThrow(/install the Debian package `python3`/);
    expect(() => pythonFor("none", "/nonexistent/python3")).toThrow(
      "a Python agent needs python3, and none is on PATH: install Python 3, or set AUTO_HARNESS_PYTHON to an interpreter",
    );
  });
});

describe("the smaller doors", () => {
  it("init --dir <a path that does not exist yet> makes it (the README's own example)", async () => {
    const dir = join(tempDir(), "deeper", "exp");
    const r = await cli(["init", "--dir", dir]);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(dir, "README.md"), "utf8")).toContain("npx auto-harness prepare");
    expect(commits(dir).trim().split("\n")).toHaveLength(1);
  });

  it("run on a prepared experiment whose scorer went missing: exit 2 before the lock or the journal", async () => {
    const dir = preparedExperiment(tempDir(), { benchmark: "local", local: { tasks: "tasks.jsonl", scorer: "s.ts" } });
    writeFileSync(join(dir, "tasks.jsonl"), '{"id":"a","input":"x"}\n');
    const before = snapshot(dir);
    const r = await cli(["run", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      "auto-harness: the scorer s.ts does not exist; write it, or fix local.scorer in experiment_config.yaml\n",
    );
    expect(snapshot(dir)).toEqual(before);
  });

  it("a disk that fills during prepare: exit 75 with prepare's own next step, not a run's resume", () => {
    const full = classifyFault(Object.assign(new Error("no space left"), { code: "ENOSPC" }), undefined, PREPARE_AGAIN);
    expect(full?.exitCode).toBe(75);
    expect(full?.message).toMatch(
      /^disk full writing a file \(ENOSPC: no space left\); free space .*, then run `auto-harness prepare` again: it keeps what it made and goes on from there$/,
    );
    expect(full?.message).not.toMatch(/resume/);
  });

  it("benchmark --split train before prepare says what to do", async () => {
    const dir = await scaffold();
    const r = await cli(["benchmark", "--split", "train", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /is not prepared; run `auto-harness prepare` first: it checks the agent, the tasks and the scorer \(a scorer's exception included\), then measures the baseline\n$/,
    );
  });
});

// A read-only mount is what "unwritable" means to root: a private mount namespace makes one for one child.
const canUnshare = spawnSync("unshare", ["-m", "true"]).status === 0;

describe.skipIf(!canUnshare || !haveTool("bwrap", "bubblewrap"))("an unwritable experiment directory", () => {
  it("prepare says so with the fix (not 'resume'), exit 2, nothing written", async () => {
    const dir = await scaffold();
    mkdirSync(join(dir, "workspace"));
    const before = snapshot(dir);
    const cliPath = join(REPO_ROOT, "bin", "auto-harness.js");
    const r = spawnSync(
      "unshare",
      [
        "-m",
        "sh",
        "-c",
        `mount --bind -o ro "$0" "$0" && exec "$1" "$2" prepare --dir "$0"`,
        dir,
        process.execPath,
        cliPath,
      ],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `auto-harness: ${dir} is not writable (EROFS); make it writable (or pick another --dir), then run \`auto-harness prepare\` again; nothing was written\n`,
    );
    expect(r.stderr).not.toMatch(/resume/);
    expect(snapshot(dir)).toEqual(before);
  }, 60_000);
});
