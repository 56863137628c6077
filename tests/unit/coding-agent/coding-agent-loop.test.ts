import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer, toolUseReply } from "../../../dev/llm-server/llm-server.ts";
import { ManualClock } from "../../../src/clock.ts";
import { type CodingAgentLog, type CodingAgentOptions, createCodingAgent } from "../../../src/coding-agent/agent.ts";
import { AbortedError, errorHandling, HarnessError } from "../../../src/errors.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createAnthropic, worstCaseCostUsd } from "../../../src/llm/client.ts";
import { createLogger } from "../../../src/log.ts";
import {
  BASE_AGENT,
  editorCall,
  type Fixture,
  fixedRunner,
  makeFixture,
  memoryLog,
  toolCalls,
  toolResultIn,
  turnOf,
} from "../../fixtures/coding-agent-workspace.ts";

const FINISH = {
  hypothesis: "the agent ignores the refund window",
  change_summary: "Told the agent to check the refund window before refunding.",
  commit_message: "agent: check the refund window",
  pattern: "refund window ignored",
  needs_from_human: "none",
};

let server: TestLlmServer | undefined;
let fx: Fixture | undefined;
let journal: Journal | undefined;
afterEach(async () => {
  journal?.close();
  journal = undefined;
  await server?.close();
  server = undefined;
  fx?.cleanup();
  fx = undefined;
});

function setup(overrides: Partial<CodingAgentOptions> = {}, limits: Partial<CodingAgentOptions["limits"]> = {}) {
  fx = makeFixture();
  journal = Journal.open(fx.journalPath);
  journal.runs.createRun("r1", {});
  const clock = new ManualClock(0, true);
  const log = memoryLog();
  const runner = fixedRunner({ t1: 1, t2: 1, t3: 0 });
  const checked: string[] = [];
  const agent = createCodingAgent({
    root: fx.root,
    journal,
    log,
    client: createAnthropic({ baseURL: server!.url, maxRetries: 2 }),
    clock,
    model: "claude-sonnet-4-6",
    runner,
    checkAgent: async (file) => {
      checked.push(file);
      return { ok: true };
    },
    baseContent: () => BASE_AGENT,
    limits: { maxTurns: 10, maxTokens: 1024, taskRunBudget: 5, budgetUsd: null, outageMs: 60_000, ...limits },
    ...overrides,
  });
  return { agent, clock, log, runner, checked, journal: journal!, fx: fx! };
}

const signal = () => new AbortController().signal;

// The daemon hands in its pino logger; this keeps the two interfaces compatible.
const pinoFits: CodingAgentLog = createLogger({ stdout: false }).log;
void pinoFits;

