/**
 * `npm run bench:distributed` (or `npm run bench -- distributed`): throughput of `executor: bullmq` with 1, 2 and
 * 4 real worker processes against the local pool on the same machine, at 50 ms and 500 ms model replies, and the
 * per-task cost of the queue round trip. Each measured batch follows an unmeasured warm-up batch, so the agent
 * processes (and the workers' type-check) are warm, as they are through a night.
 * Needs redis-server on PATH. Efficiency = ideal / wall, ideal = tasks · reply / (workers · concurrency).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLocalAdapter } from "../src/benchmark/adapters/local.ts";
import type { TaskExecutor } from "../src/benchmark/executor.ts";
import { createRunner } from "../src/benchmark/runner.ts";
import { configSchema } from "../src/config/schema.ts";
import { createBullmqExecutor } from "../src/distributed/bullmq-executor.ts";
import { versionsOf } from "../src/distributed/versions.ts";
import { Journal } from "../src/journal/journal.ts";
import { createLogger } from "../src/log.ts";
import { startRedis } from "../tests/helpers/redis.ts";
import { findTool } from "../tests/helpers/tools.ts";
import { BENCH_AGENT, BENCH_SCORER, startServerProcess } from "./llm-server-process.ts";

const BIN = resolve(import.meta.dirname, "..", "bin", "auto-harness.js");
/** Tasks one worker runs at once; the local pool gets workers · PER_WORKER. */
const PER_WORKER = 4;
/** Rounds of full concurrency per measured batch. */
const ROUNDS = 8;

interface Setup {
  root: string;
  /** When each model request arrived (ms since epoch). */
  requestTimes(): Promise<number[]>;
  redisUrl: string;
  serverUrl: string;
  journal: Journal;
  sandbox: "bwrap" | "none";
  latencyMs: number;
  close(): Promise<void>;
}

