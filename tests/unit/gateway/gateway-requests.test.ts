/**
 * What a hostile or careless agent can put in a request, tried on the gateway itself (a request relayed over
 * the sandbox's channel arrives as data, so header values an HTTP client would refuse to send must be checked
 * too): each is refused as the agent's fault with the field named, and nothing reaches the provider. Then the
 * formats' rebuild, table by table: what passes is what the schema knows, never the body as sent.
 */
import { describe, expect, it } from "vitest";
import { anthropicMessages } from "../../../src/gateway/formats/anthropic.ts";
import { openaiChat } from "../../../src/gateway/formats/openai-chat.ts";
import { openaiResponses } from "../../../src/gateway/formats/openai-responses.ts";
import type { GatewayRequest } from "../../../src/gateway/gateway.ts";
import { EventSplitter, parseSse } from "../../../src/gateway/sse.ts";
import { captureSink, gatewayWorld, post } from "../../helpers/gateway.ts";

const chat = { model: "gpt-5-mini", messages: [{ role: "user", content: "hi" }] };
const anthropicBody = { model: "claude-sonnet-4-6", max_tokens: 10, messages: [{ role: "user", content: "hi" }] };

function request(over: Partial<GatewayRequest>): GatewayRequest {
  return { method: "POST", path: "/v1/chat/completions", headers: {}, body: JSON.stringify(chat), ...over };
}

describe("the gateway refuses a malformed request as the agent's fault, before anything is forwarded", () => {
  it.each([
    [
      "a CR/LF in a header value",
      request({ headers: { "x-note": "a\r\nx-api-key: stolen" } }),
      400,
      /header x-note: its value has a control character/,
    ],
    ["a NUL in a header value", request({ headers: { accept: "json\u0000" } }), 400, /header accept/],
    ["a header name that is not a token", request({ headers: { "bad name": "v" } }), 400, /not a valid header name/],
    ["a body that is not JSON", request({ body: "{model: gpt" }), 400, /\(body\): not JSON/],
    ["a body that is a JSON array", request({ body: "[1,2]" }), 400, /\(body\): expected a JSON object/],
    ["no body at all", request({ body: null }), 400, /\(body\): not JSON/],
    ["a GET", request({ method: "GET", path: "/v1/models" }), 404, /GET \/v1\/models: the gateway serves only POST/],
    ["a path without /v1", request({ path: "/chat/completions" }), 404, /base URL ends in \/v1/],
    [
      "count_tokens",
      request({ path: "/v1/messages/count_tokens", body: JSON.stringify(anthropicBody) }),
      404,
      /serves only/,
    ],
    [
      "a beta outside the list",
      request({
        path: "/v1/messages",
        headers: { "anthropic-beta": "mcp-client-2025-04-04" },
        body: JSON.stringify(anthropicBody),
      }),
      400,
      /anthropic-beta: `mcp-client-2025-04-04` is not allowed through the gateway/,
    ],
    [
      "an anthropic-version that is not a date",
      request({
        path: "/v1/messages",
        headers: { "anthropic-version": "latest" },
        body: JSON.stringify(anthropicBody),
      }),
      400,
      /anthropic-version: got "latest"/,
    ],
    [
      "an unknown field",
      request({ body: JSON.stringify({ ...chat, temperature_boost: 2 }) }),
      400,
      /temperature_boost: unknown field/,
    ],
    [
      "several choices",
      request({ body: JSON.stringify({ ...chat, n: 5 }) }),
      400,
      /n: got 5; several choices multiply the cost/,
    ],
  ])("%s", async (_name, req, status, reason) => {
    const world = await gatewayWorld();
    const { reply, sink } = captureSink();
    const result = await world.gateway.handle(req, sink);
    expect(reply.status).toBe(status);
    expect(reply.ended).toBe(true);
    expect(result).toMatchObject({ class: "agent-request", infra: false, status, paid: null });
    expect(result.reason).toMatch(reason);
    expect(reply.body).toContain(JSON.stringify(result.reason).slice(1, 20));
    expect(world.server.requests).toHaveLength(0);
  });

  it("a body over the size limit is refused with 413", async () => {
    const world = await gatewayWorld({ gateway: { maxRequestBytes: 1024 } });
    const big = { ...chat, messages: [{ role: "user", content: "x".repeat(2000) }] };
    const { reply, sink } = captureSink();
    const result = await world.gateway.handle(request({ body: JSON.stringify(big) }), sink);
    expect([reply.status, result.class]).toEqual([413, "agent-request"]);
    expect(world.server.requests).toHaveLength(0);
  });

  it("a beta on the list passes, with the harness's key and never the agent's headers", async () => {
    const world = await gatewayWorld({ server: { script: [{ reply: { content: [{ type: "text", text: "ok" }] } }] } });
    const { reply, sink } = captureSink();
    const headers = {
      "anthropic-beta": "interleaved-thinking-2025-05-14",
      "x-forwarded-for": "1.2.3.4",
      cookie: "a=b",
    };
    const result = await world.gateway.handle(
      request({ path: "/v1/messages", headers, body: JSON.stringify(anthropicBody) }),
      sink,
    );
    expect([reply.status, result.class]).toEqual([200, "ok"]);
    const seen = world.server.requests[0]!.headers;
    expect(seen["anthropic-beta"]).toBe("interleaved-thinking-2025-05-14");
    expect(seen["x-forwarded-for"]).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
  });

  it("over HTTP: a wrong or missing token is refused before the gateway sees the call", async () => {
    const world = await gatewayWorld();
    expect((await post(world, "/v1/chat/completions", chat, "not-the-token")).status).toBe(401);
    expect((await post(world, "/v1/chat/completions", chat, "")).status).toBe(401);
    const upstreamKeyAsToken = await post(world, "/v1/chat/completions", chat, "upstream-secret-7f3a9c2e5b41d8");
    expect(upstreamKeyAsToken.status).toBe(401);
    expect(world.server.requests).toHaveLength(0);
  });
});

