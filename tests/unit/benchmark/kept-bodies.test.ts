/**
 * A long night in flat memory: what the harness keeps of a task is capped (a trace keeps the head of a huge model
 * reply or request, with its length, while the agent still gets all of it and the spend is still metered), and a
 * benchmark's scorer is imported once per content, however many adapters the gate builds. Real test LLM server,
 * real module imports.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { createLocalAdapter } from "../../../src/benchmark/adapters/local.ts";
import { keptBody, TRACE_BODY_MAX_CHARS } from "../../../src/benchmark/traces.ts";
import type { ReplySink } from "../../../src/gateway/gateway.ts";
import { tempDir } from "../../helpers/temp.ts";
import { tracedCall } from "../../helpers/traced-call.ts";

let server: TestLlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function collectingSink() {
  let received = 0;
  const sink: ReplySink = {
    head: () => {},
    chunk: (data) => {
      received += data.length;
    },
    end: (last) => {
      received += last?.length ?? 0;
    },
    fail: () => {},
  };
  return { sink, received: () => received };
}

describe("what a trace keeps of a model call is capped", () => {
  it("a 10 MB reply reaches the agent whole and is metered; the trace keeps its head and length", async () => {
    const huge = "x".repeat(10_000_000);
    server = await startTestLlmServer({ script: [textReply(huge, { input_tokens: 7, output_tokens: 2_500_000 })] });
    const { sink, received } = collectingSink();
    const body = JSON.stringify({
      model: "claude-sonnet-4-6",
      max_tokens: 10,
      messages: [{ role: "user", content: "hi" }],
    });
    const { result, event } = await tracedCall(server.url, body, sink);
    expect(received()).toBeGreaterThan(10_000_000);
    expect(result.paid).toMatchObject({ inputTokens: 7, outputTokens: 2_500_000 });
    const kept = event.response as { truncated: boolean; chars: number; head: string };
    expect(kept.truncated).toBe(true);
    expect(kept.chars).toBeGreaterThan(10_000_000);
    expect(kept.head.length).toBe(TRACE_BODY_MAX_CHARS);
    expect(JSON.stringify(event).length).toBeLessThan(TRACE_BODY_MAX_CHARS + 4096);
  });

  it("a huge request is forwarded whole; the trace keeps its head", async () => {
    server = await startTestLlmServer({ script: [textReply("ok")] });
    const content = "y".repeat(3_000_000);
    const body = JSON.stringify({ model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content }] });
    const { event } = await tracedCall(server.url, body, collectingSink().sink);
    expect(server.requests[0]?.body.messages[0].content).toHaveLength(3_000_000);
    expect(event.request).toMatchObject({ truncated: true, chars: body.length });
    expect(event.response).toMatchObject({ content: [{ type: "text", text: "ok" }] });
  });

  it("keptBody: whole within the cap, head and length beyond it", () => {
    expect(keptBody({ a: 1 }, 100)).toEqual({ a: 1 });
    expect(keptBody("z".repeat(150), 100)).toEqual({ truncated: true, chars: 150, head: "z".repeat(100) });
    expect(keptBody(null)).toBeNull();
  });
});

describe("a benchmark's scorer is imported once per content", () => {
  it("five adapters (five gates) load it once; an edited scorer loads anew", async () => {
    const dir = tempDir("scorer-once-");
    const counter = `__scorerLoads_${Date.now()}`;
    writeFileSync(join(dir, "tasks.jsonl"), `${JSON.stringify({ id: "t1", input: null })}\n`);
    const scorer = (reward: number) =>
      `(globalThis as Record<string, number>)[${JSON.stringify(counter)}] = ((globalThis as Record<string, number>)[${JSON.stringify(counter)}] ?? 0) + 1;\nexport default () => ${reward};\n`;
    writeFileSync(join(dir, "scorer.ts"), scorer(1));
    const loads = () => (globalThis as unknown as Record<string, number>)[counter] ?? 0;
    const adapterFor = () =>
      createLocalAdapter({ tasksFile: join(dir, "tasks.jsonl"), scorerFile: join(dir, "scorer.ts") });
    for (let i = 0; i < 5; i++) await adapterFor().loadTasks(["t1"]);
    expect(loads()).toBe(1);
    writeFileSync(join(dir, "scorer.ts"), scorer(0));
    const edited = adapterFor();
    const specs = await edited.loadTasks(["t1"]);
    expect(loads()).toBe(2);
    expect(await edited.score(specs.get("t1")!, { answer: "a", error: null } as never)).toBe(0);
  });
});
