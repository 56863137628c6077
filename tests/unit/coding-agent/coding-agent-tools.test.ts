import { readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type ScriptStep, startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import type { Clock } from "../../../src/clock.ts";
import { createCodingAgent } from "../../../src/coding-agent/agent.ts";
import { checkRead, checkWrite, normalizeRelPath } from "../../../src/coding-agent/sandbox.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createAnthropic } from "../../../src/llm/client.ts";
import {
  BASE_AGENT,
  editorCall,
  type Fixture,
  fixedRunner,
  hashTree,
  makeFixture,
  memoryLog,
  TEST_CONTENT_MARKER,
  TEST_TASK_ID,
  toolCalls,
  toolResultIn,
  turnOf,
} from "../../fixtures/coding-agent-workspace.ts";

const clock: Clock = { now: () => 0, monotonic: () => 0, sleep: async () => {} };
const signal = () => new AbortController().signal;
const FINISH = {
  hypothesis: "h",
  change_summary: "nothing",
  commit_message: "nothing",
  pattern: "p",
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

/** Runs a phase whose model makes the given calls one per turn, then finishes. */
async function drive(phase: "analyze" | "edit", calls: ScriptStep[], limits: { taskRunBudget?: number } = {}) {
  const finish = toolCalls({ name: "finish", input: phase === "edit" ? FINISH : { patterns: ["p"] } });
  server = await startTestLlmServer({ responder: (req) => calls[turnOf(req.body)] ?? finish });
  journal = Journal.open(fx!.journalPath);
  journal.runs.createRun("r1", {});
  const runner = fixedRunner({ t1: 0, t2: 1, t3: 0 });
  const agent = createCodingAgent({
    root: fx!.root,
    journal,
    log: memoryLog(),
    client: createAnthropic({ baseURL: server.url, maxRetries: 0 }),
    clock,
    model: "claude-sonnet-4-6",
    runner,
    checkAgent: async () => ({ ok: true }),
    baseContent: () => BASE_AGENT,
    limits: {
      maxTurns: calls.length + 2,
      maxTokens: 512,
      taskRunBudget: limits.taskRunBudget ?? 2,
      budgetUsd: null,
      outageMs: 1_000,
    },
  });
  const output =
    phase === "edit"
      ? await agent.edit({ runId: "r1", iteration: 1, trainScore: 0.4, analysis: null }, signal())
      : await agent.analyze({ runId: "r1", iteration: 1, trainScore: 0.4 }, signal());
  return { output, runner, requests: server.requests };
}

describe("sandbox paths (pure part)", () => {
  it.each([
    ["agent/agent.ts", true],
    ["./agent//agent.ts", true],
    ["../x", false],
    ["agent/../PROGRAM.md", false],
    ["/etc/passwd", false],
    ["C:\\Windows\\win.ini", false],
    ["~/.ssh/id_rsa", false],
    ["", false],
    ["a\0b", false],
  ])("normalizeRelPath(%j) ok=%s", (input, ok) => {
    expect(normalizeRelPath(input).ok).toBe(ok);
  });
});

describe("refusals", () => {
  it("answers each of the hostile or malformed tool calls (28) with is_error results and leaves the tree unchanged", async () => {
    fx = makeFixture();
    symlinkSync("/etc", join(fx.root, "workspace/traces/latest/evil"));
    symlinkSync("/etc", join(fx.root, "workspace/traces/latest/t3/etc"));
    symlinkSync("../../../split.json", join(fx.root, "workspace/traces/latest/t1/split-link.json"));
    const cases: [string, { name: string; input: unknown }, string][] = [
      ["dot-dot escape", editorCall({ command: "view", path: "../../etc/passwd" }), '".." are refused'],
      ["absolute path", editorCall({ command: "view", path: "/etc/passwd" }), "absolute paths are refused"],
      ["home path", editorCall({ command: "view", path: "~/.ssh/id_rsa" }), "absolute paths are refused"],
      [
        "symlink to /etc",
        editorCall({ command: "view", path: "workspace/traces/latest/evil/passwd" }),
        "outside what you may read",
      ],
      [
        "symlink to /etc in a train task's folder",
        editorCall({ command: "view", path: "workspace/traces/latest/t3/etc/passwd" }),
        "resolves outside the experiment",
      ],
      [
        "symlinked dir in a train task's folder",
        editorCall({ command: "view", path: "workspace/traces/latest/t3/etc" }),
        "resolves outside",
      ],
      [
        "symlink to split.json",
        editorCall({ command: "view", path: "workspace/traces/latest/t1/split-link.json" }),
        "resolves to a path you may not read",
      ],
      ["read split.json", editorCall({ command: "view", path: "workspace/split.json" }), "outside what you may read"],
      ["read config", editorCall({ command: "view", path: "experiment_config.yaml" }), "outside what you may read"],
      [
        "test task baseline trace",
        editorCall({ command: "view", path: `workspace/traces/baseline/${TEST_TASK_ID}/trace.json` }),
        "outside what you may read",
      ],
      [
        "write PROGRAM.md",
        editorCall({ command: "create", path: "PROGRAM.md", file_text: "x" }),
        "only agent/agent.ts",
      ],
      [
        "write config",
        editorCall({ command: "str_replace", path: "experiment_config.yaml", old_str: "example", new_str: "x" }),
        "only agent/agent.ts",
      ],
      [
        "write template",
        editorCall({ command: "create", path: "agent/templates/x.ts", file_text: "x" }),
        "only agent/agent.ts",
      ],
      [
        "write suite.json",
        editorCall({ command: "insert", path: "workspace/suite.json", insert_line: 0, insert_text: "x" }),
        "only agent/agent.ts",
      ],
      [
        "write a sibling file",
        editorCall({ command: "create", path: "agent/agent.ts.bak", file_text: "x" }),
        "only agent/agent.ts",
      ],
      [
        "missing old_str",
        editorCall({ command: "str_replace", path: "agent/agent.ts", new_str: "x" }),
        "old_str: Invalid input",
      ],
      ["path of wrong type", editorCall({ command: "view", path: 42 }), "path: Invalid input"],
      [
        "view_range of wrong type",
        editorCall({ command: "view", path: "agent/agent.ts", view_range: "1-5" }),
        "view_range",
      ],
      ["insert without text", editorCall({ command: "insert", path: "agent/agent.ts", insert_line: 1 }), "insert_text"],
      ["unknown command", editorCall({ command: "undo_edit", path: "agent/agent.ts" }), "allowed commands: view"],
      ["missing command", editorCall({ path: "agent/agent.ts" }), "allowed commands: view"],
      [
        "old_str not found",
        editorCall({ command: "str_replace", path: "agent/agent.ts", old_str: "no such text", new_str: "x" }),
        "was not found",
      ],
      ["unknown tool", { name: "bash", input: { command: "cat /etc/passwd" } }, 'unknown tool "bash"'],
      [
        "run a test task",
        { name: "run_train_tasks", input: { task_ids: ["t1", TEST_TASK_ID] } },
        "only train tasks may be run",
      ],
      [
        "over the task-run budget",
        { name: "run_train_tasks", input: { task_ids: ["t1", "t2", "t3"] } },
        "2 of 2 task runs left",
      ],
      ["task_ids of wrong type", { name: "run_train_tasks", input: { task_ids: "t1" } }, "task_ids"],
      [
        "finish without commit_message",
        { name: "finish", input: { ...FINISH, commit_message: undefined } },
        "commit_message",
      ],
      ["invalid regex", { name: "search_traces", input: { pattern: "(", regex: true } }, "invalid regular expression"],
    ];
    const before = hashTree(fx.root);
    const { output, runner, requests } = await drive(
      "edit",
      cases.map(([, call], i) => toolCalls({ ...call, id: `hostile_${i}` })),
    );
    expect(cases).toHaveLength(28);
    for (const [i, [label, , expected]] of cases.entries()) {
      const result = toolResultIn(requests[i + 1]!.body, `hostile_${i}`);
      expect(result, label).toBeDefined();
      expect(result!.is_error, label).toBe(true);
      expect(result!.content, label).toContain(expected);
    }
    // The model was told what is allowed.
    expect(toolResultIn(requests[1]!.body, "hostile_0")!.content).toContain("writable: agent/agent.ts only");
    expect(hashTree(fx.root)).toBe(before);
    expect(runner.requests).toHaveLength(0);
    expect((output as { changed: boolean }).changed).toBe(false);
    expect(requests).toHaveLength(cases.length + 1);
  });

  it("the analyze phase is read-only", async () => {
    fx = makeFixture();
    const before = hashTree(fx.root);
    const { requests } = await drive("analyze", [
      toolCalls(editorCall({ command: "create", path: "agent/agent.ts", file_text: "x" }, "w1")),
      toolCalls({ name: "run_train_tasks", input: { task_ids: ["t1"] }, id: "w2" }),
    ]);
    expect(toolResultIn(requests[1]!.body, "w1")).toMatchObject({
      is_error: true,
      content: expect.stringContaining("read-only"),
    });
    expect(toolResultIn(requests[2]!.body, "w2")).toMatchObject({
      is_error: true,
      content: expect.stringContaining('unknown tool "run_train_tasks" in the analyze phase'),
    });
    expect(hashTree(fx.root)).toBe(before);
  });

  it("checkWrite refuses agent/agent.ts when it is a symlink elsewhere", () => {
    fx = makeFixture();
    const agentFile = join(fx.root, "agent/agent.ts");
    rmSync(agentFile);
    symlinkSync(join(fx.root, "experiment_config.yaml"), agentFile);
    expect(checkWrite(fx.root, "agent/agent.ts")).toMatchObject({ ok: false });
    expect(checkRead(fx.root, "agent/agent.ts", null)).toMatchObject({ ok: false });
  });
});

describe("large results", () => {
  it("cuts a huge trace with a note on how to page, and pages on with view_range", async () => {
    fx = makeFixture();
    const lines = Array.from({ length: 5_000 }, (_, i) => `{"step":${i + 1},"text":"${"x".repeat(90)} TRAIN_MARKER"}`);
    writeFileSync(join(fx.root, "workspace/traces/latest/t1/huge.jsonl"), lines.join("\n"));
    writeFileSync(join(fx.root, "workspace/traces/latest/t3/one-line.json"), `"${"y".repeat(300_000)}"`);
    const { requests } = await drive("analyze", [
      toolCalls(editorCall({ command: "view", path: "workspace/traces/latest/t1/huge.jsonl" }, "v1")),
      toolCalls(
        editorCall({ command: "view", path: "workspace/traces/latest/t1/huge.jsonl", view_range: [180, 182] }, "v2"),
      ),
      toolCalls(editorCall({ command: "view", path: "workspace/traces/latest/t3/one-line.json" }, "v3")),
      toolCalls({ name: "search_traces", input: { pattern: "TRAIN_MARKER" }, id: "s1" }),
    ]);
    const first = toolResultIn(requests[1]!.body, "v1")!.content;
    expect(first.length).toBeLessThanOrEqual(20_000 + 300);
    const note = /showed lines 1-(\d+) of 5000; call view with view_range \[(\d+), -1\]/.exec(first);
    expect(note).not.toBeNull();
    expect(Number(note![2])).toBe(Number(note![1]) + 1);
    const paged = toolResultIn(requests[2]!.body, "v2")!.content;
    expect(paged.split("\n")).toHaveLength(3);
    expect(paged).toContain('   180\t{"step":180,');
    const oneLine = toolResultIn(requests[3]!.body, "v3")!.content;
    expect(oneLine.length).toBeLessThanOrEqual(20_000 + 300);
    expect(oneLine).toContain("line 1 has 300002 characters");
    const search = toolResultIn(requests[4]!.body, "s1")!.content;
    expect(search).toContain("workspace/traces/latest/t1/huge.jsonl:1:");
    expect(search).toContain("[stopped at 50 matches");
    expect(search.split("\n").filter((l) => l.includes(".jsonl:"))).toHaveLength(50);
    // No single request balloons: the whole conversation stays far below the trace sizes.
    for (const r of requests) expect(r.raw.length).toBeLessThan(80_000);
  });
});

describe("test split stays out of every request", () => {
  it("no request body contains a test task's id or content", async () => {
    fx = makeFixture();
    const { requests } = await drive("analyze", [
      toolCalls(editorCall({ command: "view", path: "." })),
      toolCalls(editorCall({ command: "view", path: "workspace" })),
      toolCalls(editorCall({ command: "view", path: "workspace/traces/baseline" })),
      toolCalls(editorCall({ command: "view", path: "workspace/traces/baseline/t1/trace.json" })),
      toolCalls(editorCall({ command: "view", path: "workspace/traces" })),
      toolCalls({ name: "search_traces", input: { pattern: "TRAIN_MARKER" }, id: "s1" }),
      toolCalls({ name: "search_traces", input: { pattern: "MARKER_\\d+", regex: true } }),
      toolCalls(editorCall({ command: "view", path: "workspace/split.json" })),
      toolCalls(editorCall({ command: "view", path: "workspace/test_outputs/secret.json" })),
      toolCalls({ name: "list_failing_tasks", input: {} }),
      toolCalls(editorCall({ command: "view", path: "workspace/train_results.json" })),
      toolCalls(editorCall({ command: "view", path: "workspace/learnings.md" })),
    ]);
    // The exploration did reach train content, so the absence below means something.
    expect(toolResultIn(requests[6]!.body, "s1")!.content).toContain("workspace/traces/latest/t1/trace.json:2:");
    const everything = requests.map((r) => r.raw).join("\n");
    expect(everything).toContain("TRAIN_MARKER baseline");
    expect(requests.length).toBe(13);
    for (const r of requests) {
      expect(r.raw).not.toContain(TEST_TASK_ID);
      expect(r.raw).not.toContain(TEST_CONTENT_MARKER);
    }
  });
});

describe("the split is the journal's pin, never workspace/split.json", () => {
  it("a split.json rewritten to call the test task train opens none of its traces and runs none of its tasks", async () => {
    fx = makeFixture();
    // What an unsealed agent under test, or a stray edit, could do to the view.
    const file = join(fx.root, "workspace/split.json");
    const split = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...split, train: [...split.train, TEST_TASK_ID], test: [] }));
    const { requests, runner } = await drive(
      "edit",
      [
        toolCalls(editorCall({ command: "view", path: `workspace/traces/baseline/${TEST_TASK_ID}/trace.json` }, "v1")),
        toolCalls(editorCall({ command: "view", path: "workspace/traces/baseline" }, "v2")),
        toolCalls({ name: "search_traces", input: { pattern: "TRAIN_MARKER", task_id: TEST_TASK_ID }, id: "s1" }),
        toolCalls({ name: "run_train_tasks", input: { task_ids: [TEST_TASK_ID] }, id: "r1" }),
      ],
      { taskRunBudget: 5 },
    );
    expect(toolResultIn(requests[1]!.body, "v1")).toMatchObject({ is_error: true });
    expect(toolResultIn(requests[2]!.body, "v2")!.content).toContain("workspace/traces/baseline/t1/");
    expect(toolResultIn(requests[3]!.body, "s1")).toMatchObject({ is_error: true });
    expect(toolResultIn(requests[4]!.body, "r1")).toMatchObject({ is_error: true });
    expect(runner.requests).toEqual([]);
    expect(toolResultIn(requests[2]!.body, "v2")!.content).not.toContain(TEST_TASK_ID);
    for (const r of requests) expect(r.raw).not.toContain(TEST_CONTENT_MARKER);
  });
});

describe("digest", () => {
  it("re-reads PROGRAM.md for each phase run", async () => {
    fx = makeFixture();
    writeFileSync(join(fx.root, "PROGRAM.md"), "# Program\nSTEER_MARKER_B2\n");
    const { requests } = await drive("analyze", []);
    expect(requests[0]!.body.system[0].text).toContain("STEER_MARKER_B2");
    expect(readFileSync(join(fx.root, "PROGRAM.md"), "utf8")).toContain("STEER_MARKER_B2");
  });
});
