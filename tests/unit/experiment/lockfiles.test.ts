/**
 * The agent's packages are pinned with the baseline: a lockfile changed between runs is refused at start,
 * naming `rebaseline`, which pins the new one; and a candidate that changes a lockfile stays rejected by the
 * gate's file guard.
 */
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createStandInSteps } from "../../../dev/steps/stand-in.ts";
import { main } from "../../../src/cli/program.ts";
import type { StepsFactory } from "../../../src/cli/run.ts";
import { lockfileChange, lockfilesOf, pinLockfiles } from "../../../src/experiment/lockfiles.ts";
import { fileGuard } from "../../../src/gate/decide.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const stepsFactory: StepsFactory = (exp, opened, clock) =>
  createStandInSteps({ paths: exp.paths, journal: opened.journal, clock, delayMs: 0 });
const config = { agent_file: "agent/agent.ts" };

async function cli(args: string[]) {
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", ...args], { stdout: new Capture(), stderr, stepsFactory });
  return { code, err: stderr.text };
}

const commit = (dir: string, message: string) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", message], { cwd: dir });

describe("the agent's lockfiles", () => {
  it("finds each package manager's lockfile, and names what changed, was added or went", () => {
    const dir = tempDir();
    for (const name of ["package-lock.json", "pnpm-lock.yaml", "requirements-dev.txt", "uv.lock", "notes.txt"]) {
      writeFileSync(join(dir, name), `${name} v1\n`);
    }
    expect(Object.keys(lockfilesOf(dir, config))).toEqual([
      "package-lock.json",
      "pnpm-lock.yaml",
      "requirements-dev.txt",
      "uv.lock",
    ]);
    const journal = Journal.open(join(dir, "journal.sqlite"));
    try {
      pinLockfiles(journal.pins, dir, config);
      expect(lockfileChange(journal.pins, dir, config)).toEqual({ problem: null, pinnedNow: false });
      writeFileSync(join(dir, "uv.lock"), "uv.lock v2\n");
      writeFileSync(join(dir, "poetry.lock"), "new\n");
      rmSync(join(dir, "requirements-dev.txt"));
      const { problem } = lockfileChange(journal.pins, dir, config);
      expect(problem).toMatch(
        /^the agent's packages changed since they were pinned with the baseline: poetry\.lock \(new\), requirements-dev\.txt \(removed\), uv\.lock;/,
      );
      expect(problem).toMatch(/run `auto-harness rebaseline`/);
    } finally {
      journal.close();
    }
  });

  it("a run refuses to start on a changed lockfile, writing no run, until rebaseline pins it", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 1 });
    writeFileSync(join(dir, "package-lock.json"), '{"lockfileVersion":3,"packages":{"openai":"6.0.0"}}\n');
    execFileSync("git", ["add", "package-lock.json"], { cwd: dir });
    commit(dir, "lockfile");
    const journalFile = join(dir, "workspace", "journal.sqlite");
    const journal = Journal.open(journalFile);
    pinLockfiles(journal.pins, dir, config);
    journal.close();

    // The operator upgrades a package between runs.
    writeFileSync(join(dir, "package-lock.json"), '{"lockfileVersion":3,"packages":{"openai":"6.49.0"}}\n');
    commit(dir, "upgrade openai");
    const refused = await cli(["run", "--dir", dir]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/package-lock\.json; .*run `auto-harness rebaseline`/);
    const after = Journal.open(journalFile, { readonly: true });
    expect(after.runs.latestRun()).toBeUndefined();
    after.close();

    // What rebaseline does after measuring the baseline again: the new lockfile is the pinned one.
    const repin = Journal.open(journalFile);
    pinLockfiles(repin.pins, dir, config);
    repin.close();
    const ran = await cli(["run", "--dir", dir]);
    expect(ran.code, ran.err).toBe(0);
  });

  it("a candidate that changes a lockfile or the virtualenv is rejected by the gate's file guard", () => {
    for (const path of [
      "package-lock.json",
      "pnpm-lock.yaml",
      "requirements.txt",
      ".venv/lib/python3.11/site-packages/x.py",
    ]) {
      const verdict = fileGuard(
        [
          { path, kind: "modified" },
          { path: "agent/agent.ts", kind: "modified" },
        ],
        "agent/agent.ts",
      );
      expect(verdict).toEqual({ passed: false, offending: [path] });
    }
  });
});
