import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { loopIterationOf, readResults } from "../../../src/workspace/files.ts";
import { expectInvariants } from "../../helpers/expect-invariants.ts";
import { preparedExperiment, REAL_RECORD_CLI, readState, type Spawned, spawnCli } from "../../helpers/experiment.ts";
import { damageRootPage } from "../../helpers/journal-damage.ts";
import { tempDir } from "../../helpers/temp.ts";

/** Iterations 1 and 3 are accepted, 2 rejected. */
const ITERATIONS = 3;
const FAST = { STAND_IN_DELAY_MS: "5" };

const daemon = (dir: string, env: Record<string, string> = {}): Spawned =>
  spawnCli(["daemon", "--dir", dir], { ...FAST, ...env }, REAL_RECORD_CLI);

async function crashAt(dir: string, point: string): Promise<void> {
  const cli = daemon(dir, { AUTO_HARNESS_CRASH_AT: point });
  const { signal } = await cli.exited;
  expect(signal, cli.stderr()).toBe("SIGKILL");
}

/** Runs `daemon` until the run is over; returns everything it printed. */
async function finish(dir: string): Promise<string> {
  let err = "";
  for (let round = 0; round < 3; round++) {
    const cli = daemon(dir);
    const { code } = await cli.exited;
    err += cli.stderr();
    if (code === EXIT_NOTHING_TO_DO) return err;
    expect(code, cli.stderr()).toBe(0);
  }
  throw new Error(`the run did not finish:\n${err}`);
}

const experiment = () => preparedExperiment(tempDir("faults-"), { max_iterations: ITERATIONS, patience: 50 });
const ws = (dir: string, file: string) => join(dir, "workspace", file);
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("stale git state after a kill", () => {
  it("index.lock and a ref lock left by a commit cut short are removed on resume, and the iteration is recorded", async () => {
    const dir = experiment();
    await crashAt(dir, "record:before-commit:1");
    // What a git killed inside `git commit` leaves: the index lock and the branch ref's lock.
    const branch = execFileSync("git", ["symbolic-ref", "--short", "HEAD"], { cwd: dir, encoding: "utf8" }).trim();
    writeFileSync(join(dir, ".git", "index.lock"), "");
    writeFileSync(join(dir, ".git", "refs", "heads", `${branch}.lock`), "");
    const err = await finish(dir);
    expect(err).toContain("workspace check: .git/index.lock: left by a killed git; removed");
    expect(err).toContain(`workspace check: .git/refs/heads/${branch}.lock: left by a killed git; removed`);
    expect(existsSync(join(dir, ".git", "index.lock"))).toBe(false);
    expect(expectInvariants(dir, ITERATIONS)).toEqual([1, 3]);
  }, 120_000);
});

describe("an error retrying cannot fix pauses the run; a fixed environment resumes it", () => {
  it("a damaged suite.json pauses in the gate with file and line (exit 2); restoring it resumes the same run", async () => {
    const dir = experiment();
    writeFileSync(ws(dir, "suite.json"), '{ "tasks": [\n');
    const cli = daemon(dir);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(2);
    expect(cli.stderr()).toMatch(/run paused: .*suite\.json:\d+: not valid JSON/);
    expect(cli.stderr()).toMatch(/paused in gate: fix the cause above, then `auto-harness resume`/);
    expect(cli.stderr()).not.toMatch(/this is a bug/);
    expect(readState(ws(dir, "journal.sqlite"))).toEqual({ state: "paused", status: "paused" });

    rmSync(ws(dir, "suite.json"));
    await finish(dir);
    expect(expectInvariants(dir, ITERATIONS)).toEqual([1, 3]);
  }, 120_000);
});

