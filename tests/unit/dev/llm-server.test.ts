import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import Anthropic, {
  AnthropicError,
  APIConnectionError,
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  OverloadedError,
} from "@anthropic-ai/sdk";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply, toolUseReply } from "../../../dev/llm-server/llm-server.ts";

const MODEL = "claude-sonnet-4-6";
const params = {
  model: MODEL,
  max_tokens: 256,
  messages: [{ role: "user" as const, content: "hello there" }],
};

let server: TestLlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function sdk(s: TestLlmServer, maxRetries = 2): Anthropic {
  return new Anthropic({ baseURL: s.url, apiKey: "test-key", maxRetries });
}

describe("test LLM server with the real SDK", () => {
  it("answers a non-streaming create with text and cache usage, and records the request", async () => {
    server = await startTestLlmServer({
      script: [textReply("hi!", { cache_creation_input_tokens: 100, cache_read_input_tokens: 200 })],
    });
    const message = await sdk(server).messages.create(params);
    expect(message.id).toBe("msg_test_1");
    expect(message.model).toBe(MODEL);
    expect(message.content).toEqual([{ type: "text", text: "hi!" }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.cache_creation_input_tokens).toBe(100);
    expect(message.usage.cache_read_input_tokens).toBe(200);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBe(1);
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req?.method).toBe("POST");
    expect(req?.path).toBe("/v1/messages");
    // SDK 1.x sends the API key as a bearer token, not x-api-key.
    expect(req?.headers.authorization).toBe("Bearer test-key");
    expect(req?.headers["anthropic-version"]).toBeTruthy();
    expect(req?.body.messages[0].content).toBe("hello there");
    expect(JSON.parse(req?.raw ?? "")).toEqual(req?.body);
  });

  it("streams a tool_use reply that finalMessage assembles, with usage from message_delta", async () => {
    server = await startTestLlmServer({
      script: [
        {
          reply: {
            content: [
              { type: "text", text: "Let me look." },
              { type: "tool_use", name: "read_file", input: { path: "agent/agent.ts", lines: [1, 20] } },
            ],
            usage: {
              input_tokens: 1234,
              output_tokens: 56,
              cache_read_input_tokens: 1000,
              cache_creation_input_tokens: 7,
            },
          },
        },
      ],
    });
    const stream = sdk(server).messages.stream(params);
    const texts: string[] = [];
    stream.on("text", (t) => texts.push(t));
    const message = await stream.finalMessage();
    expect(server.requests[0]?.body.stream).toBe(true);
    expect(texts.length).toBeGreaterThanOrEqual(2);
    expect(texts.join("")).toBe("Let me look.");
    expect(message.content).toEqual([
      { type: "text", text: "Let me look." },
      { type: "tool_use", id: "toolu_test_1", name: "read_file", input: { path: "agent/agent.ts", lines: [1, 20] } },
    ]);
    expect(message.stop_reason).toBe("tool_use");
    expect(message.usage).toMatchObject({
      input_tokens: 1234,
      output_tokens: 56,
      cache_read_input_tokens: 1000,
      cache_creation_input_tokens: 7,
    });
  });

  it("carries tool_result content back and keeps a given tool_use id", async () => {
    server = await startTestLlmServer({
      script: [toolUseReply("finish", { summary: "done" }, "toolu_given"), textReply("ok")],
    });
    const client = sdk(server);
    const first = await client.messages.stream(params).finalMessage();
    expect(first.content[0]).toMatchObject({ type: "tool_use", id: "toolu_given", name: "finish" });
    const second = await client.messages.create({
      ...params,
      messages: [
        ...params.messages,
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_given", content: "recorded" }] },
      ],
    });
    expect(second.content).toEqual([{ type: "text", text: "ok" }]);
    expect(server.requests[1]?.body.messages[2].content[0]).toMatchObject({
      type: "tool_result",
      tool_use_id: "toolu_given",
    });
  });

  it("lets the SDK retry 429 (retry-after-ms), 529 and 500 before the reply: 4 requests, one message", async () => {
    server = await startTestLlmServer({
      script: [
        { fault: "429", retryAfterMs: 5 },
        { fault: "529", retryAfterMs: 5 },
        { fault: "500", retryAfterSeconds: 0.005 },
        textReply("finally"),
      ],
    });
    const message = await sdk(server, 3).messages.stream(params).finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "finally" }]);
    expect(server.requests).toHaveLength(4);
    expect(server.remaining()).toBe(0);
  });

  it("sends retry-after-ms and retry-after headers as asked", async () => {
    server = await startTestLlmServer({
      script: [
        { fault: "429", retryAfterMs: 7 },
        { fault: "429", retryAfterSeconds: 3 },
      ],
    });
    const a = await fetch(`${server.url}/v1/messages`, { method: "POST", body: JSON.stringify(params) });
    expect(a.status).toBe(429);
    expect(a.headers.get("retry-after-ms")).toBe("7");
    expect(a.headers.get("retry-after")).toBeNull();
    expect(((await a.json()) as { error: { type: string } }).error.type).toBe("rate_limit_error");
    const b = await fetch(`${server.url}/v1/messages`, { method: "POST", body: JSON.stringify(params) });
    expect(b.headers.get("retry-after")).toBe("3");
    expect(b.headers.get("retry-after-ms")).toBeNull();
  });

  it("the SDK gives up after maxRetries + 1 requests of 529", async () => {
    server = await startTestLlmServer({ responder: () => ({ fault: "529", retryAfterMs: 1 }) });
    const error = await sdk(server, 2)
      .messages.create(params)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OverloadedError);
    expect((error as APIError).status).toBe(529);
    expect(server.requests).toHaveLength(3);
  });

  it("a stream dropped mid-way surfaces as an AnthropicError without status, and the SDK does not retry", async () => {
    server = await startTestLlmServer({ script: [{ fault: "drop-mid-stream" }, textReply("unused")] });
    const error = await sdk(server)
      .messages.stream(params)
      .finalMessage()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AnthropicError);
    expect(error).not.toBeInstanceOf(APIError);
    expect(server.requests).toHaveLength(1);
    expect(server.remaining()).toBe(1);
  });

  it("a non-streaming body cut after the headers is an error the SDK does not retry", async () => {
    server = await startTestLlmServer({ script: [{ fault: "drop-mid-stream" }, textReply("unused")] });
    const error = await sdk(server)
      .messages.create(params)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as APIError).status).toBeUndefined();
    expect(server.requests).toHaveLength(1);
  });

  it("an SSE error event mid-stream surfaces as an overloaded APIError without status, not retried by the SDK", async () => {
    server = await startTestLlmServer({ script: [{ fault: "stream-error" }, textReply("unused")] });
    const error = await sdk(server)
      .messages.stream(params)
      .finalMessage()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).status).toBeUndefined();
    expect((error as APIError).type).toBe("overloaded_error");
    expect(server.requests).toHaveLength(1);
  });

  it("a connection dropped before any response is retried by the SDK", async () => {
    server = await startTestLlmServer({ script: [{ fault: "drop" }, textReply("second time")] });
    const message = await sdk(server).messages.create(params);
    expect(message.content).toEqual([{ type: "text", text: "second time" }]);
    expect(server.requests).toHaveLength(2);
  });

  it("with no retries left a dropped connection is an APIConnectionError", async () => {
    server = await startTestLlmServer({ script: [{ fault: "drop" }] });
    const error = await sdk(server, 0)
      .messages.create(params)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(server.requests).toHaveLength(1);
  });

  it("401 and 400 are not retried by the SDK", async () => {
    server = await startTestLlmServer({ script: [{ fault: "401" }, { fault: "400", message: "max_tokens: too big" }] });
    const client = sdk(server);
    await expect(client.messages.create(params)).rejects.toBeInstanceOf(AuthenticationError);
    expect(server.requests).toHaveLength(1);
    const bad = await client.messages.create(params).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as Error).message).toContain("max_tokens: too big");
    expect(server.requests).toHaveLength(2);
  });

  it("answers 500 'script exhausted' when there is neither script nor responder", async () => {
    server = await startTestLlmServer();
    const error = await sdk(server, 0)
      .messages.create(params)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect((error as Error).message).toContain("test LLM server: script exhausted");
    expect(server.requests).toHaveLength(1);
  });

  it("uses the script first, then the responder with the request index; setResponder swaps it", async () => {
    server = await startTestLlmServer({
      script: [textReply("scripted")],
      responder: (req, index) => textReply(`responder #${index} saw ${req.body.messages[0].content}`),
    });
    const client = sdk(server, 0);
    const texts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = await client.messages.create(params);
      texts.push(m.content[0]?.type === "text" ? m.content[0].text : "");
    }
    expect(texts).toEqual(["scripted", "responder #1 saw hello there", "responder #2 saw hello there"]);
    server.setResponder(null);
    server.enqueue(textReply("enqueued"));
    expect(server.remaining()).toBe(1);
    const m = await client.messages.create(params);
    expect(m.content).toEqual([{ type: "text", text: "enqueued" }]);
    await expect(client.messages.create(params)).rejects.toBeInstanceOf(InternalServerError);
    expect(server.requests).toHaveLength(5);
  });

  it("answers count_tokens with a rough count that grows with the input", async () => {
    server = await startTestLlmServer();
    const client = sdk(server);
    const small = await client.messages.countTokens({ model: MODEL, messages: params.messages });
    const big = await client.messages.countTokens({
      model: MODEL,
      messages: [{ role: "user", content: "x".repeat(4000) }],
    });
    expect(small.input_tokens).toBeGreaterThan(0);
    expect(big.input_tokens).toBeGreaterThan(small.input_tokens + 900);
    expect(server.requests.map((r) => r.path)).toEqual(["/v1/messages/count_tokens", "/v1/messages/count_tokens"]);
  });

  it("close is idempotent and does not wait for a delayed reply", async () => {
    server = await startTestLlmServer({
      script: [{ reply: { content: [{ type: "text", text: "late" }] }, delayMs: 600_000 }],
    });
    const pending = sdk(server, 0)
      .messages.create(params)
      .catch((e: unknown) => e);
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    expect(await pending).toBeInstanceOf(APIConnectionError);
  });
});