async function setUp(latencyMs: number, tasks: number): Promise<Setup> {
  const root = mkdtempSync(join(tmpdir(), "bench-distributed-"));
  mkdirSync(join(root, "agent"));
  mkdirSync(join(root, "bench"));
  writeFileSync(join(root, "agent", "agent.ts"), BENCH_AGENT);
  const ids = Array.from({ length: tasks }, (_, i) => `task-${i}`);
  writeFileSync(
    join(root, "bench", "tasks.jsonl"),
    `${ids.map((id) => JSON.stringify({ id, input: null })).join("\n")}\n`,
  );
  writeFileSync(join(root, "bench", "scorer.ts"), BENCH_SCORER);
  const sandbox = findTool("bwrap") ? "bwrap" : "none";
  writeFileSync(
    join(root, "experiment_config.yaml"),
    `benchmark: local\nlocal: { tasks: bench/tasks.jsonl, scorer: bench/scorer.ts }\nsandbox: ${sandbox}\n`,
  );
  const redis = await startRedis({ aof: true });
  const server = await startServerProcess(latencyMs);
  const journal = Journal.open(join(root, "workspace", "journal.sqlite"));
  return {
    root,
    requestTimes: () => server.arrivals(),
    redisUrl: redis.url,
    serverUrl: server.url,
    journal,
    sandbox,
    latencyMs,
    close: async () => {
      journal.close();
      await server.close();
      await redis.cleanup();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function startWorkers(s: Setup, n: number, concurrency: number): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = [];
  await Promise.all(
    Array.from({ length: n }, async () => {
      const child = spawn(
        process.execPath,
        [BIN, "worker", "--dir", s.root, "--redis", s.redisUrl, "--concurrency", String(concurrency)],
        {
          env: { ...process.env, ANTHROPIC_BASE_URL: s.serverUrl, ANTHROPIC_API_KEY: "test-key-local" },
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      workers.push(child);
      let out = "";
      await new Promise<void>((ok, fail) => {
        child.stdout?.on("data", (d) => {
          out += d;
          if (out.includes("worker started")) ok();
        });
        child.on("exit", (code) => fail(new Error(`worker exited ${code}: ${out.slice(-500)}`)));
      });
      child.stdout?.resume();
    }),
  );
  return workers;
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((ok) => {
          if (w.exitCode !== null) return ok();
          w.once("exit", () => ok());
          w.kill("SIGTERM");
        }),
    ),
  );
}

/**
 * One batch of `count` tasks (after a warm-up batch of `warm` tasks) through `executor`: its wall time, and its
 * steady state (first model request to the last reply), which leaves out the batch's fixed start and end costs.
 */
async function timeBatch(
  s: Setup,
  executor: TaskExecutor | undefined,
  concurrency: number,
  from: number,
  count: number,
  warm: number,
): Promise<{ wall: number; steady: number }> {
  const { log } = createLogger({ stdout: false });
  const config = configSchema.parse({
    benchmark: "local",
    max_concurrency: concurrency,
    sandbox: s.sandbox,
  });
  const runner = createRunner({
    root: s.root,
    config,
    journal: s.journal,
    log,
    adapter: createLocalAdapter({
      tasksFile: join(s.root, "bench", "tasks.jsonl"),
      scorerFile: join(s.root, "bench", "scorer.ts"),
    }),
    agentBaseURL: s.serverUrl,
    agentApiKey: "test-key-local",
    typeCheck: false,
    reuse: false,
    ...(executor ? { executor } : {}),
  });
  const ids = (start: number, n: number) => Array.from({ length: n }, (_, i) => `task-${start + i}`);
  const run = `bench-${from}`;
  s.journal.runs.createRun(run, {});
  await runner.run({ split: "train", taskIds: ids(from, warm), runId: run, writeTraces: false });
  // As between a night's benchmark runs: the fresh agent process kept for the next batch has loaded.
  await new Promise((r) => setTimeout(r, 3000));
  const seen = (await s.requestTimes()).length;
  const t0 = performance.now();
  const summary = await runner.run({
    split: "train",
    taskIds: ids(from + warm, count),
    runId: run,
    writeTraces: false,
  });
  const wall = performance.now() - t0;
  if (summary.passed !== count) throw new Error(`only ${summary.passed}/${count} tasks passed`);
  const times = (await s.requestTimes()).slice(seen);
  return { wall, steady: Math.max(...times) + s.latencyMs - Math.min(...times) };
}

function queueExecutor(s: Setup): TaskExecutor {
  const { log } = createLogger({ stdout: false });
  const config = configSchema.parse({
    benchmark: "local",
    local: { tasks: "bench/tasks.jsonl", scorer: "bench/scorer.ts" },
    sandbox: s.sandbox,
  });
  return createBullmqExecutor({
    redisUrl: s.redisUrl,
    versions: versionsOf(config, s.root),
    model: config.agent_model,
    timeoutMs: 60_000,
    log,
    healthFile: null,
  });
}

export async function benchDistributed(latencyMs: number): Promise<Record<string, number>> {
  const figures: Record<string, number> = { reply_ms: latencyMs, tasks_per_worker_at_once: PER_WORKER };
  const perRound = 4 * PER_WORKER;
  const s = await setUp(latencyMs, 3 * 2 * (ROUNDS + 1) * perRound + 200);
  let next = 0;
  const take = (n: number) => {
    const from = next;
    next += n;
    return from;
  };
  try {
    for (const k of [1, 2, 4]) {
      const concurrency = k * PER_WORKER;
      const count = ROUNDS * concurrency;
      const ideal = (count * latencyMs) / concurrency;
      const local = await timeBatch(s, undefined, concurrency, take(count + concurrency), count, concurrency);
      const workers = await startWorkers(s, k, PER_WORKER);
      try {
        const queue = await timeBatch(s, queueExecutor(s), concurrency, take(count + concurrency), count, concurrency);
        const pct = (ms: number) => Math.round((ideal / ms) * 1000) / 10;
        figures[`local_${concurrency}_pct_of_ideal`] = pct(local.wall);
        figures[`local_${concurrency}_steady_pct_of_ideal`] = pct(local.steady);
        figures[`workers_${k}x${PER_WORKER}_pct_of_ideal`] = pct(queue.wall);
        figures[`workers_${k}x${PER_WORKER}_steady_pct_of_ideal`] = pct(queue.steady);
        figures[`workers_${k}x${PER_WORKER}_tasks_per_s`] = Math.round((count / queue.wall) * 10_000) / 10;
      } finally {
        await stopWorkers(workers);
      }
    }
    // The queue's own cost per task: one task at a time, through one worker and through the local pool.
    const n = 20;
    const localOne = await timeBatch(s, undefined, 1, take(n + 1), n, 1);
    const workers = await startWorkers(s, 1, 1);
    try {
      const queueOne = await timeBatch(s, queueExecutor(s), 1, take(n + 1), n, 1);
      // Steady state: the batch's fixed start is left out; what remains per task beyond the reply is overhead.
      figures.local_ms_per_task_serial = Math.round(localOne.steady / n);
      figures.queue_ms_per_task_serial = Math.round(queueOne.steady / n);
      figures.queue_round_trip_overhead_ms = Math.round((queueOne.steady - localOne.steady) / n);
    } finally {
      await stopWorkers(workers);
    }
    return figures;
  } finally {
    await s.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const latencies = process.argv.slice(2).map(Number);
  for (const latency of latencies.length > 0 ? latencies : [50, 500]) {
    process.stdout.write(`\nexecutor: bullmq vs local (${latency} ms replies)\n`);
    for (const [k, v] of Object.entries(await benchDistributed(latency)))
      process.stdout.write(`  ${k.padEnd(36)} ${v}\n`);
  }
  // A figure printed is the end: no leftover handle (a spare agent process, a closing socket) holds it open.
  process.exit(0);
}
