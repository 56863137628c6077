/**
 * The latency the seal adds to a model call made by an unmodified SDK inside the sandbox: the real `openai`
 * package (from the experiment's own node_modules) in a sealed agent process calls the endpoint on the
 * sandbox's loopback, which relays over the channel to the harness's gateway, which forwards to the test
 * server; against the same SDK calling the test server directly from outside. p50/p99 of sequential calls,
 * the machine's load said beside them. Goal: ≤ 2 ms added at p50.
 * Run directly: `tsx bench/sealed-gateway.ts [calls]`.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import OpenAI from "openai";
import { createLocalAdapter } from "../src/benchmark/adapters/local.ts";
import { createRunner } from "../src/benchmark/runner.ts";
import { configSchema } from "../src/config/schema.ts";
import { Journal } from "../src/journal/journal.ts";
import { createLogger } from "../src/log.ts";
import { latencyFigures, round } from "./figures.ts";
import { startServerProcess } from "./llm-server-process.ts";

const REPO = resolve(import.meta.dirname, "..");
const WARMUP = 50;

/** Times its calls itself, inside the sandbox, and answers with them. */
const SEALED_AGENT = (calls: number) => `import OpenAI from "openai";
const client = new OpenAI();
export default {
  async run(_task: unknown, ctx: { model: string }) {
    const times: number[] = [];
    for (let i = 0; i < ${WARMUP + calls}; i++) {
      const t0 = performance.now();
      await client.chat.completions.create({ model: ctx.model, messages: [{ role: "user", content: "ping" }], max_completion_tokens: 20 });
      if (i >= ${WARMUP}) times.push(performance.now() - t0);
    }
    return JSON.stringify(times);
  },
};
`;

async function direct(url: string, calls: number): Promise<number[]> {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", maxRetries: 0 });
  const times: number[] = [];
  for (let i = 0; i < WARMUP + calls; i++) {
    const t0 = performance.now();
    await client.chat.completions.create({
      model: "gpt-5-mini",
      messages: [{ role: "user", content: "ping" }],
      max_completion_tokens: 20,
    });
    if (i >= WARMUP) times.push(performance.now() - t0);
  }
  return times;
}

export async function benchSealedGateway(calls = 300): Promise<Record<string, number>> {
  const root = mkdtempSync(join(tmpdir(), "bench-sealed-gateway-"));
  // As root, the agent's sandbox user reads the experiment's packages.
  chmodSync(root, 0o755);
  const server = await startServerProcess(0);
  const journal = Journal.open(join(root, "workspace", "journal.sqlite"));
  try {
    mkdirSync(join(root, "agent"));
    mkdirSync(join(root, "node_modules"));
    symlinkSync(join(REPO, "node_modules", "openai"), join(root, "node_modules", "openai"));
    writeFileSync(join(root, "agent", "agent.ts"), SEALED_AGENT(calls));
    writeFileSync(join(root, "tasks.jsonl"), `${JSON.stringify({ id: "calls", input: null })}\n`);
    const out = join(root, "times.json");
    // The harness's scorer sees the answer: it keeps the agent's timings for the bench.
    writeFileSync(
      join(root, "scorer.ts"),
      `import { writeFileSync } from "node:fs";\nexport default (_t: unknown, r: { answer: unknown }) => { writeFileSync(${JSON.stringify(out)}, String(r.answer)); return 1; };\n`,
    );
    const config = configSchema.parse({
      benchmark: "local",
      agent_model: "openai/gpt-5-mini",
      providers: { openai: { format: "openai", base_url: `${server.url}/v1`, api_key_env: null } },
      per_task_timeout: 600,
    });
    const { log } = createLogger({ stdout: false });
    const runner = createRunner({
      root,
      config,
      journal,
      log,
      adapter: createLocalAdapter({ tasksFile: join(root, "tasks.jsonl"), scorerFile: join(root, "scorer.ts") }),
      typeCheck: false,
      reuse: false,
      warmSpare: false,
    });
    const before = await direct(server.url, calls);
    const load = loadavg()[0]!;
    await runner.run({ split: "test", taskIds: ["calls"], runId: null });
    const sealed = JSON.parse(readFileSync(out, "utf8")) as number[];
    const after = await direct(server.url, calls);
    return {
      calls,
      ...latencyFigures([...before, ...after], sealed, "sealed"),
      load_1min: round(load),
      cores: availableParallelism(),
    };
  } finally {
    journal.close();
    await server.close();
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await benchSealedGateway(Number(process.argv[2] ?? 300));
  for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
}
