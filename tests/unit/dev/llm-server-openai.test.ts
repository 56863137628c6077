/**
 * The test server's OpenAI formats, read by the real `openai` SDK over real HTTP: what the SDK assembles from
 * each reply (text, tool calls, usage), the usage chunk a stream carries only when asked, and the faults the
 * gateway's tests inject (429, 5xx, dropped connections, a broken stream, an endpoint echoing the key).
 */
import OpenAI, { APIConnectionError, APIError, AuthenticationError, RateLimitError } from "openai";
import { afterEach, describe, expect, it } from "vitest";
import {
  LISTED_MODELS,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
  toolUseReply,
} from "../../../dev/llm-server/llm-server.ts";

const MODEL = "gpt-5-mini";
const messages = [{ role: "user" as const, content: "hello there" }];

let server: TestLlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function sdk(s: TestLlmServer, maxRetries = 0): OpenAI {
  return new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "test-key", maxRetries });
}

describe("test LLM server: Chat Completions with the real openai SDK", () => {
  it("answers a completion with text and usage (cached tokens inside the prompt count), and records it", async () => {
    server = await startTestLlmServer({
      script: [textReply("hi!", { input_tokens: 40, output_tokens: 3, cache_read_input_tokens: 60 })],
    });
    const reply = await sdk(server).chat.completions.create({ model: MODEL, messages });
    expect(reply.choices[0]?.message.content).toBe("hi!");
    expect(reply.choices[0]?.finish_reason).toBe("stop");
    expect(reply.usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 3, total_tokens: 103 });
    expect(reply.usage?.prompt_tokens_details?.cached_tokens).toBe(60);
    expect(server.requests[0]?.path).toBe("/v1/chat/completions");
    expect(server.requests[0]?.headers.authorization).toBe("Bearer test-key");
  });

  it("streams text and a tool call the SDK assembles; usage comes only when include_usage asks", async () => {
    server = await startTestLlmServer({
      script: [toolUseReply("lookup", { id: 7 }), textReply("streamed words", { output_tokens: 5 })],
    });
    const api = sdk(server);
    const withTool = await api.chat.completions
      .stream({ model: MODEL, messages, stream_options: { include_usage: true } })
      .finalChatCompletion();
    const call = withTool.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function).toMatchObject({ name: "lookup", arguments: '{"id":7}' });
    expect(withTool.choices[0]?.finish_reason).toBe("tool_calls");
    expect(withTool.usage?.completion_tokens).toBeGreaterThan(0);

    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of await api.chat.completions.create({ model: MODEL, messages, stream: true }))
      chunks.push(chunk);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("streamed words");
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it("lists models and refuses an unknown one or another key, in OpenAI's error shape", async () => {
    server = await startTestLlmServer({ apiKey: "right-key-123", models: [MODEL] });
    const listed = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "right-key-123" }).models.list();
    expect(listed.data.map((m) => m.id)).toEqual([MODEL]);
    await expect(sdk(server).chat.completions.create({ model: MODEL, messages })).rejects.toBeInstanceOf(
      AuthenticationError,
    );
    const unknown = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "right-key-123", maxRetries: 0 });
    await expect(unknown.chat.completions.create({ model: "gpt-nope", messages })).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining("model: gpt-nope"),
    });
    const open = await startTestLlmServer();
    try {
      const all = await new OpenAI({ baseURL: `${open.url}/v1`, apiKey: "k" }).models.list();
      expect(all.data.map((m) => m.id)).toEqual(LISTED_MODELS);
    } finally {
      await open.close();
    }
  });

  it("a 429 is retried by the SDK after retry-after; a 500 surfaces once retries run out", async () => {
    server = await startTestLlmServer({
      script: [{ fault: "429", retryAfterMs: 10 }, textReply("after the limit"), { fault: "500" }],
    });
    const reply = await sdk(server, 1).chat.completions.create({ model: MODEL, messages });
    expect(reply.choices[0]?.message.content).toBe("after the limit");
    expect(server.requests).toHaveLength(2);
    const failed = await sdk(server)
      .chat.completions.create({ model: MODEL, messages })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(APIError);
    expect((failed as APIError).status).toBe(500);
  });

  it("a 429 without retries is a RateLimitError; a dropped connection a connection error", async () => {
    server = await startTestLlmServer({ script: [{ fault: "429" }, { fault: "drop" }] });
    await expect(sdk(server).chat.completions.create({ model: MODEL, messages })).rejects.toBeInstanceOf(
      RateLimitError,
    );
    await expect(sdk(server).chat.completions.create({ model: MODEL, messages })).rejects.toBeInstanceOf(
      APIConnectionError,
    );
  });

  it("a stream broken off or ended by an error event fails the SDK's iteration", async () => {
    server = await startTestLlmServer({ script: [{ fault: "drop-mid-stream" }, { fault: "stream-error" }] });
    const read = async () => {
      let text = "";
      for await (const c of await sdk(server!).chat.completions.create({ model: MODEL, messages, stream: true }))
        text += c.choices[0]?.delta.content ?? "";
      return text;
    };
    await expect(read()).rejects.toThrow();
    await expect(read()).rejects.toThrow(/Overloaded/);
  });

  it("an endpoint that echoes the caller's key puts it in the error body (the gateway's redaction is tested on it)", async () => {
    server = await startTestLlmServer({ script: [{ fault: "echo-key" }] });
    const failed = (await sdk(server)
      .chat.completions.create({ model: MODEL, messages })
      .catch((e: unknown) => e)) as APIError;
    expect(failed.status).toBe(400);
    expect(failed.message).toContain("test-key");
  });
});

describe("test LLM server: Responses with the real openai SDK", () => {
  it("answers a response with output text, a function call and usage", async () => {
    server = await startTestLlmServer({
      script: [
        {
          reply: {
            content: [
              { type: "text", text: "calling" },
              { type: "tool_use", name: "lookup", input: { q: 1 } },
            ],
          },
        },
      ],
    });
    const reply = await sdk(server).responses.create({ model: MODEL, input: "hello" });
    expect(reply.output_text).toBe("calling");
    const call = reply.output.find((i) => i.type === "function_call");
    expect(call).toMatchObject({ name: "lookup", arguments: '{"q":1}' });
    expect(reply.usage?.input_tokens).toBeGreaterThan(0);
    expect(reply.usage?.output_tokens).toBeGreaterThan(0);
    expect(server.requests[0]?.path).toBe("/v1/responses");
  });

  it("streams events the SDK assembles into the final response, usage included", async () => {
    server = await startTestLlmServer({
      script: [textReply("streamed answer", { output_tokens: 4, input_tokens: 9 })],
    });
    const stream = sdk(server).responses.stream({ model: MODEL, input: "hello" });
    const deltas: string[] = [];
    stream.on("response.output_text.delta", (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe("streamed answer");
    expect(deltas.join("")).toBe("streamed answer");
    expect(final.usage).toMatchObject({ input_tokens: 9, output_tokens: 4 });
  });

  it("a stream ended by an error event fails the SDK's stream", async () => {
    server = await startTestLlmServer({ script: [{ fault: "stream-error" }] });
    await expect(sdk(server).responses.stream({ model: MODEL, input: "hello" }).finalResponse()).rejects.toThrow();
  });
});
