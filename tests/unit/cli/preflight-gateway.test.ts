/**
 * What `run` and `prepare` check of the agent's providers before anything is paid: each provider's key, its
 * endpoint and model (an OpenAI-format provider's free model list), a base URL missing or doubling /v1, and a
 * price for every model; each failure is one line naming the config key to fix, exit 2, no run started.
 */
import { createServer } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { createStandInSteps } from "../../../dev/steps/stand-in.ts";
import { RUN_CHECKS } from "../../../src/cli/preflight.ts";
import { main } from "../../../src/cli/program.ts";
import type { StepsFactory } from "../../../src/cli/run.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const standIn: StepsFactory = (exp, opened, clock) =>
  createStandInSteps({ paths: exp.paths, journal: opened.journal, clock, delayMs: 0 });

let server: TestLlmServer | null = null;
afterEach(async () => {
  vi.unstubAllEnvs();
  await server?.close();
  server = null;
});

async function run(config: Record<string, unknown>) {
  const dir = preparedExperiment(tempDir(), { max_iterations: 1, ...config });
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", "run", "--dir", dir], {
    stdout,
    stderr,
    stepsFactory: standIn,
    preflight: RUN_CHECKS,
  });
  return { code, err: stderr.text };
}

/** What the test server was asked: only free calls (model lists, token counts) may precede the run. */
function paidCalls(s: TestLlmServer) {
  return s.requests.filter((q) => q.path !== "/v1/models" && q.path !== "/v1/messages/count_tokens");
}

async function withServer(models?: string[]) {
  server = await startTestLlmServer(models ? { models } : {});
  vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
  vi.stubEnv("ANTHROPIC_API_KEY", "");
  return server;
}

describe("preflight of the agent's providers", () => {
  it("a model with no known price is refused before anything is paid; the operator's price lets the run go ahead", async () => {
    const s = await withServer(["qwen3-8b", "claude-opus-4-6"]);
    const local = { local: { format: "openai", base_url: `${s.url}/v1` } };
    const refused = await run({ agent_model: "local/qwen3-8b", providers: local });
    expect(refused.code).toBe(2);
    expect(refused.err).toBe(
      "auto-harness: no price is known for `local/qwen3-8b`; add one to experiment_config.yaml in USD per million tokens, e.g. prices: { local/qwen3-8b: { input: 1, output: 4 } } (for a free local model, 0 and 0)\n",
    );
    expect(paidCalls(s)).toEqual([]);
    const priced = await run({
      agent_model: "local/qwen3-8b",
      providers: local,
      prices: { "local/": { input: 0, output: 0 } },
    });
    expect(priced.code, priced.err).toBe(0);
    expect(paidCalls(s)).toEqual([]);
  });

  it("an unknown coding model's price is refused too, once its endpoint knows it", async () => {
    await withServer();
    const r = await run({ coding_model: "claude-future-9" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no price is known for `claude-future-9`/);
  });

  it("an OpenAI-format provider's key must be in the environment, named by api_key_env", async () => {
    await withServer();
    vi.stubEnv("GW_TEST_OPENAI_KEY", "");
    const r = await run({
      agent_model: "openai/gpt-5-mini",
      providers: {
        openai: { format: "openai", base_url: "https://api.openai.example/v1", api_key_env: "GW_TEST_OPENAI_KEY" },
      },
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/GW_TEST_OPENAI_KEY is not set \(providers\.openai\.api_key_env, for openai\/gpt-5-mini\)/);
  });

  it("a model the provider does not list is refused, naming what it lists", async () => {
    const s = await withServer(["gpt-5-mini", "claude-sonnet-4-6", "claude-opus-4-6"]);
    const r = await run({
      agent_model: "mine/gpt-5-mni",
      providers: { mine: { format: "openai", base_url: `${s.url}/v1` } },
      prices: { "mine/": { input: 1, output: 1 } },
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /providers\.mine \(http:\/\/127\.0\.0\.1:\d+\/v1\) does not serve model `gpt-5-mni` \(it lists: gpt-5-mini,/,
    );
    expect(paidCalls(s)).toEqual([]);
  });

  it("a base URL without /v1 gets the hint; an Anthropic base URL with /v1 gets the opposite hint", async () => {
    const s = await withServer();
    const bare = await run({
      agent_model: "mine/gpt-5-mini",
      providers: { mine: { format: "openai", base_url: s.url } },
    });
    expect(bare.err).toMatch(
      /\/models answered 404; an OpenAI-compatible base URL usually ends in \/v1 \(providers\.mine\.base_url\)/,
    );
    vi.stubEnv("ANTHROPIC_BASE_URL", `${s.url}/v1`);
    const doubled = await run({});
    expect(doubled.code).toBe(2);
    expect(doubled.err).toMatch(/\/v1 ends in \/v1, but the Anthropic SDK adds \/v1 itself; drop it/);
  });

  it("an unreachable provider is named by its config key", async () => {
    await withServer();
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const { port } = srv.address() as { port: number };
    await new Promise((r) => srv.close(r));
    const r = await run({
      agent_model: "mine/gpt-5-mini",
      providers: { mine: { format: "openai", base_url: `http://127.0.0.1:${port}/v1` } },
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot reach providers\.mine\.base_url http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/);
  });

  it("an agent_model naming a provider that is not configured is a config error naming the key", async () => {
    const r = await run({ agent_model: "opnai/gpt-5-mini" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /agent_model: got "opnai\/gpt-5-mini"; provider `opnai` is not configured; add it under `providers` or use one of: anthropic, openai/,
    );
  });
});