describe("standalone test LLM server process", () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    child?.kill("SIGTERM");
    child = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("prints its url as one JSON line and answers with the responder module's default export", async () => {
    dir = await mkdtemp(join(tmpdir(), "llm-server-main-"));
    const responderFile = join(dir, "responder.ts");
    await writeFile(
      responderFile,
      `export default (req: { body: { model: string } }, index: number) =>
        ({ reply: { content: [{ type: "text", text: "child " + index + " " + req.body.model }] } });\n`,
    );
    child = spawn(
      process.execPath,
      ["--import", "tsx", "dev/llm-server/llm-server-main.ts", "--port", "0", "--responder", responderFile],
      { cwd: process.cwd(), stdio: ["ignore", "pipe", "inherit"] },
    );
    const stdout = child.stdout;
    if (!stdout) throw new Error("no stdout");
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: stdout }).once("line", resolve);
      child?.once("exit", (code) => reject(new Error(`server exited early with ${code}`)));
    });
    const { url } = JSON.parse(line) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const message = await new Anthropic({ baseURL: url, apiKey: "k", maxRetries: 0 }).messages.create(params);
    expect(message.content).toEqual([{ type: "text", text: `child 0 ${MODEL}` }]);
    const exited = new Promise<number | null>((resolve) => child?.once("exit", resolve));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    child = undefined;
  });
});
