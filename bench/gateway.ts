/**
 * `npm run bench:gateway`: the latency the gateway adds to a model call, p50 and p99, measured with the real
 * SDKs: SDK → gateway → test server against SDK → test server directly, calls alternating so both see the same
 * machine. The test server and the gateway each run in their own process, as the provider and the harness do.
 * Goal: ≤ 2 ms added at p50.
 */
import { fork } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { systemClock } from "../src/clock.ts";
import { validateConfig } from "../src/config/load.ts";
import { LoopbackEndpoint } from "../src/gateway/endpoint.ts";
import { createGateway } from "../src/gateway/gateway.ts";
import { agentTargets } from "../src/gateway/providers.ts";
import { createRunBudget } from "../src/gateway/reservations.ts";
import { latencyFigures, round } from "./figures.ts";
import { startServerProcess } from "./llm-server-process.ts";

const CALLS = Number(process.env.BENCH_GATEWAY_CALLS ?? 300);
const WARMUP = 100;

/** The gateway's process: an endpoint in front of the test server, as the harness runs it for a command. */
async function serveGateway(upstream: string): Promise<void> {
  const { config, errors } = validateConfig({
    benchmark: "example",
    agent_model: "openai/gpt-5-mini",
    agent_models: ["claude-sonnet-4-6"],
    providers: {
      openai: { format: "openai", base_url: `${upstream}/v1`, api_key_env: null },
      anthropic: { format: "anthropic", base_url: upstream, api_key_env: null },
    },
  });
  if (!config) throw new Error(errors.join("\n"));
  const gateway = createGateway({
    targets: agentTargets(config, {}).targets,
    clock: systemClock,
    budget: createRunBudget(null),
  });
  const endpoint = new LoopbackEndpoint({ gateway, split: "train" });
  await endpoint.start();
  process.send?.({ url: endpoint.url, token: endpoint.token });
  process.on("message", () => process.send?.(process.cpuUsage()));
  process.on("disconnect", () => {
    void endpoint.close().finally(() => process.exit(0));
  });
}

async function startGatewayProcess(upstream: string) {
  const child = fork(fileURLToPath(import.meta.url), ["--serve", upstream], {
    execArgv: ["--import", "tsx", ...(process.env.GW_PROF ? ["--cpu-prof", "--cpu-prof-dir=/tmp/gwprof"] : [])],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const started = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the gateway process exited (code ${code})`)));
    child.once("message", (m) => resolve(m as { url: string; token: string }));
  });
  return {
    ...started,
    /** CPU the gateway's process has used, in ms (user + system). */
    cpuMs: () =>
      new Promise<number>((resolve) => {
        child.once("message", (m) => {
          const { user, system } = m as NodeJS.CpuUsage;
          resolve((user + system) / 1000);
        });
        child.send("cpu");
      }),
    close: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.disconnect();
      await exited;
    },
  };
}

/**
 * Alternates a direct call and one through the gateway, and reports both, the difference, and the gateway's
 * own CPU per call (which, unlike wall time, does not depend on how busy the machine's other processes are).
 */
async function measure(direct: () => Promise<unknown>, gated: () => Promise<unknown>, cpuMs: () => Promise<number>) {
  const times = { direct: [] as number[], gated: [] as number[] };
  let cpuBefore = 0;
  for (let i = 0; i < WARMUP + CALLS; i++) {
    for (const [kind, call] of [
      ["direct", direct],
      ["gated", gated],
    ] as const) {
      const t0 = performance.now();
      await call();
      if (i >= WARMUP) times[kind].push(performance.now() - t0);
    }
    if (i === WARMUP - 1) cpuBefore = await cpuMs();
  }
  const cpuPerCall = ((await cpuMs()) - cpuBefore) / CALLS;
  return { ...latencyFigures(times.direct, times.gated, "gateway"), gateway_cpu_per_call_ms: round(cpuPerCall) };
}

async function bench(): Promise<void> {
  const server = await startServerProcess(0);
  const gateway = await startGatewayProcess(server.url);
  const print = (title: string, figures: Record<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, v] of Object.entries(figures)) process.stdout.write(`  ${k.padEnd(32)} ${v}\n`);
  };
  try {
    const openai = (baseURL: string, apiKey: string) => new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
    const anthropic = (baseURL: string, apiKey: string) => new Anthropic({ baseURL, apiKey, maxRetries: 0 });
    const [od, og] = [openai(server.url, "k"), openai(gateway.url, gateway.token)];
    const [ad, ag] = [anthropic(server.url, "k"), anthropic(gateway.url, gateway.token)];
    const messages = [{ role: "user" as const, content: "ping" }];
    const chat = (api: OpenAI) => () =>
      api.chat.completions.create({ model: "gpt-5-mini", messages, max_completion_tokens: 20 });
    const chatStream = (api: OpenAI) => async () => {
      for await (const _ of await api.chat.completions.create({ model: "gpt-5-mini", messages, stream: true })) {
        // Read to the end, as an agent does.
      }
    };
    const responses = (api: OpenAI) => () => api.responses.create({ model: "gpt-5-mini", input: "ping" });
    const claude = (api: Anthropic) => () =>
      api.messages.create({ model: "claude-sonnet-4-6", max_tokens: 20, messages });
    const pairs = {
      "chat completions, whole": [chat(od), chat(og)],
      "chat completions, streamed": [chatStream(od), chatStream(og)],
      "responses, whole": [responses(od), responses(og)],
      "messages, whole": [claude(ad), claude(ag)],
    } as const;
    // Every path warm before the first figure, so the first kind measured pays no start-up for the rest.
    for (const [direct, gated] of Object.values(pairs))
      for (let i = 0; i < WARMUP; i++) await Promise.all([direct(), gated()]);
    for (const [title, [direct, gated]] of Object.entries(pairs))
      print(`${title} (${CALLS} calls each)`, await measure(direct, gated, gateway.cpuMs));
  } finally {
    await gateway.close();
    await server.close();
  }
}

if (process.argv[2] === "--serve") await serveGateway(process.argv[3]!);
else await bench();
