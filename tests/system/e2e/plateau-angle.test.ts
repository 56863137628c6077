/**
 * The plateau restart through the CLI: the real loop, the coding model played by the test LLM server. After a
 * round without an acceptance (`plateau_rounds: 1`), the next round's analysis is a fresh one: the coding
 * model's prompt holds no learnings, only the patterns already tried, and the next coding model answers; the log, learnings.md and the journal
 * say so once, and the report has a line for it.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { demoConfig } from "../../../dev/demo/main.ts";
import { simulatedAgentModel } from "../../../dev/demo/simulated-agent-model.ts";
import { isCodingAgentRequest, simulatedCodingModel } from "../../../dev/demo/simulated-coding-model.ts";
import { type RecordedRequest, startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { angleKey } from "../../../src/journal/pins.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const BIN = join(REPO_ROOT, "bin", "auto-harness.js");
const exec = promisify(execFile);

let server: TestLlmServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const systemText = (req: RecordedRequest): string => {
  const system = req.body?.system;
  if (typeof system === "string") return system;
  return Array.isArray(system) ? system.map((b: { text?: string }) => b.text ?? "").join("\n") : "";
};

describe("a plateau changes the proposer's angle", () => {
  it("the round after a rejected one analyzes afresh, without the learnings, and says so", async () => {
    const dir = tempDir("ah-plateau-");
    await exec("git", ["init", "-q"], { cwd: dir });
    // demoConfig ends with its prices: the second coding model's joins them.
    writeFileSync(
      join(dir, "experiment_config.yaml"),
      `${demoConfig(3)}  simulated-coder-2: { input: 15, output: 75 }\nplateau_rounds: 1\ncoding_models: [simulated-coder-2]\n`,
    );
    const analyses = new Map<number, string>();
    const models = new Map<number, Set<string>>();
    server = await startTestLlmServer({
      responder: (req, index) => {
        if (!isCodingAgentRequest(req)) return simulatedAgentModel(req, index);
        const system = systemText(req);
        const iteration = Number(/# Iteration (\d+)/.exec(system)?.[1] ?? 0);
        if (system.includes("# Phase: analyze") && !analyses.has(iteration)) analyses.set(iteration, system);
        models.set(iteration, new Set([...(models.get(iteration) ?? []), String(req.body?.model)]));
        return simulatedCodingModel(req, index);
      },
    });
    const env = { ...process.env, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "" };
    await exec(process.execPath, [BIN, "prepare", "--dir", dir], { env });
    const run = await exec(process.execPath, [BIN, "run", "--dir", dir], { env, encoding: "utf8" });

    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });
    const runId = journal.runs.latestRun()!.id;
    const outcomes = journal.runs.iterations(runId).map((r) => r.outcome);
    const angles = [1, 2, 3].map((i) => journal.pins.fact(angleKey(runId, i)) as { restart: boolean } | undefined);
    journal.close();
    // The demo's coding model makes a change that does not load in iteration 2: rejected, a plateau of one.
    expect(outcomes.slice(0, 2)).toEqual(["accepted", "rejected"]);
    expect(angles.map((a) => a?.restart)).toEqual([false, false, true]);

    expect(analyses.get(2)).toContain("Last learnings entries:");
    const fresh = analyses.get(3)!;
    expect(fresh).toContain("Fresh angle (plateau: 1 rounds on this angle without an acceptance");
    expect(fresh).toContain("take a different one:");
    expect(fresh).not.toContain("Last learnings entries:");
    expect(fresh).not.toContain("## Iteration 2");
    // The changed angle takes the next coding model; the rounds before it kept coding_model.
    expect([...models.get(2)!]).toEqual(["simulated-coder"]);
    expect([...models.get(3)!]).toEqual(["simulated-coder-2"]);

    const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
    expect(learnings.match(/\*\*Angle changed before iteration 3:\*\* plateau/g)).toHaveLength(1);
    expect(run.stdout).toMatch(/angle changed before iteration 3: plateau/);
    await exec(process.execPath, [BIN, "report", "--dir", dir], { env });
    const page = readFileSync(join(dir, "workspace", "report.html"), "utf8");
    expect(page).toContain("<h2>Angle changes</h2>");
    expect(page).toMatch(/<li>iteration 3: a fresh angle, plateau: 1 rounds on this angle without an acceptance/);
    expect(page).not.toMatch(/<li>iteration [12]: a fresh angle/);
  }, 300_000);
});