describe("coding agent: analyze + edit", () => {
  it("analyzes, edits agent/agent.ts with str_replace, finishes, and journals every call", async () => {
    const analyzeTurns = [
      toolCalls({ name: "list_failing_tasks", input: {}, id: "a1" }),
      toolCalls(editorCall({ command: "view", path: "workspace/traces/latest/t1/trace.json" }, "a2")),
      toolCalls({ name: "finish", input: { patterns: ["refund window ignored"], notes: "t1 refused a refund" } }),
    ];
    const editTurns = [
      toolCalls(editorCall({ command: "view", path: "agent/agent.ts" }, "e1")),
      toolCalls(
        editorCall(
          {
            command: "str_replace",
            path: "agent/agent.ts",
            old_str: "You are a helpful agent.",
            new_str: "You are a careful support agent. Check the refund window.",
          },
          "e2",
        ),
      ),
      toolCalls(
        { name: "check_agent", input: {}, id: "e3" },
        { name: "run_train_tasks", input: { task_ids: ["t1"] }, id: "e4" },
      ),
      toolCalls({ name: "finish", input: FINISH }),
    ];
    server = await startTestLlmServer({
      responder: (req) => {
        const phaseIsEdit = JSON.stringify(req.body.system).includes("# Phase: edit");
        return (phaseIsEdit ? editTurns : analyzeTurns)[turnOf(req.body)]!;
      },
    });
    const { agent, journal, runner, checked, fx } = setup();

    const analysis = await agent.analyze({ runId: "r1", iteration: 2, trainScore: 0.4167 }, signal());
    expect(analysis).toEqual({ patterns: ["refund window ignored"], notes: "t1 refused a refund" });
    // The machine hands analyze's output and the train score to the edit.
    const edit = await agent.edit({ runId: "r1", iteration: 2, trainScore: 0.4167, analysis }, signal());
    expect(edit).toEqual({
      changed: true,
      hypothesis: FINISH.hypothesis,
      changeSummary: FINISH.change_summary,
      commitMessage: FINISH.commit_message,
      pattern: FINISH.pattern,
      needsFromHuman: FINISH.needs_from_human,
    });
    expect(readFileSync(join(fx.root, "agent/agent.ts"), "utf8")).toBe(
      BASE_AGENT.replace("You are a helpful agent.", "You are a careful support agent. Check the refund window."),
    );

    // Requests: streaming, cached static prefixes, the text editor declared as Anthropic's tool.
    const reqs = server.requests;
    expect(reqs).toHaveLength(7);
    for (const r of reqs) {
      expect(r.body.stream).toBe(true);
      expect(r.body.model).toBe("claude-sonnet-4-6");
      expect(r.body.max_tokens).toBe(1024);
      expect(r.body.system[0].text).toContain("PROGRAM_MARKER_A1");
      expect(r.body.system[0].cache_control).toEqual({ type: "ephemeral" });
      expect(r.body.tools[0]).toEqual({ type: "text_editor_20250728", name: "str_replace_based_edit_tool" });
      expect(r.body.tools.at(-1).cache_control).toEqual({ type: "ephemeral" });
      expect(r.body.messages.at(-1).content.at(-1).cache_control).toEqual({ type: "ephemeral" });
    }
    const analyzeDigest = reqs[0]!.body.system[1].text as string;
    expect(analyzeDigest).toContain("Train score: 0.4167");
    expect(analyzeDigest).toContain("t1 (0), t3 (0.25)");
    expect(analyzeDigest).toContain("Told the agent to always refund."); // rejected hypothesis from learnings.md
    expect(reqs[0]!.body.tools.map((t: { name: string }) => t.name)).not.toContain("run_train_tasks");
    const editDigest = reqs[3]!.body.system[1].text as string;
    expect(editDigest).toContain("Patterns found by the analysis: refund window ignored");
    expect(editDigest).toContain("t1 refused a refund");
    expect(editDigest).toContain("Train score: 0.4167");

    // Tool results reach the model.
    expect(toolResultIn(reqs[1]!.body, "a1")?.content).toContain(
      "t1\treward=0\t⟦agent⟧ refund refused: policy window ⟦/agent⟧",
    );
    expect(toolResultIn(reqs[2]!.body, "a2")?.content).toContain("TRAIN_MARKER refused");
    expect(toolResultIn(reqs[4]!.body, "e1")?.content).toContain("3\texport const SYSTEM_PROMPT");
    expect(toolResultIn(reqs[5]!.body, "e2")).toMatchObject({ content: expect.stringContaining("updated") });
    expect(toolResultIn(reqs[6]!.body, "e3")?.content).toContain("type-checks");
    expect(toolResultIn(reqs[6]!.body, "e4")?.content).toContain("t1\treward=1");
    expect(toolResultIn(reqs[6]!.body, "e4")?.content).toContain("refreshed");
    expect(runner.requests).toEqual([
      expect.objectContaining({ split: "train", taskIds: ["t1"], runId: "r1", iteration: 2, writeTraces: true }),
    ]);
    expect(checked).toEqual([join(fx.root, "agent/agent.ts")]);

    // Ledger: one row per call, role coding, keyed by step, with a prompt hash and a cost.
    const calls = journal.ledger.llmCalls("r1");
    expect(calls.map((c) => c.stepKey)).toEqual([...Array(3).fill("r1:2:analyze"), ...Array(4).fill("r1:2:edit")]);
    for (const c of calls) {
      expect(c.role).toBe("coding");
      expect(c.model).toBe("claude-sonnet-4-6");
      expect(c.promptHash).toMatch(/^[0-9a-f]{64}$/);
      expect(c.inputTokens).toBeGreaterThan(0);
      expect(c.costUsd).toBeCloseTo((c.inputTokens * 3 + c.outputTokens * 15) / 1e6, 12);
      expect(c.stopReason).toBe("tool_use");
      expect(c.response).toMatchObject({ content: expect.any(Array) });
    }
    expect(new Set(calls.map((c) => c.promptHash)).size).toBe(7);
    expect(journal.ledger.spend("r1").byRole.coding).toBeCloseTo(
      calls.reduce((a, c) => a + c.costUsd, 0),
      12,
    );
  });

  it("stops at the turn limit, reporting whether agent/agent.ts changed", async () => {
    server = await startTestLlmServer({
      responder: (req) =>
        turnOf(req.body) === 0
          ? toolCalls(editorCall({ command: "insert", path: "agent/agent.ts", insert_line: 0, insert_text: "// note" }))
          : toolCalls(editorCall({ command: "view", path: "agent/agent.ts" })),
    });
    const { agent, fx } = setup({}, { maxTurns: 3 });
    const edit = await agent.edit({ runId: "r1", iteration: 1, trainScore: null, analysis: null }, signal());
    expect(server.requests).toHaveLength(3);
    expect(edit.changed).toBe(true);
    expect(edit.changeSummary).toContain("turn limit of 3 turns");
    expect(readFileSync(join(fx.root, "agent/agent.ts"), "utf8")).toBe(`// note\n${BASE_AGENT}`);
  });

  it("nudges a reply without tool calls and counts it as a turn", async () => {
    server = await startTestLlmServer({
      script: [
        { reply: { content: [{ type: "text", text: "Thinking about it." }] } },
        toolUseReply("finish", { patterns: ["p"] }),
      ],
    });
    const { agent } = setup();
    expect(await agent.analyze({ runId: "r1", iteration: 1, trainScore: null }, signal())).toEqual({ patterns: ["p"] });
    expect(server.requests[1]!.body.messages.at(-1).content[0].text).toContain("call `finish`");
  });
});

