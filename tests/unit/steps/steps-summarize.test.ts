import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/clock.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { createSteps } from "../../../src/steps/steps.ts";
import { AGENT_V1, BASELINE_RESULTS, makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

describe("the summarize step", () => {
  it("leaves no ungated edit behind when the run stops mid-iteration, and writes the summary once", async () => {
    repo = makeRepo("summarize");
    repo.write("workspace/results.tsv", BASELINE_RESULTS);
    repo.write("agent/agent.ts", "export const prompt = 'half-made edit';\n");
    const journal = Journal.open(join(repo.root, "workspace", "journal.sqlite"));
    const { log } = createLogger({ stdout: false });
    const steps = createSteps({
      root: repo.root,
      config: configSchema.parse({ benchmark: "example" }),
      journal,
      log,
      clock: new ManualClock(0, true),
      // Not reached by summarize.
      runner: {} as never,
      codingAgent: {} as never,
      repo: openRepo(repo.root),
    });
    const input = {
      runId: "run-s",
      stopReason: "budget_usd 5 reached",
      bestValScore: 0.6,
      accepted: 0,
      rejected: 1,
      iterations: 1,
    };
    const signal = new AbortController().signal;
    expect(await steps.summarize(input, signal)).toEqual({ written: true });
    expect(repo.read("agent/agent.ts")).toBe(AGENT_V1);
    expect(await steps.summarize(input, signal)).toEqual({ written: false });
    expect(repo.read("workspace/learnings.md").split("harness:summary run=run-s").length - 1).toBe(1);
    journal.close();
  });
});
