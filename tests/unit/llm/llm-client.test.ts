import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply, toolUseReply } from "../../../dev/llm-server/llm-server.ts";
import { type Clock, ManualClock, systemClock } from "../../../src/clock.ts";
import { AbortedError, errorHandling, HarnessError } from "../../../src/errors.ts";
import {
  type AttemptInfo,
  callMessages,
  classifyLlmError,
  costUsd,
  createAnthropic,
  LOCAL_TEST_KEY,
  type MessageParams,
  priceFor,
  worstCaseCostUsd,
} from "../../../src/llm/client.ts";

const params: MessageParams = {
  model: "claude-sonnet-4-6",
  max_tokens: 256,
  messages: [{ role: "user", content: "improve the agent" }],
};

/** Injected time whose sleeps never end on their own: only an abort gets out. */
class StuckClock implements Clock {
  readonly sleeps: number[] = [];
  now(): number {
    return 0;
  }
  monotonic(): number {
    return 0;
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    return new Promise(() => {});
  }
}

let server: TestLlmServer | undefined;
afterEach(async () => {
  vi.unstubAllEnvs();
  await server?.close();
  server = undefined;
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

describe("createAnthropic", () => {
  it("uses a dummy key for a local base URL when no key is set", async () => {
    vi.stubEnv("ANTHROPIC_API_KEY", "");
    server = await startTestLlmServer({ script: [textReply("hi")] });
    const client = createAnthropic({ baseURL: server.url });
    const { message } = await callMessages(client, params, { clock: new ManualClock(0, true) });
    expect(message.content).toEqual([{ type: "text", text: "hi" }]);
    expect(server.requests[0]?.headers.authorization).toBe(`Bearer ${LOCAL_TEST_KEY}`);
  });

  it("takes base URL and key from the environment", async () => {
    server = await startTestLlmServer({ script: [textReply("env")] });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    vi.stubEnv("ANTHROPIC_API_KEY", "sk-from-env");
    const { message } = await callMessages(createAnthropic(), params, { clock: new ManualClock(0, true) });
    expect(message.content).toEqual([{ type: "text", text: "env" }]);
    expect(server.requests[0]?.headers.authorization).toBe("Bearer sk-from-env");
  });
});

describe("callMessages", () => {
  it("streams to the final message on the first attempt", async () => {
    server = await startTestLlmServer({ script: [toolUseReply("finish", { summary: "s" })] });
    const clock = new ManualClock(0, true);
    const result = await callMessages(createAnthropic({ baseURL: server.url }), params, { clock });
    expect(result.attempts).toBe(1);
    expect(result.message.content[0]).toMatchObject({ type: "tool_use", name: "finish", input: { summary: "s" } });
    expect(server.requests[0]?.body.stream).toBe(true);
    expect(clock.sleeps).toEqual([]);
  });

  it("leaves HTTP-level 429/529 to the SDK: 3 requests, one outer attempt, no outer backoff", async () => {
    server = await startTestLlmServer({
      script: [{ fault: "429", retryAfterMs: 2 }, { fault: "529", retryAfterMs: 2 }, textReply("ok")],
    });
    const clock = new ManualClock(0, true);
    const result = await callMessages(createAnthropic({ baseURL: server.url }), params, { clock });
    expect(result.attempts).toBe(1);
    expect(server.requests).toHaveLength(3);
    expect(clock.sleeps).toEqual([]);
  });

  it("retries a stream dropped mid-way after a backoff slept on the injected clock", async () => {
    server = await startTestLlmServer({ script: [{ fault: "drop-mid-stream" }, textReply("second try")] });
    const clock = new ManualClock(0, true);
    const seen: AttemptInfo[] = [];
    const result = await callMessages(createAnthropic({ baseURL: server.url }), params, {
      clock,
      onAttempt: (a) => seen.push(a),
    });
    expect(result.message.content).toEqual([{ type: "text", text: "second try" }]);
    expect(result.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
    expect(clock.sleeps).toEqual([1_000]);
    expect(seen.map((a) => [a.attempt, a.ok, a.waitMs])).toEqual([
      [1, false, 1_000],
      [2, true, undefined],
    ]);
  });

  it("retries an overloaded_error SSE event with growing backoff", async () => {
    server = await startTestLlmServer({
      script: [{ fault: "stream-error" }, { fault: "stream-error" }, { fault: "stream-error" }, textReply("ok")],
    });
    const clock = new ManualClock(0, true);
    const result = await callMessages(createAnthropic({ baseURL: server.url }), params, { clock, maxBackoffMs: 3_000 });
    expect(result.attempts).toBe(4);
    expect(server.requests).toHaveLength(4);
    expect(clock.sleeps).toEqual([1_000, 2_000, 3_000]);
  });

  it("gives up with LLM_UNAVAILABLE after outageMs of 529s, without multiplying SDK retries", async () => {
    server = await startTestLlmServer({ responder: () => ({ fault: "529", retryAfterMs: 1 }) });
    const clock = new ManualClock(0, true);
    const attempts: AttemptInfo[] = [];
    const outageMs = 10 * 60_000;
    const error = await rejection(
      callMessages(createAnthropic({ baseURL: server.url, maxRetries: 2 }), params, {
        clock,
        outageMs,
        maxBackoffMs: 60_000,
        onAttempt: (a) => attempts.push(a),
      }),
    );
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as HarnessError).code).toBe("LLM_UNAVAILABLE");
    expect(errorHandling(error)).toBe("resumable");
    // 1+2+4+...+32 s, then 60 s waits, capped at the deadline: 16 outer attempts for 10 minutes.
    expect(clock.now()).toBe(outageMs);
    expect(attempts).toHaveLength(16);
    expect(Math.max(...clock.sleeps)).toBe(60_000);
    // Each outer attempt is exactly one SDK call of maxRetries + 1 requests.
    expect(server.requests).toHaveLength(attempts.length * 3);
  });

  describe("the outage window is a duration on the monotonic clock", () => {
    /** An endless outage with the wall clock stepped by `stepMs` (NTP) after the first failure. */
    async function outageWithWallStep(stepMs: number) {
      server = await startTestLlmServer({ responder: () => ({ fault: "529", retryAfterMs: 1 }) });
      const clock = new ManualClock(Date.parse("2026-11-24T23:00:00Z"), true);
      const attempts: AttemptInfo[] = [];
      // Bounded: a window that never closes would retry for ever.
      const guard = new AbortController();
      const error = await rejection(
        callMessages(createAnthropic({ baseURL: server.url, maxRetries: 0 }), params, {
          clock,
          outageMs: 10 * 60_000,
          signal: guard.signal,
          onAttempt: (a) => {
            attempts.push(a);
            if (a.attempt === 1) clock.stepWall(stepMs);
            if (attempts.length > 100) guard.abort();
          },
        }),
      );
      return { error, attempts, clock };
    }

    it("an NTP step back during an outage still ends it with LLM_UNAVAILABLE (the run pauses)", async () => {
      const { error, attempts, clock } = await outageWithWallStep(-3_600_000);
      expect((error as HarnessError).code).toBe("LLM_UNAVAILABLE");
      expect(errorHandling(error)).toBe("resumable");
      expect(attempts).toHaveLength(16);
      expect(clock.monotonic()).toBe(10 * 60_000);
    });

    it("an NTP step forward does not end the window early", async () => {
      const { error, attempts, clock } = await outageWithWallStep(3_600_000);
      expect((error as HarnessError).code).toBe("LLM_UNAVAILABLE");
      // The whole ten minutes were waited out, not one attempt.
      expect(attempts).toHaveLength(16);
      expect(clock.monotonic()).toBe(10 * 60_000);
      expect((error as Error).message).toMatch(/kept failing for 600s over 16 attempts/);
    });
  });

  it("401 is LLM_REJECTED after exactly one request, naming the key", async () => {
    server = await startTestLlmServer({ script: [{ fault: "401" }] });
    const clock = new ManualClock(0, true);
    const error = await rejection(callMessages(createAnthropic({ baseURL: server.url }), params, { clock }));
    expect((error as HarnessError).code).toBe("LLM_REJECTED");
    expect(errorHandling(error)).toBe("fatal");
    expect((error as Error).message).toContain("ANTHROPIC_API_KEY");
    expect(server.requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("a missing key is LLM_REJECTED at once, not an outage to wait out", async () => {
    vi.stubEnv("ANTHROPIC_API_KEY", "");
    const clock = new ManualClock(0, true);
    const error = await rejection(
      callMessages(createAnthropic({ baseURL: "https://api.example.invalid" }), params, { clock }),
    );
    expect((error as HarnessError).code).toBe("LLM_REJECTED");
    expect((error as Error).message).toMatch(/ANTHROPIC_API_KEY is not set/);
    expect(clock.sleeps).toEqual([]);
  });

  it("400 is LLM_REJECTED after exactly one request, with the API's message", async () => {
    server = await startTestLlmServer({ script: [{ fault: "400", message: "messages: roles must alternate" }] });
    const error = await rejection(
      callMessages(createAnthropic({ baseURL: server.url }), params, { clock: new ManualClock(0, true) }),
    );
    expect((error as HarnessError).code).toBe("LLM_REJECTED");
    expect((error as Error).message).toContain("roles must alternate");
    expect(server.requests).toHaveLength(1);
  });

  it("a 429 for a spend limit is LLM_REJECTED without outer retries", async () => {
    const limit = {
      fault: "429",
      retryAfterMs: 1,
      message: "You have reached your specified API usage limits",
    } as const;
    server = await startTestLlmServer({ script: [limit, limit, limit, textReply("unused")] });
    const clock = new ManualClock(0, true);
    const error = await rejection(callMessages(createAnthropic({ baseURL: server.url }), params, { clock }));
    expect((error as HarnessError).code).toBe("LLM_REJECTED");
    // The SDK cannot tell a spend limit from a rate limit, so its own retries still run once.
    expect(server.requests).toHaveLength(3);
    expect(clock.sleeps).toEqual([]);
  });

  it("an abort during the request is AbortedError and is not retried", async () => {
    server = await startTestLlmServer({
      script: [{ reply: { content: [{ type: "text", text: "late" }] }, delayMs: 600_000 }],
    });
    const controller = new AbortController();
    const pending = rejection(
      callMessages(createAnthropic({ baseURL: server.url }), params, {
        clock: new ManualClock(0, true),
        signal: controller.signal,
      }),
    );
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(1);
  });

  it("with drainMs, a reply on its way when the stop comes lands (it is paid for); a later one is cut", async () => {
    server = await startTestLlmServer({
      script: [
        { reply: { content: [{ type: "text", text: "paid" }] }, delayMs: 300 },
        { reply: { content: [{ type: "text", text: "too late" }] }, delayMs: 600_000 },
      ],
    });
    const client = createAnthropic({ baseURL: server.url });
    const stopSoon = async (controller: AbortController) => {
      while (server!.requests.length === 0 || controller.signal.aborted) await new Promise((r) => setTimeout(r, 5));
      controller.abort();
    };
    const first = new AbortController();
    const landing = callMessages(client, params, { clock: systemClock, signal: first.signal, drainMs: 5_000 });
    await stopSoon(first);
    expect((await landing).message.content).toEqual([{ type: "text", text: "paid" }]);
    // A reply that would come after the drain is cut, and not served.
    const second = new AbortController();
    const cut = rejection(callMessages(client, params, { clock: systemClock, signal: second.signal, drainMs: 200 }));
    while (server.requests.length < 2) await new Promise((r) => setTimeout(r, 5));
    second.abort();
    expect(await cut).toBeInstanceOf(AbortedError);
    expect(server.served).toHaveLength(1);
  });

  it("an abort during the backoff wait is AbortedError even if the clock never wakes", async () => {
    server = await startTestLlmServer({ script: [{ fault: "stream-error" }, textReply("unused")] });
    const controller = new AbortController();
    const clock = new StuckClock();
    const pending = rejection(
      callMessages(createAnthropic({ baseURL: server.url }), params, {
        clock,
        signal: controller.signal,
        onAttempt: (a) => {
          if (a.waitMs !== undefined) setImmediate(() => controller.abort());
        },
      }),
    );
    const error = await pending;
    expect(error).toBeInstanceOf(AbortedError);
    expect(clock.sleeps).toEqual([1_000]);
    expect(server.requests).toHaveLength(1);
  });

  it("an already-aborted signal sends nothing", async () => {
    server = await startTestLlmServer({ script: [textReply("unused")] });
    const error = await rejection(
      callMessages(createAnthropic({ baseURL: server.url }), params, {
        clock: new ManualClock(0, true),
        signal: AbortSignal.abort(),
      }),
    );
    expect(error).toBeInstanceOf(AbortedError);
    // A drain is for a request already on its way: after the stop, none is started.
    const drained = await rejection(
      callMessages(createAnthropic({ baseURL: server.url }), params, {
        clock: systemClock,
        signal: AbortSignal.abort(),
        drainMs: 5_000,
      }),
    );
    expect(drained).toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(0);
  });
});

describe("classifyLlmError", () => {
  it("retries a bare undici body cut, rejects other programming errors, aborts on a fired signal", () => {
    expect(classifyLlmError(new TypeError("terminated")).kind).toBe("retry");
    expect(classifyLlmError(new TypeError("x is not a function")).kind).toBe("reject");
    expect(classifyLlmError(new TypeError("terminated"), AbortSignal.abort()).kind).toBe("abort");
  });
});

describe("prices", () => {
  const million = {
    input_tokens: 1e6,
    output_tokens: 1e6,
    cache_creation_input_tokens: 1e6,
    cache_read_input_tokens: 1e6,
  };

  it.each([
    ["claude-sonnet-4-5-20250929", 3, 15],
    ["claude-sonnet-4-6", 3, 15],
    ["claude-opus-4-20250514", 15, 75],
    ["claude-opus-4-1-20250805", 15, 75],
    ["claude-opus-4-5-20251101", 5, 25],
    ["claude-opus-4-6", 5, 25],
    ["claude-haiku-4-5-20251001", 1, 5],
    ["claude-3-5-haiku-20241022", 0.8, 4],
  ])("%s costs %d/%d per million, cache write 1.25x and read 0.1x input", (model, input, output) => {
    expect(priceFor(model)).toEqual({ input, output, cacheWrite: input * 1.25, cacheRead: input * 0.1 });
  });

  it("costs a known usage", () => {
    expect(costUsd("claude-sonnet-4-5-20250929", million)).toBeCloseTo(3 + 15 + 3.75 + 0.3, 10);
    expect(
      costUsd("claude-haiku-4-5", {
        input_tokens: 2_000,
        output_tokens: 500,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: 10_000,
      }),
    ).toBeCloseTo((2_000 * 1 + 500 * 5 + 10_000 * 0.1) / 1e6, 12);
  });

  it("an unknown model costs as much as the most expensive known one", () => {
    const unknown = costUsd("some-new-model", million);
    for (const known of ["claude-opus-4-1", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"]) {
      expect(unknown).toBeGreaterThanOrEqual(costUsd(known, million));
    }
    expect(unknown).toBeCloseTo(costUsd("claude-opus-4-1", million), 10);
  });

  it("overrides win by longest prefix and derive cache prices from input", () => {
    const overrides = {
      "claude-sonnet": { input: 2, output: 10 },
      "claude-sonnet-4-6": { input: 1, output: 2, cacheRead: 0 },
    };
    expect(priceFor("claude-sonnet-4-6", overrides)).toEqual({ input: 1, output: 2, cacheWrite: 1.25, cacheRead: 0 });
    expect(priceFor("claude-sonnet-4-5", overrides)).toEqual({ input: 2, output: 10, cacheWrite: 2.5, cacheRead: 0.2 });
    expect(priceFor("claude-haiku-4-5", overrides).input).toBe(1);
  });

  it("worst case prices all input as cache writes and all of max_tokens as output", () => {
    expect(worstCaseCostUsd("claude-sonnet-4-6", 100_000, 8_000)).toBeCloseTo((100_000 * 3.75 + 8_000 * 15) / 1e6, 12);
  });
});
