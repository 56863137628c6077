import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseRecordArgs, runRecordCommand } from "../../../src/cli/record.ts";
import { UserError } from "../../../src/errors.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { readResults } from "../../../src/workspace/files.ts";
import { BASELINE_RESULTS, makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

const RESULTS = BASELINE_RESULTS;
const now = () => new Date("2026-03-01T02:00:00.000Z");

async function record(r: TempRepo, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRecordCommand({
    root: r.root,
    repo: openRepo(r.root),
    options: argv,
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    now,
  });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

function experiment(name: string): TempRepo {
  const r = makeRepo(name);
  r.write("workspace/results.tsv", RESULTS);
  return r;
}

describe("record command", () => {
  it("commits a changed agent/agent.ts, appends the next row, exits 0; the same iteration again changes nothing", async () => {
    repo = experiment("rcmd");
    repo.write("agent/agent.ts", "export const prompt = 'manual';\n");
    const res = await record(repo, ["--val-score", "0.71234", "--evals-passed", "3", "--evals-total", "4"]);
    expect(res.code).toBe(0);
    const sha = repo.git("rev-parse", "--short=7", "HEAD").trim();
    expect(res.stdout).toBe(`committed agent/agent.ts as ${sha}\nrecorded iteration 1: val_score 0.7123, evals 3/4\n`);
    expect(repo.git("log", "-1", "--format=%s").trim()).toBe("improve: iteration 1 (val_score 0.7123)");
    const file = join(repo.root, "workspace/results.tsv");
    expect(readFileSync(file, "utf8")).toBe(`${RESULTS}1\t0.7123\t${sha}\t3\t4\t2026-03-01T02:00:00.000Z\n`);

    const again = await record(repo, [
      "--val-score",
      "0.7",
      "--evals-passed",
      "3",
      "--evals-total",
      "4",
      "--iteration",
      "1",
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`iteration 1 is already recorded (commit ${sha}); nothing changed\n`);
    expect(readFileSync(file, "utf8").trim().split("\n")).toHaveLength(3);
  });

  it("records an unchanged agent against HEAD without committing", async () => {
    repo = experiment("rcmd-head");
    const head = repo.git("rev-parse", "--short=7", "HEAD").trim();
    const res = await record(repo, ["--val-score", "0.5", "--evals-passed", "0", "--evals-total", "0"]);
    expect(res.code).toBe(0);
    expect(repo.git("rev-list", "--count", "HEAD").trim()).toBe("1");
    expect(readFileSync(join(repo.root, "workspace/results.tsv"), "utf8")).toContain(
      `1\t0.5000\t${head}\t0\t0\t2026-03-01T02:00:00.000Z\n`,
    );
  });

  it("numbers rows as the original's record.py does, and refuses an --iteration that is not the next row", async () => {
    repo = experiment("rcmd-numbering");
    const args = ["--val-score", "0.5", "--evals-passed", "0", "--evals-total", "0"];
    const skip = await record(repo, [...args, "--iteration", "3"]);
    expect(skip.code).toBe(2);
    expect(skip.stderr).toContain("--iteration 3: the next row of results.tsv is 1");
    expect((await record(repo, args)).code).toBe(0);
    expect((await record(repo, args)).code).toBe(0);
    expect(readResults(join(repo.root, "workspace/results.tsv")).map((r) => r.iteration)).toEqual([0, 1, 2]);
  });

  it.each([
    [["--evals-passed", "1", "--evals-total", "2"], "--val-score is required"],
    [
      ["--val-score", "1.5", "--evals-passed", "1", "--evals-total", "2"],
      "--val-score must be a number between 0 and 1",
    ],
    [
      ["--val-score", "0.5", "--evals-passed", "3", "--evals-total", "2"],
      "--evals-passed (3) exceeds --evals-total (2)",
    ],
    [
      ["--val-score", "0.5", "--evals-passed", "x", "--evals-total", "2"],
      '--evals-passed must be a whole number, got "x"',
    ],
    [["--val-score", "0.5", "--bogus"], "Unknown option '--bogus'"],
  ])("exits 2 on bad usage %j", async (argv, message) => {
    repo = experiment("rcmd-usage");
    const res = await record(repo, argv);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
    expect(res.stderr).toContain("usage: record --val-score X --evals-passed N --evals-total M");
    expect(readFileSync(join(repo.root, "workspace/results.tsv"), "utf8")).toBe(RESULTS);
  });

  it("exits 2 on a damaged results.tsv, names file and line, and neither commits nor writes", async () => {
    repo = experiment("rcmd-damaged");
    repo.write("agent/agent.ts", "export const prompt = 'manual';\n");
    const file = join(repo.root, "workspace/results.tsv");
    const damaged = RESULTS.replace("iteration\tval_score", "iter\tval_score");
    writeFileSync(file, damaged);
    const res = await record(repo, ["--val-score", "0.5", "--evals-passed", "1", "--evals-total", "1"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(new RegExp(`^record failed \\(FILE_DAMAGED\\): ${file}:1: header must start with`));
    expect(readFileSync(file, "utf8")).toBe(damaged);
    expect(repo.git("rev-list", "--count", "HEAD").trim()).toBe("1");
  });

  it("parses the original flags", () => {
    expect(parseRecordArgs(["--val-score", "0.25", "--evals-passed", "2", "--evals-total", "8"])).toEqual({
      valScore: 0.25,
      evalsPassed: 2,
      evalsTotal: 8,
    });
    expect(() => parseRecordArgs([])).toThrow(UserError);
  });
});
