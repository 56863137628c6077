/**
 * The budget holds within one call: each call reserves its worst case (input estimated from its bytes, all of
 * its output cap) before it is forwarded, so calls in flight together cannot overrun budget_usd, and a call
 * that does not fit is refused (402, class `budget`) without reaching the provider.
 */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { textReply } from "../../../dev/llm-server/llm-server.ts";
import { type GatewayWorld, gatewayWorld } from "../../helpers/gateway.ts";

const messages = [{ role: "user" as const, content: "spend it all" }];

function client(w: GatewayWorld): OpenAI {
  return new OpenAI({ baseURL: `${w.endpoint.url}/v1`, apiKey: w.endpoint.token, maxRetries: 0 });
}

const outcome = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: { status?: number }) => `HTTP ${e.status}`,
  );

describe("the gateway's reservations against budget_usd", () => {
  it("concurrent calls: those whose worst case does not fit are refused, and spend stays within the budget", async () => {
    const limit = 0.01;
    const world = await gatewayWorld({
      budgetUsd: limit,
      // Each call reserves its 1000-token cap ($0.002 at $2/M) but uses half, after a delay so calls overlap.
      server: { responder: () => ({ ...textReply("ok", { input_tokens: 100, output_tokens: 500 }), delayMs: 300 }) },
    });
    const api = client(world);
    const call = () =>
      outcome(api.chat.completions.create({ model: "gpt-5-mini", messages, max_completion_tokens: 1000 }));
    const first = await Promise.all(Array.from({ length: 10 }, call));
    expect(first.filter((o) => o === "ok").length).toBe(4);
    expect(first.filter((o) => o === "HTTP 402").length).toBe(6);
    // Settled at what they used ($0.001025 each), they leave room for four more, one by one, and then none.
    const later: string[] = [];
    for (let i = 0; i < 6; i++) later.push(await call());
    expect(later).toEqual(["ok", "ok", "ok", "ok", "HTTP 402", "HTTP 402"]);

    const spent = world.paid.reduce((sum, c) => sum + c.costUsd, 0);
    expect(world.budget.spent()).toBeCloseTo(spent, 12);
    expect(spent).toBeLessThanOrEqual(limit);
    expect(world.budget.reserved()).toBe(0);
    // Refused calls never reached the provider: it served exactly the calls that were paid.
    expect(world.server.requests).toHaveLength(world.paid.length);
    expect(world.results.filter((r) => r.class === "budget")).toHaveLength(
      first.length + later.length - world.paid.length,
    );
    expect(world.results.filter((r) => r.class === "budget").every((r) => !r.infra && r.status === 402)).toBe(true);
  });

  it("a request with no output cap gets the gateway's, and an outsized one is refused before anything is paid", async () => {
    const world = await gatewayWorld({ budgetUsd: 0.01, server: { responder: () => textReply("never") } });
    const api = client(world);
    // 16,384 default output tokens at $2/M is $0.033: more than the whole budget.
    expect(await outcome(api.chat.completions.create({ model: "gpt-5-mini", messages }))).toBe("HTTP 402");
    const huge = await api.chat.completions
      .create({ model: "gpt-5-mini", messages, max_completion_tokens: 1_000_000_000 })
      .catch((e: Error) => e.message);
    expect(huge).toMatch(/budget_usd has no room for this call/);
    expect(world.server.requests).toHaveLength(0);
    expect(world.budget.spent()).toBe(0);
  });

  it("a reply costlier than its reservation overruns by that one call, and the next call is refused", async () => {
    const limit = 0.01;
    const world = await gatewayWorld({
      budgetUsd: limit,
      // 100,000 input tokens ($0.025) from a request of a few hundred bytes: more than any estimate.
      server: { responder: () => textReply("long context", { input_tokens: 100_000, output_tokens: 10 }) },
    });
    const api = client(world);
    expect(
      await outcome(api.chat.completions.create({ model: "gpt-5-mini", messages, max_completion_tokens: 10 })),
    ).toBe("ok");
    const overrun = world.paid[0]!.costUsd;
    expect(world.budget.spent()).toBeGreaterThan(limit);
    expect(world.budget.spent() - limit).toBeLessThanOrEqual(overrun);
    expect(
      await outcome(api.chat.completions.create({ model: "gpt-5-mini", messages, max_completion_tokens: 10 })),
    ).toBe("HTTP 402");
    expect(world.server.requests).toHaveLength(1);
  });
});