describe("cross-checks between the journal, results.tsv, learnings.md and git", () => {
  it("a torn, duplicated and truncated results.tsv and learnings.md are reported with file and line and rebuilt", async () => {
    const dir = experiment();
    // Iterations 1 and 2 are finished; the daemon dies in iteration 3's gate.
    await crashAt(dir, "gate:mid:3");
    const results = ws(dir, "results.tsv");
    const before = readResults(results);
    expect(before.map(loopIterationOf)).toEqual([0, 1]);
    const lines = readFileSync(results, "utf8").split("\n");
    // The baseline row twice, and iteration 1's row torn inside its timestamp, with no newline.
    writeFileSync(results, [lines[0], lines[1], lines[1], (lines[2] as string).slice(0, -10)].join("\n"));

    const learnings = ws(dir, "learnings.md");
    const text = readFileSync(learnings, "utf8");
    const second = text.indexOf("<!-- harness:entry ");
    const third = text.indexOf("<!-- harness:entry ", second + 1);
    const entry1 = text.slice(second, third);
    // Entry 1 twice; entry 2 cut inside its first field (a file truncated mid-write).
    const cut = text.indexOf("**What changed:**", third) + 24;
    writeFileSync(learnings, `${text.slice(0, third)}${entry1}${text.slice(third, cut)}`);

    const err = await finish(dir);
    expect(err).toMatch(/workspace check: \S+results\.tsv:3: duplicate row for iteration 0; dropped/);
    expect(err).toMatch(/workspace check: \S+results\.tsv:4: torn last line \(no trailing newline\).*; dropped/);
    expect(err).toMatch(
      /workspace check: \S+results\.tsv: no row for iteration 1, which the journal records accepted as [0-9a-f]{7}; rebuilt from the journal/,
    );
    expect(err).toMatch(
      /workspace check: \S+learnings\.md:\d+: duplicate of <!-- harness:entry run=\S+ iteration=1 -->/,
    );
    expect(err).toMatch(
      /workspace check: \S+learnings\.md:\d+: <!-- harness:entry run=\S+ iteration=2 --> is cut short \(no trailing newline\); rebuilt from the journal/,
    );
    expect(expectInvariants(dir, ITERATIONS)).toEqual([1, 3]);
    // The rebuilt row is the one the record step wrote: same score, same commit.
    const row1 = readResults(results).find((r) => loopIterationOf(r) === 1)!;
    const original = before.find((r) => loopIterationOf(r) === 1)!;
    expect({ ...row1, timestamp: "" }).toEqual({ ...original, timestamp: "" });
    // The rebuilt entry is the one the learn step wrote.
    expect(readFileSync(learnings, "utf8")).toContain(text.slice(third, cut));
  }, 120_000);
});

