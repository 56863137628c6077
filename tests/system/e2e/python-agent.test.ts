/**
 * Python agents in the sealed agent process: the harness's Python runtime speaks the same protocol as
 * the TypeScript child. Real bubblewrap, real python3, the local test LLM server; each test asserts
 * what the operator would see (rewards, trace notes, what the model endpoint received).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type RecordedRequest,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../../../dev/llm-server/llm-server.ts";
import { checkAgent } from "../../../src/benchmark/sealed/load-check.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { type Experiment, makeExperiment } from "../../helpers/benchmark-fixtures.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const PY_AGENT = `import os, time

def run(task, ctx):
    mode = (task["input"] or {}).get("mode")
    if mode == "throw":
        raise ValueError("agent exploded on purpose")
    if mode == "exit":
        os._exit(3)
    if mode == "hang":
        time.sleep(1000)
    reply = ctx.client.messages.create(model=ctx.model, max_tokens=50,
                                       messages=[{"role": "user", "content": task["id"]}])
    text = "".join(b.get("text", "") for b in reply["content"])
    ctx.trace.note("got " + text, {"stop": reply.get("stop_reason")})
    return text
`;

const HOSTILE = `import json, os, socket

def run(task, ctx):
    seen = {"env": sorted(k for k in os.environ if k != "NODE_CHANNEL_FD" and not k.startswith("NODE_CHANNEL"))}
    for name, path in {"journal": JOURNAL, "tasks": TASKS, "home": os.path.expanduser("~/.bashrc")}.items():
        try:
            with open(path) as f:
                seen[name] = f.read()[:40]
        except OSError as e:
            seen[name] = type(e).__name__
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
        seen["connect"] = "connected"
    except OSError as e:
        seen["connect"] = type(e).__name__
    try:
        with open(os.path.join(os.path.dirname(__file__), "planted.py"), "w") as f:
            f.write("x")
        seen["write"] = "wrote"
    except OSError as e:
        seen["write"] = type(e).__name__
    ctx.trace.note(json.dumps(seen))
    return json.dumps(seen)
`;

let server: TestLlmServer | null = null;
let exp: Experiment | null = null;
afterEach(async () => {
  exp?.cleanup();
  exp = null;
  await server?.close();
  server = null;
});

function pyExperiment(
  tasks: Record<string, unknown>[],
  agent: string,
  config: Record<string, unknown> = {},
): Experiment {
  const e = makeExperiment({
    tasks,
    agent: "",
    baseURL: server!.url,
    split: { train: tasks.map((t) => String(t.id)), test: [] },
    config: { agent_file: "agent/agent.py", ...config },
  });
  writeFileSync(join(e.root, "agent", "agent.py"), agent);
  return e;
}

const trace = (e: Experiment, id: string) =>
  JSON.parse(readFileSync(join(paths(e.root).tracesLatest, id, "trace.json"), "utf8")) as {
    events: { kind: string; message?: string; data?: unknown }[];
    error: string | null;
  };

describe.skipIf(!haveTool("bwrap", "bubblewrap") || !haveTool("python3"))("Python agents, sealed", () => {
  it("run through the harness: model calls forwarded and metered, notes traced, failures charged to their task only", async () => {
    server = await startTestLlmServer({
      responder: (req: RecordedRequest) => textReply(`echo ${req.body?.messages?.[0]?.content}`),
    });
    const tasks = [
      { id: "ok-1", input: {}, expected: "echo ok-1" },
      { id: "ok-2", input: {}, expected: "echo ok-2" },
      { id: "throws", input: { mode: "throw" }, expected: "x" },
      { id: "exits", input: { mode: "exit" }, expected: "x" },
      { id: "hangs", input: { mode: "hang" }, expected: "x" },
    ];
    exp = pyExperiment(tasks, PY_AGENT, { per_task_timeout: 3 });
    const summary = await exp.runner({ warmSpare: false }).run({ split: "train", runId: null });
    expect(summary.results).toEqual({ "ok-1": 1, "ok-2": 1, throws: 0, exits: 0, hangs: 0 });
    const ok = trace(exp, "ok-1");
    expect(ok.events.map((e) => e.kind)).toEqual(["llm", "note"]);
    expect(ok.events[1]?.message).toContain("got echo ok-1");
    expect(trace(exp, "throws").error).toContain("agent exploded on purpose");
    // The model endpoint saw the key the harness holds, never one the agent had.
    expect(server.requests.filter((r) => r.path === "/v1/messages").length).toBeGreaterThanOrEqual(2);
    for (const r of server.requests) expect(r.headers["x-api-key"]).toBe("test-key-local");
  }, 120_000);

  it("a hostile Python agent sees no secrets, no harness files, no network, and cannot write its own file", async () => {
    server = await startTestLlmServer({ responder: () => textReply("hi") });
    const port = Number(new URL(server.url).port);
    exp = pyExperiment([{ id: "h1", input: {}, expected: "never" }], "");
    const agent = HOSTILE.replace("JOURNAL", JSON.stringify(paths(exp.root).journal))
      .replace("TASKS", JSON.stringify(join(exp.root, "bench", "tasks.jsonl")))
      .replace("PORT", String(port));
    writeFileSync(join(exp.root, "agent", "agent.py"), agent);
    process.env.ANTHROPIC_API_KEY_CANARY = "sk-canary";
    try {
      const summary = await exp.runner({ warmSpare: false }).run({ split: "train", runId: null });
      expect(summary.results).toEqual({ h1: 0 });
    } finally {
      delete process.env.ANTHROPIC_API_KEY_CANARY;
    }
    const note = trace(exp, "h1").events.find((e) => e.kind === "note")?.message ?? "";
    const seen = JSON.parse(note.replace(/^⟦agent⟧ /, "").replace(/ ⟦\/agent⟧$/, ""));
    // Only what Python (LC_CTYPE) and bubblewrap's working directory (PWD) set, and where SDKs find the harness's
    // endpoint inside the sandbox with a placeholder for a key: nothing of the harness's.
    const sdk = ["OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"];
    expect(seen.env.filter((k: string) => !["LC_CTYPE", "PWD", ...sdk].includes(k))).toEqual([]);
    expect(seen.journal).toBe("FileNotFoundError");
    expect(seen.tasks).toBe("FileNotFoundError");
    expect(seen.home).toBe("FileNotFoundError");
    expect(seen.connect).toMatch(/Error/);
    expect(seen.connect).not.toBe("connected");
    expect(seen.write).toMatch(/OSError|PermissionError/);
  }, 120_000);

  it("the load check compiles and imports the agent in the sandbox, and says why it fails", async () => {
    const dir = tempDir("py-check-");
    const file = join(dir, "agent.py");
    writeFileSync(file, "def run(task, ctx):\n    return 'ok'\n");
    expect(await checkAgent(file, { sandbox: "bwrap" })).toEqual({ ok: true });
    writeFileSync(file, "def run(task, ctx)\n    return 'ok'\n");
    const syntax = await checkAgent(file, { sandbox: "bwrap" });
    expect(syntax.ok).toBe(false);
    expect(!syntax.ok && syntax.message).toMatch(/line 1[\s\S]*SyntaxError/);
    // Importing it runs it: that happens sealed, so reading a host file fails there.
    writeFileSync(file, `open(${JSON.stringify(file)}).read()\ndef run(task, ctx):\n    return 1\n`);
    const sealed = await checkAgent(file, { sandbox: "bwrap" });
    expect(!sealed.ok && sealed.message).toContain("FileNotFoundError");
    writeFileSync(file, "VALUE = 1\n");
    const shape = await checkAgent(file, { sandbox: "bwrap" });
    expect(!shape.ok && shape.message).toContain("define run(task, ctx) or a class HarnessAgent");
  }, 60_000);
});
