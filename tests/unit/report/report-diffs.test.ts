import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../../src/clock.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { rejectedDiffKey } from "../../../src/journal/pins.ts";
import { createLogger } from "../../../src/log.ts";
import { gatherReport } from "../../../src/report/gather.ts";
import { renderDiff, renderReport } from "../../../src/report/render.ts";
import { createSteps } from "../../../src/steps/steps.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { preparedExperiment } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const edit = {
  changed: true,
  hypothesis: "say hi",
  changeSummary: "greets",
  commitMessage: "greet",
  pattern: "p",
  needsFromHuman: "none",
};
const rejectedGate = {
  passed: false,
  valScore: 0.3,
  previousBest: 0.5,
  suitePassed: 0,
  suiteTotal: 0,
  promoted: [],
  reasons: ["test: 0.3 < 0.5"],
};

describe("the report's diffs", () => {
  it("a rejected candidate's diff is journaled by the record step before the file is restored, and the report shows it", async () => {
    const dir = preparedExperiment(tempDir());
    const agent = join(dir, "agent", "agent.ts");
    const original = readFileSync(agent, "utf8");
    const longLine = `// ${"x".repeat(300)}`;
    writeFileSync(agent, `${original}export const greeting = "<b>hi</b>";\n${longLine}\n`);
    const journal = Journal.open(paths(dir).journal);
    journal.runs.createRun("run-r", {});
    const { log } = createLogger({ stdout: false });
    const steps = createSteps({
      root: dir,
      config: configSchema.parse({ benchmark: "example" }),
      journal,
      log,
      clock: systemClock,
      runner: {} as never,
      codingAgent: {} as never,
      repo: openRepo(dir),
    });
    const out = await steps.record(
      { runId: "run-r", iteration: 1, edit, gate: rejectedGate },
      new AbortController().signal,
    );
    expect(out.accepted).toBe(false);
    expect(readFileSync(agent, "utf8")).toBe(original);
    const kept = journal.pins.fact(rejectedDiffKey("run-r", 1)) as string;
    expect(kept).toMatch(/^\+export const greeting = "<b>hi<\/b>";$/m);
    // A re-run after a crash finds the file restored and keeps the diff it has.
    await steps.record({ runId: "run-r", iteration: 1, edit, gate: rejectedGate }, new AbortController().signal);
    expect(journal.pins.fact(rejectedDiffKey("run-r", 1))).toBe(kept);
    journal.runs.putIteration({
      runId: "run-r",
      iteration: 1,
      outcome: "rejected",
      valScore: 0.3,
      bestBefore: 0.5,
      summary: edit,
    });
    journal.pins.putFact("baseline_spend_usd", 0.42);
    journal.close();

    const data = await gatherReport({ paths: paths(dir), benchmark: "example", repo: openRepo(dir), now: new Date() });
    expect(data.iterations.find((i) => i.iteration === 1)?.diff).toBe(kept);
    const html = renderReport(data);
    expect(html).toContain("<summary>diff of the rejected candidate</summary>");
    expect(html).toContain('<span class="add">+export const greeting = &quot;&lt;b&gt;hi&lt;/b&gt;&quot;;</span>');
    // Not clipped: the long line is there whole, and wraps instead of being cut at a fixed width.
    expect(html).toContain(longLine);
    expect(html).toMatch(/pre\.diff \{[^}]*white-space: pre-wrap;/);
    expect(html).not.toMatch(/pre\.diff \{[^}]*max-width/);
    expect(html).toMatch(/baseline cost[\s\S]{0,80}\$0\.42/);
  });

  it("renderDiff classes each line: added, removed, hunk header, file header, context", () => {
    const html = renderDiff("--- a/agent.ts\n+++ b/agent.ts\n@@ -1,2 +1,2 @@\n same\n-old <x>\n+new & y\n");
    expect(html).toBe(
      '<pre class="diff"><span class="meta">--- a/agent.ts</span><span class="meta">+++ b/agent.ts</span>' +
        '<span class="hunk">@@ -1,2 +1,2 @@</span><span class="ctx"> same</span><span class="del">-old &lt;x&gt;</span>' +
        '<span class="add">+new &amp; y</span><span class="ctx"> </span></pre>',
    );
  });
});
