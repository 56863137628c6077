/**
 * One run per page: `report --run <id>` (default: the latest) shows that run's iterations, spend and gate
 * details alone, links every other run, and counts the holdout's scoring in the one spend total.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openRepo } from "../../../src/git/repo.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { renderReport } from "../../../src/report/render.ts";
import { appendResult, initResults } from "../../../src/workspace/files.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { cli } from "../../helpers/cli.ts";
import { llmCallRow } from "../../helpers/ledger.ts";
import { tempDir } from "../../helpers/temp.ts";

const call = (runId: string, iteration: number | null, costUsd: number) =>
  llmCallRow({ runId, iteration, role: iteration === null ? "agent" : "coding", costUsd });

/** Two nights: run-a accepted iteration 1 (0.6); run-b rejected 2 and accepted 3 (0.7), then scored its holdout. */
async function twoNights(): Promise<string> {
  const root = tempDir("report-runs-");
  const p = paths(root);
  writeFileSync(join(root, "experiment_config.yaml"), "benchmark: example\n");
  await openRepo(root).init();
  mkdirSync(p.workspace, { recursive: true });
  initResults(p.results);
  const row = { evalsPassed: 1, evalsTotal: 1, timestamp: "2026-01-01T00:00:00.000Z" };
  appendResult(p.results, { ...row, valScore: 0.5, commit: "baseline", extra: { loop_iteration: "0" } });
  appendResult(p.results, { ...row, valScore: 0.6, commit: "aaaaaaa", extra: { loop_iteration: "1", reason: "A" } });
  appendResult(p.results, { ...row, valScore: 0.7, commit: "bbbbbbb", extra: { loop_iteration: "3", reason: "B" } });
  let now = 1_000;
  const journal = Journal.open(p.journal, { now: () => now });
  try {
    journal.pins.pin("baseline", JSON.stringify({ valScore: 0.5 }));
    journal.pins.pin(
      "split",
      JSON.stringify({
        seed: 1,
        created_at: "2026-01-01T00:00:00.000Z",
        train: ["t"],
        test: ["u"],
        excluded: [],
        holdout: ["h1", "h2"],
        counts: { train: 1, test: 1, train_passing: 0, test_passing: 0, excluded: 0 },
      }),
    );
    const night = (runId: string, outcomes: [number, "accepted" | "rejected", number][], budget: number) => {
      journal.runs.createRun(runId, { benchmark: "example", budget_usd: budget });
      for (const [iteration, outcome, valScore] of outcomes) {
        journal.runs.stepStarted(runId, iteration, "benchmark");
        journal.runs.putIteration({ runId, iteration, outcome, valScore, bestBefore: 0.5, summary: null });
        journal.ledger.recordLlmCall(call(runId, iteration, 0.25));
      }
      now += 1_000;
    };
    night("run-a", [[1, "accepted", 0.6]], 5);
    journal.runs.setRunStatus("run-a", "done", { stopReason: "max_iterations reached: 1" });
    night(
      "run-b",
      [
        [2, "rejected", 0.4],
        [3, "accepted", 0.7],
      ],
      20,
    );
    // The holdout's scoring: journaled under the run with no iteration.
    journal.ledger.recordLlmCall(call("run-b", null, 0.11));
    journal.pins.pin(
      "holdout:run-b",
      JSON.stringify({ runId: "run-b", tasks: 2, baseline: 0.5, final: 1, diff: 0.5, low: 0.1, high: 0.9 }),
    );
    journal.runs.setRunStatus("run-b", "done", { stopReason: "max_iterations reached: 3" });
  } finally {
    journal.close();
  }
  return root;
}

const report = (root: string, ...args: string[]) => cli(["report", "--dir", root, ...args]);

const rowsOf = (html: string) =>
  [...html.matchAll(/<tr class="iteration \w+" data-iteration="(\d+)">/g)].map((m) => m[1]);

describe("report: one run per page", () => {
  it("the latest run by default: its rows, its spend with the holdout's scoring and budget, its verdict first", async () => {
    const root = await twoNights();
    const r = await report(root);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/report\.html \(2 iterations\) for run run-b; every run's page in .*reports\/\n$/);
    const html = readFileSync(paths(root).report, "utf8");
    expect(html).toContain("<title>auto-harness report · example · run-b</title>");
    expect(rowsOf(html)).toEqual(["0", "2", "3"]);
    // 0.25 + 0.25 + 0.11 (the holdout): the journal's total for run-b, with its budget beside it.
    expect(html).toMatch(/id="card-spend"><div class="k">spend<\/div><div class="v">\$0\.61 of \$20\.00</);
    // The verdict is the first card; the night claims +0.2000 and the interval (+0.1 to +0.9) is above zero.
    expect(html.indexOf('<div class="card" id="card-holdout"')).toBe(html.indexOf('<div class="card"'));
    expect(html).toMatch(/id="card-holdout"><div class="k">sealed holdout<\/div><div class="v">improved</);
    expect(html).toContain('<div class="why">B</div>');
    expect(html).toMatch(/<a href="reports\/run-a\.html">run-a · generation 1 · done · 0 accepted, 0 rejected<\/a>/);
    expect(readdirSync(join(paths(root).workspace, "reports")).sort()).toEqual(["run-a.html", "run-b.html"]);
  });

  it("--run picks an earlier run: none of the later run's rows, spend or holdout", async () => {
    const root = await twoNights();
    const r = await report(root, "--run", "run-a");
    expect(r.code, r.err).toBe(0);
    const html = readFileSync(paths(root).report, "utf8");
    expect(rowsOf(html)).toEqual(["0", "1"]);
    expect(html).toMatch(/\$0\.25 of \$5\.00/);
    expect(html).not.toContain("run-b ·</title>");
    expect(html).toMatch(/sealed holdout<\/div><div class="v">none yet</);
    expect(html).toContain("Sealed holdout (not scored yet)");
    // Inside reports/, the picker links its neighbours by file name.
    const page = readFileSync(join(paths(root).workspace, "reports", "run-a.html"), "utf8");
    expect(page).toMatch(/<a href="run-b\.html">/);
    expect(page).toMatch(/<li class="current" aria-current="page">run-a /);
  });

  it("an unknown --run is one line naming the runs, exit 2, nothing written", async () => {
    const root = await twoNights();
    const r = await report(root, "--run", "run-zzz");
    expect(r.code).toBe(2);
    expect(r.err).toBe("auto-harness: --run run-zzz: no such run in the journal; its runs: run-a, run-b\n");
    expect(existsSync(paths(root).report)).toBe(false);
    expect(existsSync(join(paths(root).workspace, "reports"))).toBe(false);
  });
});

describe("a finished run's line", () => {
  it("says done once, not 'done (done)'", () => {
    const html = renderReport({
      root: "/x",
      benchmark: "example",
      generatedAt: "2026-01-01T00:00:00.000Z",
      run: { id: "run-x", status: "done", state: "done", stopReason: null, lastError: null, accepted: 0, rejected: 0 },
      iterations: [],
    });
    expect(html).toContain("run run-x · done · generated");
    expect(html).not.toContain("done (done)");
  });
});
