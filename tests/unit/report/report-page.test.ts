/**
 * The report page: built from a real workspace (journal, results.tsv, a git repo with an accepted commit),
 * written through the real CLI, and opened in headless Chromium to check what is actually drawn.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/program.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { escapeHtml, fmtDuration, type ReportIteration, renderReport } from "../../../src/report/render.ts";
import { appendResult, initResults } from "../../../src/workspace/files.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { llmCallRow } from "../../helpers/ledger.ts";
import { haveTool } from "../../helpers/tools.ts";

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const EVIL = `const banner = "<script>alert('pwned')</script>"; // a < b && c > d`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function dumpDom(file: string): Promise<string> {
  const profile = tempDir("report-chromium-");
  const { stdout } = await run(
    CHROMIUM,
    [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      `--user-data-dir=${profile}`,
      "--dump-dom",
      pathToFileURL(file).href,
    ],
    { maxBuffer: 32 * 1024 * 1024, timeout: 120_000 },
  );
  return stdout;
}

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

function captured(): { stream: Writable; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

/** A workspace after a run of three iterations: 1 accepted (a real commit), 2 rejected by score, 3 rejected at load. */
async function buildWorkspace(): Promise<{ root: string; sha: string }> {
  const root = tempDir("report-ws-");
  const p = paths(root);
  writeFileSync(join(root, "experiment_config.yaml"), "benchmark: example\n");
  mkdirSync(join(root, "agent"), { recursive: true });
  writeFileSync(p.agentFile, "export default { run: async () => 'hello' };\n");
  const repo = openRepo(root);
  await repo.init();
  await repo.commitPaths(["agent/agent.ts", "experiment_config.yaml"], "prepare");
  writeFileSync(p.agentFile, `${EVIL}\nexport default { run: async () => banner };\n`);
  const sha = await repo.commitFile("agent/agent.ts", "improve: say the banner", {
    key: "Harness-Run",
    value: "run-test/1",
  });

  mkdirSync(p.workspace, { recursive: true });
  initResults(p.results);
  const row = { evalsPassed: 0, evalsTotal: 0, timestamp: "2026-01-01T00:00:00.000Z" };
  appendResult(p.results, { ...row, valScore: 0.4, commit: "baseline", extra: { loop_iteration: "0" } });
  appendResult(p.results, { ...row, valScore: 0.6, commit: sha.slice(0, 7), extra: { loop_iteration: "1" } });

  let now = 1_000_000;
  const journal = Journal.open(p.journal, { now: () => now });
  try {
    journal.runs.createRun("run-test", { benchmark: "example" });
    const summary = (extra: Record<string, unknown>) => ({
      hypothesis: null,
      changeSummary: null,
      pattern: null,
      commit: null,
      trainScore: 0.5,
      suitePassed: 0,
      suiteTotal: 0,
      promoted: [],
      reasons: [],
      spentUsd: 0,
      ...extra,
    });
    for (const iteration of [1, 2, 3]) {
      for (const step of ["benchmark", "analyze", "edit", "gate", "record", "learn"]) {
        journal.runs.stepStarted("run-test", iteration, step);
        now += 1000;
        journal.runs.commitTransition({
          runId: "run-test",
          snapshot: {},
          state: step,
          iteration,
          bestValScore: 0.6,
          accepted: 1,
          rejected: iteration - 1,
          ended: { iteration, step, status: "done" },
        });
      }
      for (const role of ["coding", "agent"] as const) {
        journal.ledger.recordLlmCall(
          llmCallRow({ runId: "run-test", iteration, role, costUsd: role === "coding" ? 0.5 * iteration : 0.25 }),
        );
      }
    }
    journal.runs.putIteration({
      runId: "run-test",
      iteration: 1,
      outcome: "accepted",
      valScore: 0.6,
      bestBefore: 0.4,
      summary: summary({
        hypothesis: "customers need a <b>banner</b>",
        commit: sha,
        promoted: ["t1", "t2"],
      }),
    });
    journal.runs.putIteration({
      runId: "run-test",
      iteration: 2,
      outcome: "rejected",
      valScore: 0.3,
      bestBefore: 0.6,
      summary: summary({ hypothesis: "shorter replies", suitePassed: 1, suiteTotal: 2, reasons: ["test: 0.3 < 0.6"] }),
    });
    journal.runs.putIteration({
      runId: "run-test",
      iteration: 3,
      outcome: "rejected",
      valScore: null,
      bestBefore: 0.6,
      summary: summary({ hypothesis: "configurable turns", suiteTotal: 2, reasons: ["load check: Type 'string'"] }),
    });
    journal.runs.setRunStatus("run-test", "done", { stopReason: "max_iterations reached: 3" });
  } finally {
    journal.close();
  }
  return { root, sha };
}