describe("each format rebuilds a request from its allow-list", () => {
  it("the Messages API: known fields pass as parsed; a URL image, a file source and a 1-hour cache do not", () => {
    const ok = anthropicMessages.parse({
      ...anthropicBody,
      system: [{ type: "text", text: "be brief", cache_control: { type: "ephemeral" } }],
      tools: [{ name: "lookup", input_schema: { type: "object" } }],
      thinking: { type: "enabled", budget_tokens: 2048 },
    });
    expect(ok.ok && ok.request).toMatchObject({ model: "claude-sonnet-4-6", stream: false, maxOutputTokens: 10 });
    const image = (source: object) => ({
      ...anthropicBody,
      messages: [{ role: "user", content: [{ type: "image", source }] }],
    });
    expect(anthropicMessages.parse(image({ type: "url", url: "https://x.example/a.png" }))).toMatchObject({
      ok: false,
    });
    expect(anthropicMessages.parse(image({ type: "file", file_id: "file_1" }))).toMatchObject({ ok: false });
    const hour = {
      ...anthropicBody,
      system: [{ type: "text", text: "s", cache_control: { type: "ephemeral", ttl: "1h" } }],
    };
    expect(anthropicMessages.parse(hour)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^system\.0\.cache_control\.ttl/),
    });
    expect(anthropicMessages.parse({ ...anthropicBody, container: "c_1" })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^container: not allowed/),
    });
  });

  it("the Messages API: a request without max_tokens gets the cap; the provider's model name is sent", () => {
    const { max_tokens: _, ...noCap } = anthropicBody;
    const parsed = anthropicMessages.parse({ ...noCap, model: "anthropic/claude-sonnet-4-6" });
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(anthropicMessages.finalize(parsed.request, "claude-sonnet-4-6", 777)).toEqual({
      ...noCap,
      model: "claude-sonnet-4-6",
      max_tokens: 777,
    });
  });

  it("Chat Completions: stream_options is forced on a stream and dropped otherwise; a file id is refused", () => {
    const streamed = openaiChat.parse({ ...chat, stream: true, stream_options: { include_usage: false } });
    if (!streamed.ok) throw new Error(streamed.reason);
    expect(openaiChat.finalize(streamed.request, "gpt-5-mini", 100)).toMatchObject({
      stream_options: { include_usage: true },
      max_completion_tokens: 100,
    });
    const whole = openaiChat.parse({ ...chat, stream_options: { include_usage: true }, max_tokens: 50 });
    if (!whole.ok) throw new Error(whole.reason);
    const sent = openaiChat.finalize(whole.request, "gpt-5-mini", 100);
    expect(sent.stream_options).toBeUndefined();
    expect([sent.max_tokens, sent.max_completion_tokens]).toEqual([50, undefined]);
    const file = { ...chat, messages: [{ role: "user", content: [{ type: "file", file: { file_id: "file-1" } }] }] };
    expect(openaiChat.parse(file)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/file_id: unknown field/),
    });
  });

  it("Chat Completions: a reply's message passed back as it came is taken, its annotations not sent back", () => {
    const reply = { role: "assistant", content: "hi", refusal: null, annotations: [{ type: "url_citation" }] };
    const parsed = openaiChat.parse({ ...chat, messages: [{ role: "user", content: "hi" }, reply] });
    if (!parsed.ok) throw new Error(parsed.reason);
    const sent = JSON.parse(JSON.stringify(openaiChat.finalize(parsed.request, "gpt-5-mini", 100)));
    expect(sent.messages[1]).toEqual({ role: "assistant", content: "hi", refusal: null });
  });

  it("Responses: store is always false upstream; stored prompts, conversations and item references are refused", () => {
    const parsed = openaiResponses.parse({ model: "gpt-5-mini", input: [{ role: "user", content: "hi" }] });
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(openaiResponses.finalize(parsed.request, "gpt-5-mini", 64)).toEqual({
      model: "gpt-5-mini",
      input: [{ type: "message", role: "user", content: "hi" }],
      store: false,
      max_output_tokens: 64,
    });
    for (const [field, value] of [
      ["conversation", "conv_1"],
      ["prompt", { id: "pmpt_1" }],
      ["background", true],
    ] as const) {
      expect(openaiResponses.parse({ model: "m", input: "x", [field]: value })).toMatchObject({
        ok: false,
        reason: expect.stringMatching(new RegExp(`^${field}: not allowed`)),
      });
    }
    const reference = openaiResponses.parse({ model: "m", input: [{ type: "item_reference", id: "msg_1" }] });
    expect(reference).toMatchObject({ ok: false, reason: expect.stringMatching(/^input\.0\.type/) });
    const mcp = openaiResponses.parse({ model: "m", input: "x", tools: [{ type: "mcp", server_url: "https://x" }] });
    expect(mcp).toMatchObject({ ok: false, reason: expect.stringMatching(/^tools\.0\.type: got "mcp"/) });
  });
});

