/**
 * A gateway world for tests: the test LLM server as both providers (OpenAI and Anthropic formats) behind a real
 * key, the gateway over the config's allow-list, and its loopback endpoint, with every paid call and result kept.
 */
import { onTestFinished } from "vitest";
import { startTestLlmServer, type TestLlmServer, type TestLlmServerOptions } from "../../dev/llm-server/llm-server.ts";
import { systemClock } from "../../src/clock.ts";
import { validateConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import type { Split } from "../../src/domain.ts";
import { LoopbackEndpoint } from "../../src/gateway/endpoint.ts";
import {
  createGateway,
  type Gateway,
  type GatewayOptions,
  type GatewayResult,
  type PaidCall,
  type ReplySink,
} from "../../src/gateway/gateway.ts";
import { agentTargets } from "../../src/gateway/providers.ts";
import { createRunBudget, type RunBudget } from "../../src/gateway/reservations.ts";

/** Does not look like a key, so only removal by value can catch it. */
export const UPSTREAM_KEY = "upstream-secret-7f3a9c2e5b41d8";

export interface GatewayWorld {
  /** Both keyed providers, `openai` and `anthropic`. */
  server: TestLlmServer;
  /** The `local` provider: no key, priced at zero by the operator. */
  localServer: TestLlmServer;
  config: Config;
  gateway: Gateway;
  endpoint: LoopbackEndpoint;
  budget: RunBudget;
  paid: PaidCall[];
  results: GatewayResult[];
  close(): Promise<void>;
}

export interface WorldOptions {
  budgetUsd?: number | null;
  split?: Split | null;
  server?: TestLlmServerOptions;
  local?: TestLlmServerOptions;
  config?: Record<string, unknown>;
  gateway?: Partial<GatewayOptions>;
}

export async function startGatewayWorld(o: WorldOptions = {}): Promise<GatewayWorld> {
  const server = await startTestLlmServer({ apiKey: UPSTREAM_KEY, ...o.server });
  const localServer = await startTestLlmServer(o.local);
  const { config, errors } = validateConfig({
    benchmark: "example",
    agent_model: "openai/gpt-5-mini",
    agent_models: ["claude-sonnet-4-6", "local/qwen3-8b"],
    providers: {
      openai: { format: "openai", base_url: `${server.url}/v1`, api_key_env: "GW_OPENAI_KEY" },
      anthropic: { format: "anthropic", base_url: server.url, api_key_env: "GW_ANTHROPIC_KEY" },
      local: { format: "openai", base_url: `${localServer.url}/v1` },
    },
    prices: { "local/": { input: 0, output: 0 } },
    ...o.config,
  });
  if (!config) throw new Error(errors.join("\n"));
  const { targets } = agentTargets(config, { GW_OPENAI_KEY: UPSTREAM_KEY, GW_ANTHROPIC_KEY: UPSTREAM_KEY });
  const paid: PaidCall[] = [];
  const results: GatewayResult[] = [];
  const budget = createRunBudget(o.budgetUsd ?? null);
  const gateway = createGateway({ targets, clock: systemClock, budget, onPaid: (c) => paid.push(c), ...o.gateway });
  const endpoint = new LoopbackEndpoint({ gateway, split: o.split ?? "train", onCall: (r) => results.push(r) });
  await endpoint.start();
  return {
    server,
    localServer,
    config,
    gateway,
    endpoint,
    budget,
    paid,
    results,
    close: async () => {
      await endpoint.close();
      await server.close();
      await localServer.close();
    },
  };
}

/** A world closed when the current test finishes, as tempDir's directory is removed. */
export async function gatewayWorld(o: WorldOptions = {}): Promise<GatewayWorld> {
  const world = await startGatewayWorld(o);
  onTestFinished(() => world.close());
  return world;
}

/** A sink that keeps what the gateway replied, for calls made without HTTP. */
export function captureSink() {
  const reply = {
    status: 0,
    headers: {} as Record<string, string>,
    body: "",
    ended: false,
    failed: null as string | null,
  };
  const sink: ReplySink = {
    head: (status, headers) => Object.assign(reply, { status, headers }),
    chunk: (data) => {
      reply.body += data;
    },
    end: (last) => {
      if (last) reply.body += last;
      reply.ended = true;
    },
    fail: (message) => {
      reply.failed = message;
    },
  };
  return { reply, sink };
}

/** A raw POST to the endpoint, as an agent that speaks HTTP itself would send it. */
export async function post(world: GatewayWorld, path: string, body: unknown, token = world.endpoint.token) {
  const res = await fetch(`${world.endpoint.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}