describe("a lost journal in a workspace with a history is refused, never re-created", () => {
  it("an empty journal.sqlite beside its WAL: exit 2, the journal not re-created and the WAL untouched", async () => {
    const dir = experiment();
    await crashAt(dir, "gate:mid:3");
    const journal = ws(dir, "journal.sqlite");
    expect(statSync(`${journal}-wal`).size).toBeGreaterThan(0);
    const wal = sha256(`${journal}-wal`);
    truncateSync(journal, 0);
    for (const command of ["resume", "daemon", "status"]) {
      const cli = spawnCli([command, "--dir", dir], FAST, REAL_RECORD_CLI);
      const { code } = await cli.exited;
      expect(code, `${command}: ${cli.stderr()}`).toBe(2);
      expect(cli.stderr()).toMatch(/journal \S+journal\.sqlite (lost its contents|is empty)/);
      expect(cli.stderr()).toMatch(/left untouched/);
      expect(cli.stderr()).not.toMatch(/this is a bug/);
    }
    expect(statSync(journal).size).toBe(0);
    expect(sha256(`${journal}-wal`)).toBe(wal);
  }, 120_000);

  it("a missing journal: exit 2 naming the history found, and no new journal", async () => {
    const dir = experiment();
    await crashAt(dir, "gate:mid:3");
    const journal = ws(dir, "journal.sqlite");
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${journal}${suffix}`, { force: true });
    const cli = spawnCli(["resume", "--dir", dir], FAST, REAL_RECORD_CLI);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(2);
    expect(cli.stderr()).toMatch(/is missing in a workspace with a history; it was not re-created/);
    expect(cli.stderr()).toMatch(/results\.tsv has 1 row\(s\) after the baseline/);
    expect(cli.stderr()).toMatch(/learnings\.md has 2 entries/);
    expect(cli.stderr()).toMatch(/git history has 1 commit\(s\) with a Harness-Run trailer/);
    expect(existsSync(journal)).toBe(false);
  }, 120_000);
});

describe("journal damage is JOURNAL_CORRUPT with the file and what SQLite said, for run and status", () => {
  const damages: [string, (file: string) => void][] = [
    [
      "a bad header",
      (file) => {
        const bytes = readFileSync(file);
        bytes.write("this is no db!!", 0);
        writeFileSync(file, bytes);
      },
    ],
    ["a file truncated to half", (file) => truncateSync(file, Math.floor(statSync(file).size / 2))],
  ];
  it.each(damages)(
    "%s: exit 2 with recovery steps, never 'this is a bug'",
    async (_name, damage) => {
      const dir = preparedExperiment(tempDir("faults-"), { max_iterations: 4, patience: 50 });
      await finish(dir);
      const journal = ws(dir, "journal.sqlite");
      expect(existsSync(`${journal}-wal`)).toBe(false);
      damage(journal);
      for (const command of ["resume", "status", "daemon"]) {
        const cli = spawnCli([command, "--dir", dir], FAST, REAL_RECORD_CLI);
        const { code } = await cli.exited;
        expect(code, `${command}: ${cli.stderr()}`).toBe(2);
        expect(cli.stderr()).toMatch(/journal \S+journal\.sqlite .*\(SQLite: .+\)\. To recover: stop the daemon/);
        expect(cli.stderr()).toMatch(/\.recover/);
        expect(cli.stderr()).not.toMatch(/this is a bug|\n\s+at /);
      }
    },
    120_000,
  );
});

describe("the closing summary, once lost, is rebuilt like the iteration entries", () => {
  it("a learnings.md that lost the summary gets it back, as written, at the next start", async () => {
    const dir = experiment();
    await finish(dir);
    const learnings = ws(dir, "learnings.md");
    const text = readFileSync(learnings, "utf8");
    const at = text.indexOf("<!-- harness:summary ");
    expect(at).toBeGreaterThan(0);
    // The file as a restore from an older copy leaves it: every entry, no summary.
    writeFileSync(learnings, text.slice(0, at));
    const cli = daemon(dir);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(EXIT_NOTHING_TO_DO);
    expect(cli.stderr()).toMatch(
      /workspace check: \S+learnings\.md: no closing summary for run-\S+, which the journal records written; rebuilt from the journal/,
    );
    expect(readFileSync(learnings, "utf8")).toBe(text);
    expect(expectInvariants(dir, ITERATIONS)).toEqual([1, 3]);
  }, 120_000);
});

describe("a damaged journal is refused as found", () => {
  it("a bad page under a killed daemon's WAL: exit 2, the file and its WAL byte for byte as they were", async () => {
    const dir = experiment();
    // A finished run leaves the journal checkpointed; a second one, killed mid-gate, leaves its commits in the WAL.
    await finish(dir);
    const killed = spawnCli(
      ["daemon", "--new", "--dir", dir],
      { ...FAST, AUTO_HARNESS_CRASH_AT: "gate:mid" },
      REAL_RECORD_CLI,
    );
    expect((await killed.exited).signal, killed.stderr()).toBe("SIGKILL");
    const journal = ws(dir, "journal.sqlite");
    expect(statSync(`${journal}-wal`).size).toBeGreaterThan(0);
    // A page that never changes in a stand-in night: its copy in the file is the one SQLite reads.
    damageRootPage(journal, "process_groups");
    const before = [sha256(journal), sha256(`${journal}-wal`)];
    for (const command of ["resume", "daemon"]) {
      const cli = spawnCli([command, "--dir", dir], FAST, REAL_RECORD_CLI);
      const { code } = await cli.exited;
      expect(code, `${command}: ${cli.stderr()}`).toBe(2);
      expect(cli.stderr()).toMatch(/journal \S+journal\.sqlite failed its integrity check/);
      expect([sha256(journal), existsSync(`${journal}-wal`) ? sha256(`${journal}-wal`) : "gone"]).toEqual(before);
    }
  }, 120_000);
});