describe("coding agent: retries and errors", () => {
  it("rides out 429/529/500 (SDK retries) and a dropped stream and a stream error (outer retries)", async () => {
    server = await startTestLlmServer({
      script: [
        { fault: "429", retryAfterMs: 1 },
        { fault: "529", retryAfterMs: 1 },
        { fault: "500", retryAfterMs: 1 },
        { fault: "drop-mid-stream" },
        { fault: "stream-error" },
        toolUseReply("finish", { patterns: ["p"] }),
      ],
    });
    const { agent, clock, journal } = setup();
    expect(await agent.analyze({ runId: "r1", iteration: 1, trainScore: 0.5 }, signal())).toEqual({ patterns: ["p"] });
    // 3 SDK requests (429, 529, 500: retries exhausted) + 2 outer attempts that broke mid-stream + the answer.
    expect(server.requests).toHaveLength(6);
    expect(clock.sleeps).toEqual([1_000, 2_000, 4_000]);
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBe(7_000);
    expect(journal.ledger.llmCalls("r1")).toHaveLength(1);
    // Every attempt sent the same request.
    expect(new Set(server.requests.map((r) => r.raw)).size).toBe(1);
  });

  it("a long outage ends with a resumable LLM_UNAVAILABLE, nothing journaled", async () => {
    server = await startTestLlmServer({ responder: () => ({ fault: "529", retryAfterMs: 1 }) });
    const { agent, clock, journal } = setup({}, { outageMs: 5_000 });
    const error = await agent.analyze({ runId: "r1", iteration: 1, trainScore: null }, signal()).catch((e) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.code).toBe("LLM_UNAVAILABLE");
    expect(errorHandling(error)).toBe("resumable");
    expect(clock.sleeps).toEqual([1_000, 2_000, 2_000]);
    expect(server.requests).toHaveLength(4 * 3);
    expect(journal.ledger.llmCalls("r1")).toHaveLength(0);
  });

  it("a 400 stops at once with LLM_REJECTED and its message", async () => {
    server = await startTestLlmServer({ script: [{ fault: "400", message: "max_tokens: too large for model" }] });
    const { agent } = setup();
    const error = await agent
      .edit({ runId: "r1", iteration: 1, trainScore: null, analysis: null }, signal())
      .catch((e) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.code).toBe("LLM_REJECTED");
    expect(error.message).toContain("max_tokens: too large for model");
    expect(server.requests).toHaveLength(1);
  });

  it("a spend-limit 429 is not retried", async () => {
    server = await startTestLlmServer({
      responder: () => ({ fault: "429", message: "You have reached your spend limit" }),
    });
    // Without SDK retries, so the single refusal is visible as one request.
    const { agent } = setup({ client: createAnthropic({ baseURL: server.url, maxRetries: 0 }) });
    const error = await agent.analyze({ runId: "r1", iteration: 1, trainScore: null }, signal()).catch((e) => e);
    expect(error.code).toBe("LLM_REJECTED");
    expect(error.message).toMatch(/spend/);
    expect(server.requests).toHaveLength(1);
  });

  it("an aborted signal ends with AbortedError", async () => {
    server = await startTestLlmServer({ responder: () => toolUseReply("finish", { patterns: ["p"] }) });
    const { agent } = setup();
    const controller = new AbortController();
    controller.abort();
    const error = await agent
      .analyze({ runId: "r1", iteration: 1, trainScore: null }, controller.signal)
      .catch((e) => e);
    expect(error).toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(0);
  });
});

