import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { commitSteeringIfChanged } from "../../../src/gate/gate.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { recordIteration } from "../../../src/record/record.ts";
import { AGENT_V1, makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

/** Hooks a hostile agent would plant: each writes a marker file (and the environment it saw) when git runs it. */
function plantHooks(root: string, marker: string): void {
  for (const hook of ["pre-commit", "post-commit", "commit-msg", "prepare-commit-msg", "post-checkout"]) {
    const file = join(root, ".git", "hooks", hook);
    writeFileSync(file, `#!/bin/sh\necho "${hook}" >> "${marker}"\nenv >> "${marker}"\nexit 0\n`);
    chmodSync(file, 0o755);
  }
}

describe("git hooks planted in the experiment's repository", () => {
  it("never run when the harness commits an accepted change, restores a rejected one or commits steering", async () => {
    repo = makeRepo("hooks");
    const marker = join(repo.root, "..", `${repo.root.split("/").pop()}-hook-marker`);
    plantHooks(repo.root, marker);
    // The hooks are live: git itself runs them.
    repo.write("README.md", "# touched\n");
    repo.git("commit", "-qam", "fixture commit with hooks");
    expect(existsSync(marker)).toBe(true);
    const { rmSync } = await import("node:fs");
    rmSync(marker);

    const r = openRepo(repo.root);
    const gate = {
      passed: true,
      valScore: 0.9,
      previousBest: 0.5,
      suitePassed: 1,
      suiteTotal: 1,
      promoted: [],
      reasons: [],
    };
    const edit = {
      changed: true,
      hypothesis: "h",
      changeSummary: "s",
      commitMessage: "better prompt",
      pattern: "p",
      needsFromHuman: "none",
    };
    repo.write("workspace/results.tsv", "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\n");
    repo.write("agent/agent.ts", "export const prompt = 'v2';\n");
    const accepted = await recordIteration({
      root: repo.root,
      repo: r,
      runId: "run-h",
      iteration: 1,
      edit,
      gate,
      now: () => new Date(0),
    });
    expect(accepted.accepted).toBe(true);
    expect(repo.git("log", "-1", "--format=%s").trim()).toBe("improve: better prompt");

    repo.write("agent/agent.ts", AGENT_V1);
    const rejected = await recordIteration({
      root: repo.root,
      repo: r,
      runId: "run-h",
      iteration: 2,
      edit,
      gate: { ...gate, passed: false },
      now: () => new Date(0),
    });
    expect(rejected.accepted).toBe(false);
    expect(repo.read("agent/agent.ts")).toBe("export const prompt = 'v2';\n");

    repo.write("PROGRAM.md", "# Program\nfocus on refunds\n");
    expect(await commitSteeringIfChanged(r)).not.toBeNull();

    expect(existsSync(marker)).toBe(false);
  });
});