describe.skipIf(!haveTool(CHROMIUM, "chromium"))("report command", () => {
  it("writes a page Chromium draws: one point per scored iteration, one row per iteration, escaped diff", async () => {
    const { root, sha } = await buildWorkspace();
    const out = captured();
    const code = await main(["node", "auto-harness", "report", "--dir", root], { stdout: out.stream });
    expect(code).toBe(0);
    expect(out.text()).toContain("report.html (3 iterations)");

    const file = paths(root).report;
    const html = readFileSync(file, "utf8");
    // Self-contained: nothing fetched from anywhere.
    expect(html).not.toMatch(/<script|<link|<img|@import|url\(|\b(src|href)=/);

    const dom = await dumpDom(file);
    expect(count(dom, /<g class="point baseline"/g)).toBe(1);
    expect(count(dom, /<g class="point accepted"/g)).toBe(1);
    expect(count(dom, /<g class="point rejected[^"]*"/g)).toBe(2);
    expect(count(dom, /<g class="point rejected unscored"/g)).toBe(1);
    expect(count(dom, /<path class="best-line"/g)).toBe(1);
    expect(count(dom, /<circle class="suite-point"/g)).toBe(4);
    expect(count(dom, /<g class="spend-bar"/g)).toBe(3);
    expect(count(dom, /<tr class="iteration /g)).toBe(4);
    expect(dom).toMatch(/<tr class="iteration accepted" data-iteration="1">/);
    expect(dom).toMatch(/<tr class="iteration rejected" data-iteration="3">[\s\S]*?not run/);

    // The accepted change's diff is there, as text: the browser parsed no element out of it.
    expect(dom).toContain(`diff ${sha.slice(0, 7)}`);
    expect(dom).toContain("&lt;script&gt;alert('pwned')&lt;/script&gt;");
    expect(dom).toContain("a &lt; b &amp;&amp; c &gt; d");
    expect(dom).not.toContain("<script");
    expect(dom).toContain("customers need a &lt;b&gt;banner&lt;/b&gt;");
    // Spend per iteration from the journal's LLM calls: iteration 2 cost 1.00 + 0.25.
    expect(dom).toMatch(/data-iteration="2"[^>]*>[\s\S]*?<td class="num">\$1\.25<\/td><td class="num">6s<\/td>/);
  }, 180_000);

  it("works with only the baseline (no journal, no run)", async () => {
    const root = tempDir("report-empty-");
    const p = paths(root);
    writeFileSync(join(root, "experiment_config.yaml"), "benchmark: example\n");
    mkdirSync(p.workspace, { recursive: true });
    initResults(p.results);
    appendResult(p.results, {
      valScore: 0.25,
      commit: "baseline",
      evalsPassed: 0,
      evalsTotal: 0,
      timestamp: "2026-01-01T00:00:00.000Z",
    });
    await openRepo(root).init();
    expect(await main(["node", "auto-harness", "report", "--dir", root], { stdout: captured().stream })).toBe(0);
    expect(existsSync(p.journal)).toBe(false);
    const dom = await dumpDom(p.report);
    expect(count(dom, /<g class="point /g)).toBe(1);
    expect(count(dom, /<tr class="iteration /g)).toBe(1);
    expect(dom).toContain("no run yet: only the baseline");
  }, 180_000);
});

describe("renderReport (pure)", () => {
  const base: ReportIteration = {
    iteration: 0,
    outcome: "baseline",
    valScore: 0.5,
    hypothesis: null,
    changeSummary: null,
    pattern: null,
    reasons: [],
    suitePassed: null,
    suiteTotal: null,
    suiteAfter: 0,
    commit: null,
    costUsd: { coding: 0, agent: 0 },
    durationMs: null,
    diff: null,
  };

  it.each([
    [`<a href="x">'&'</a>`, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"],
    ["plain", "plain"],
  ])("escapeHtml(%s)", (input, expected) => {
    expect(escapeHtml(input)).toBe(expected);
  });

  it.each([
    [null, "—"],
    [4_400, "4s"],
    [125_000, "2m 5s"],
    [3_720_000, "1h 2m"],
  ])("fmtDuration(%s) = %s", (ms, expected) => {
    expect(fmtDuration(ms)).toBe(expected);
  });

  it("is a function of its data alone", () => {
    const data = {
      root: "/x",
      benchmark: "example",
      generatedAt: "2026-01-01T00:00:00.000Z",
      run: null,
      iterations: [base],
    };
    expect(renderReport(data)).toBe(renderReport(structuredClone(data)));
    expect(renderReport({ ...data, iterations: [] })).toContain('<table id="iterations">');
  });

  it("leads with the sealed holdout, and shows per iteration the probability of improvement, runs spent and the stop", () => {
    const it1: ReportIteration = {
      ...base,
      iteration: 1,
      outcome: "rejected",
      valScore: null,
      reasons: ["held-out split: train evidence alone: P(improvement) 0.093 < 0.2"],
      gate: { rule: "bayes", pGood: 0.093, testRuns: 0, stage: "train" },
    };
    const it2: ReportIteration = {
      ...base,
      iteration: 2,
      outcome: "accepted",
      valScore: 0.7,
      gate: { rule: "bayes", pGood: 0.937, testRuns: 23, stage: "extra" },
    };
    const html = renderReport({
      root: "/x",
      benchmark: "stochastic",
      generatedAt: "2026-01-01T00:00:00.000Z",
      run: null,
      iterations: [base, it1, it2],
      holdout: {
        line: "0.4000 → 0.5500 (+0.1500, 95% interval +0.0200 to +0.2800) on 16 sealed task(s)",
        scored: true,
      },
      gateNotes: ["iteration 2: threshold changed from 0.8 to 0.7 (experiment_config.yaml)"],
    });
    expect(html.indexOf('id="holdout"')).toBeGreaterThan(-1);
    expect(html.indexOf('id="holdout"')).toBeLessThan(html.indexOf('class="cards"'));
    expect(html).toContain("0.4000 → 0.5500 (+0.1500, 95% interval +0.0200 to +0.2800)");
    expect(html).toContain("P(improvement) 0.093 · 0 held-out run(s) · stopped at train evidence, 0 held-out runs");
    expect(html).toContain("P(improvement) 0.937 · 23 held-out run(s) · stopped at paired re-runs");
    expect(html).toContain("threshold changed from 0.8 to 0.7");
  });
});
