/**
 * The offline demo end to end, as an operator runs it: a child process, real CLI, real benchmark children,
 * the test LLM server playing both models. Asserts the artifacts it leaves, not its timing.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Journal } from "../../../src/journal/journal.ts";
import { readResults } from "../../../src/workspace/files.ts";
import { runDemo } from "../../helpers/demo.ts";

const scratch = mkdtempSync(join(tmpdir(), "demo-test-"));
const dir = join(scratch, "demo");

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("npm run demo", () => {
  it("runs prepare, a short run and report with simulated models, leaving real artifacts", async () => {
    const stdout = await runDemo(dir);

    const ws = join(dir, "workspace");
    const results = readResults(join(ws, "results.tsv"));
    expect(results[0]).toMatchObject({ iteration: 0, commit: "baseline" });
    expect(results.filter((r) => r.iteration > 0).length).toBeGreaterThanOrEqual(1);

    const learnings = readFileSync(join(ws, "learnings.md"), "utf8");
    const entries = learnings.split("\n").filter((l) => /^## Iteration \d+/.test(l));
    expect(entries.length).toBeGreaterThanOrEqual(3);
    expect(entries.some((l) => l.includes("✗"))).toBe(true);
    expect(entries.some((l) => l.includes("✓"))).toBe(true);

    const log = execFileSync(
      "git",
      ["log", "--format=%s%x1f%(trailers:key=Harness-Run,valueonly)%x1e", "--", "agent/agent.ts"],
      {
        cwd: dir,
        encoding: "utf8",
      },
    );
    const commits = log
      .split("\x1e")
      .map((c) => c.trim())
      .filter(Boolean)
      .map((c) => c.split("\x1f") as [string, string]);
    const improves = commits.filter(([subject]) => subject.startsWith("improve:"));
    expect(improves.length).toBe(results.filter((r) => r.iteration > 0).length);
    for (const [, trailer] of improves) expect(trailer.trim()).toMatch(/^run-[\w-]+\/\d+$/);
    // The demo's repository is its own, not the harness's.
    expect(execFileSync("git", ["rev-parse", "--show-toplevel"], { cwd: dir, encoding: "utf8" }).trim()).toBe(
      execFileSync("realpath", [dir], { encoding: "utf8" }).trim(),
    );

    const journal = Journal.open(join(ws, "journal.sqlite"), { readonly: true });
    try {
      const latest = journal.runs.latestRun();
      expect(latest?.status).toBe("done");
      const its = journal.runs.iterations(latest?.id as string);
      expect(its.length).toBeGreaterThanOrEqual(3);
      expect(its.some((i) => i.outcome === "accepted")).toBe(true);
      expect(its.some((i) => i.outcome === "rejected")).toBe(true);
    } finally {
      journal.close();
    }

    expect(existsSync(join(ws, "report.html"))).toBe(true);
    expect(readFileSync(join(ws, "report.html"), "utf8")).toContain('<svg id="score-chart"');

    // Output that came from a simulated model says so.
    const modelLines = stdout.split("\n").filter((l) => /analysis:|edit:/.test(l));
    expect(modelLines.length).toBeGreaterThanOrEqual(6);
    for (const line of modelLines) expect(line).toContain("[simulated model]");
    expect(stdout).toMatch(/run done: .*accepted, [1-9]\d* rejected/);
  }, 620_000);
});

describe("npm run demo -- --provider openai", () => {
  it("runs the offline demo with the agent on the openai package, its calls through the gateway in OpenAI's format", async () => {
    const openaiScratch = mkdtempSync(join(tmpdir(), "demo-openai-test-"));
    // As root, the agent's sandbox user reads the demo's own packages.
    chmodSync(openaiScratch, 0o755);
    const demo = join(openaiScratch, "demo");
    try {
      const stdout = await runDemo(demo, process.env, ["--provider", "openai", "--iterations", "1"]);
      expect(stdout).toContain("OpenAI's format");
      expect(readFileSync(join(demo, "agent", "agent.ts"), "utf8")).toContain('import OpenAI from "openai"');
      const results = readResults(join(demo, "workspace", "results.tsv"));
      expect(results[0]).toMatchObject({ iteration: 0, commit: "baseline" });
      const journal = Journal.open(join(demo, "workspace", "journal.sqlite"), { readonly: true });
      try {
        const run = journal.runs.latestRun();
        expect(run?.status).toBe("done");
        // The agent's calls, metered by the gateway from Chat Completions replies; the coding agent's, Anthropic's.
        const calls = journal.ledger.llmCalls(run?.id as string);
        const agent = calls.filter((c) => c.role === "agent");
        expect(agent.length).toBeGreaterThan(0);
        expect(agent.every((c) => c.model === "openai/simulated-agent" && c.costUsd > 0)).toBe(true);
        expect(calls.some((c) => c.role === "coding" && c.model === "simulated-coder")).toBe(true);
      } finally {
        journal.close();
      }
    } finally {
      rmSync(openaiScratch, { recursive: true, force: true });
    }
  }, 620_000);
});
