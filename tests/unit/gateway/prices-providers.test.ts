/**
 * The one price table and the providers: OpenAI's models priced with their cached-input rates, overrides by
 * `provider/model`, an unknown model left unpriced (preflight refuses it), and the config's provider/model
 * references resolved, with each key registered as a secret the moment it is read.
 */
import { afterEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/load.ts";
import { modelRef } from "../../../src/config/schema.ts";
import { costOf, knownPrice, priceFor } from "../../../src/gateway/prices.ts";
import { agentTargets, route } from "../../../src/gateway/providers.ts";
import { clearSecrets, redact } from "../../../src/secrets.ts";

afterEach(() => clearSecrets());

describe("the price table", () => {
  it.each([
    ["gpt-5-mini", 0.25, 0.025, 2],
    ["gpt-5-mini-2025-08-07", 0.25, 0.025, 2],
    ["gpt-5", 1.25, 0.125, 10],
    ["gpt-5.4-mini", 0.75, 0.075, 4.5],
    ["gpt-5.4", 2.5, 0.25, 15],
    ["gpt-4.1-nano", 0.1, 0.025, 0.4],
    ["gpt-4o-mini", 0.15, 0.075, 0.6],
    ["o4-mini", 1.1, 0.275, 4.4],
    ["o3", 2, 0.5, 8],
    // A router's vendor prefix is looked through.
    ["openai/gpt-5-mini", 0.25, 0.025, 2],
  ])("%s costs %d in, %d cached, %d out per million", (model, input, cached, output) => {
    expect(knownPrice(model, {}, "openai")).toEqual({ input, output, cacheWrite: input, cacheRead: cached });
  });

  it("a pro model without a cached rate bills cached input as input", () => {
    expect(knownPrice("gpt-5-pro")).toMatchObject({ input: 15, cacheRead: 15, output: 120 });
  });

  it("an unknown model has no price (the coding agent's legacy lookup keeps its dearest-guess fallback)", () => {
    expect(knownPrice("qwen3-8b", {}, "local")).toBeNull();
    expect(knownPrice("gpt-5.3-turbo")).toBeNull();
    expect(priceFor("qwen3-8b")).toEqual(priceFor("claude-opus-4-1"));
  });

  it("overrides: a provider-qualified key wins over a bare one, and `provider/` prices everything it serves", () => {
    const overrides = {
      "gpt-5-mini": { input: 9, output: 9 },
      "azure/gpt-5-mini": { input: 0.3, output: 2.2, cacheRead: 0.03 },
      "local/": { input: 0, output: 0 },
    };
    expect(knownPrice("gpt-5-mini", overrides, "azure")).toEqual({
      input: 0.3,
      output: 2.2,
      cacheWrite: 0.375,
      cacheRead: 0.03,
    });
    expect(knownPrice("gpt-5-mini", overrides, "openai")?.input).toBe(9);
    expect(knownPrice("Qwen/Qwen3-8B", overrides, "local")).toMatchObject({ input: 0, output: 0 });
    // A bare key of one letter must not match a provider's name.
    expect(knownPrice("gpt-5", { o: { input: 99, output: 99 } }, "openai")?.input).toBe(1.25);
  });

  it("an OpenAI usage, cached tokens apart, costs what OpenAI bills", () => {
    const p = knownPrice("gpt-5")!;
    expect(costOf(p, { input_tokens: 1000, output_tokens: 100, cache_read_input_tokens: 9000 })).toBeCloseTo(
      (1000 * 1.25 + 100 * 10 + 9000 * 0.125) / 1e6,
      12,
    );
  });
});

describe("providers in the config", () => {
  const base = { benchmark: "example" };

  it("a bare agent_model is Anthropic's; provider/model splits at the first slash", () => {
    expect(modelRef("claude-sonnet-4-6")).toEqual({ provider: "anthropic", model: "claude-sonnet-4-6" });
    expect(modelRef("local/Qwen/Qwen3-8B")).toEqual({ provider: "local", model: "Qwen/Qwen3-8B" });
  });

  it.each([
    [{ agent_model: "opnai/gpt-5" }, /^agent_model: got "opnai\/gpt-5"; provider `opnai` is not configured/],
    [
      { agent_models: ["claude-haiku-4-5", "nope/x"] },
      /^agent_models\.1: got "nope\/x"; provider `nope` is not configured/,
    ],
    [{ agent_model: "openai/" }, /^agent_model: got "openai\/"; name the model after the provider/],
    [{ providers: { Local: { format: "openai" } } }, /^providers\.Local: .*lower-case/],
    [{ providers: { local: { format: "vllm" } } }, /^providers\.local\.format: got "vllm"/],
    [
      { providers: { local: { format: "openai", base_url: "ftp://x" } } },
      /^providers\.local\.base_url: .*http\(s\) URL/,
    ],
    [
      { providers: { local: { format: "openai", api_key_env: "$KEY" } } },
      /^providers\.local\.api_key_env: .*environment variable/,
    ],
    [{ providers: { local: { format: "openai", url: "http://x" } } }, /^providers\.local\.url: unknown key/],
  ])("refuses %j naming the key", (raw, message) => {
    const { config, errors } = validateConfig({ ...base, ...raw });
    expect(config).toBeNull();
    expect(errors[0]).toMatch(message);
  });

  it("resolves targets with their keys from the environment, registered as secrets, and routes a request's model", () => {
    const { config } = validateConfig({
      ...base,
      agent_model: "openai/gpt-5-mini",
      agent_models: ["claude-haiku-4-5", "local/qwen3-8b"],
      providers: { local: { format: "openai", base_url: "http://127.0.0.1:8000/v1/" } },
    });
    const env = { OPENAI_API_KEY: "openai-key-for-the-test-9c1", ANTHROPIC_BASE_URL: "http://127.0.0.1:9/" };
    const { targets, unpriced } = agentTargets(config!, env);
    expect(targets.map((t) => [t.ref, t.provider.baseUrl, t.provider.apiKey])).toEqual([
      ["openai/gpt-5-mini", "https://api.openai.com/v1", "openai-key-for-the-test-9c1"],
      ["anthropic/claude-haiku-4-5", "http://127.0.0.1:9", null],
    ]);
    expect(unpriced).toEqual([{ provider: "local", model: "qwen3-8b" }]);
    expect(redact("echo openai-key-for-the-test-9c1")).toBe("echo [REDACTED]");
    expect(route(targets, "openai", "gpt-5-mini")).toMatchObject({ ok: true, target: { ref: "openai/gpt-5-mini" } });
    expect(route(targets, "openai", "openai/gpt-5-mini")).toMatchObject({ ok: true });
    expect(route(targets, "anthropic", "claude-haiku-4-5")).toMatchObject({ ok: true });
    expect(route(targets, "openai", "claude-haiku-4-5")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/served in the anthropic format; call \/v1\/messages/),
    });
  });
});