describe("coding agent: budget", () => {
  it("stops with BUDGET_EXHAUSTED before a call could overshoot, warning at 50% and 80%", async () => {
    server = await startTestLlmServer({
      responder: (req) => toolCalls({ name: "list_failing_tasks", input: {}, id: `l${turnOf(req.body)}` }),
    });
    const prices = { "claude-sonnet-4-6": { input: 100, output: 100 } };
    // Several calls' worth of budget, so the refusal lands past 80% whatever the prompt's exact size.
    const budgetUsd = 3;
    const { agent, journal, log } = setup({ prices }, { budgetUsd, maxTurns: 100, maxTokens: 200 });
    const error = await agent.analyze({ runId: "r1", iteration: 1, trainScore: null }, signal()).catch((e) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect(error.code).toBe("BUDGET_EXHAUSTED");
    const calls = journal.ledger.llmCalls("r1");
    expect(calls.length).toBeGreaterThan(2);
    // No request went out after the refusal, and every one that did is journaled.
    expect(server.requests).toHaveLength(calls.length);
    const spent = journal.ledger.spend("r1").totalUsd;
    const lastRaw = server.requests.at(-1)!.raw.length;
    const oneCall = worstCaseCostUsd("claude-sonnet-4-6", Math.ceil(lastRaw / 3), 200, prices);
    expect(spent).toBeLessThanOrEqual(budgetUsd + oneCall);
    expect(spent).toBeLessThanOrEqual(budgetUsd);
    const warnings = log.lines.filter((l) => l.level === "warn").map((l) => l.msg);
    expect(warnings.filter((m) => m.includes("50% of budget_usd"))).toHaveLength(1);
    expect(warnings.filter((m) => m.includes("80% of budget_usd"))).toHaveLength(1);
  });
});
