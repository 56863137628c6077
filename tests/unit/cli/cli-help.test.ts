import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { smallSplitWarning } from "../../../src/experiment/prepare.ts";
import { cli } from "../../helpers/cli.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";

describe("the CLI's own words", () => {
  it("--version prints package.json's version, exit 0", async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    const r = await cli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${version}\n`);
  });

  it.each([["prepare"], ["run"], ["status"], ["view"], ["report"], ["gate"]])(
    "%s --help shows the global options and the exit codes",
    async (command) => {
      const r = await cli([command, "--help"]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Global Options:\n\s+-d, --dir <path>\s+experiment directory/);
      expect(r.out).toMatch(/-c, --config <file>/);
      expect(r.out).toMatch(
        /Exit codes:\n\s+0\s+success\n\s+1\s+.*\n\s+2\s+bad usage, configuration or input.*\n\s+64\s+.*\n\s+75\s+/,
      );
    },
  );

  it("report --help names --run, view --help names --port", async () => {
    expect((await cli(["report", "--help"])).out).toMatch(/--run <id>\s+the run to show \(default: the latest\)/);
    expect((await cli(["view", "--help"])).out).toMatch(/--port <n>/);
  });

  it("a bad --port is one line, exit 2", async () => {
    const r = await cli(["view", "--port", "http", "--dir", REPO_ROOT]);
    expect(r.code).toBe(2);
    expect(r.err).toBe('auto-harness: --port must be a whole number from 0 to 65535, got "http"\n');
  });
});

describe("the small-split warning", () => {
  it.each([
    [
      2,
      "the test split has only 2 task(s): each one moves val_score by 0.50, so the gate can hardly tell an improvement from luck; add tasks (30 or more in the test split is a useful start)",
    ],
    [
      9,
      "the test split has only 9 task(s): each one moves val_score by 0.11, so the gate can hardly tell an improvement from luck; add tasks (30 or more in the test split is a useful start)",
    ],
    [10, null],
  ])("%i test tasks", (n, line) => {
    expect(smallSplitWarning(n)).toBe(line);
  });
});