describe("each format meters usage from the reply it got", () => {
  it("a Chat Completions stream's usage chunk; cached tokens are taken out of the input", () => {
    const text = [
      { id: "c1", model: "gpt-5-mini", choices: [{ index: 0, delta: { content: "Hel" }, finish_reason: null }] },
      { id: "c1", model: "gpt-5-mini", choices: [{ index: 0, delta: { content: "lo" }, finish_reason: "stop" }] },
      {
        id: "c1",
        choices: [],
        usage: { prompt_tokens: 120, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 100 } },
      },
    ]
      .map((c) => `data: ${JSON.stringify(c)}\n\n`)
      .join("");
    const whole = openaiChat.meter(`${text}data: [DONE]\n\n`, true);
    expect(whole).toMatchObject({
      usage: { input_tokens: 20, cache_read_input_tokens: 100, output_tokens: 7 },
      stopReason: "stop",
      complete: true,
    });
    expect((whole.response as { choices: { message: { content: string } }[] }).choices[0]?.message.content).toBe(
      "Hello",
    );
    expect(openaiChat.meter(text, true).complete).toBe(false);
  });

  it("a Messages stream cut after message_start still shows the input it was paid for", () => {
    const start = {
      type: "message_start",
      message: { id: "m", model: "x", usage: { input_tokens: 500, output_tokens: 1 } },
    };
    const metered = anthropicMessages.meter(`event: message_start\ndata: ${JSON.stringify(start)}\n\n`, true);
    expect(metered).toMatchObject({ usage: { input_tokens: 500, output_tokens: 1 }, complete: false });
  });

  it("a Responses stream's terminal event carries the usage; an error body carries none", () => {
    const done = {
      type: "response.completed",
      response: { object: "response", status: "completed", usage: { input_tokens: 30, output_tokens: 4 } },
    };
    expect(openaiResponses.meter(`event: response.completed\ndata: ${JSON.stringify(done)}\n\n`, true)).toMatchObject({
      usage: { input_tokens: 30, output_tokens: 4 },
      stopReason: "completed",
      complete: true,
    });
    expect(openaiResponses.meter('{"error":{"message":"no"}}', false)).toMatchObject({ usage: null, complete: false });
  });
});

describe("a stream is cut into whole events however its bytes arrive", () => {
  it("the same events come out of any split, CRLF separators and a long event in many pieces included", () => {
    const events = [
      'data: {"a":1}\n\n',
      "event: x\r\ndata: two\r\n\r\n",
      `data: ${"z".repeat(5000)}\n\n`,
      "data: [DONE]\n\n",
    ];
    const stream = events.join("");
    for (const size of [1, 2, 3, 7, 64, 4096]) {
      const splitter = new EventSplitter();
      const out: string[] = [];
      for (let i = 0; i < stream.length; i += size) {
        const whole = splitter.push(stream.slice(i, i + size));
        if (whole) out.push(whole);
      }
      expect(out.join("") + splitter.rest()).toBe(stream);
      expect(parseSse(out.join("")).map((e) => e.data.slice(0, 8))).toEqual(['{"a":1}', "two", "zzzzzzzz", "[DONE]"]);
    }
  });
});
