/**
 * Benchmark tasks through BullMQ on real worker processes against a real redis-server (AOF on): the same
 * results as the local pool, every result journaled exactly once through a worker SIGKILL, a daemon SIGKILL
 * and a Redis restart, and no held-out content in Redis, on the worker or in the daemon's workspace.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type RecordedRequest,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../dev/llm-server/llm-server.ts";
import { readQueueHealth } from "../src/distributed/health.ts";
import { connect } from "../src/distributed/queue.ts";
import { paths } from "../src/workspace/paths.ts";
import { ECHO_AGENT, type Experiment, makeExperiment } from "./benchmark-fixtures.ts";
import {
  bullmqExecutorFor,
  CONFIG_YAML,
  filesContaining,
  removeDir,
  spawnWorker,
  type WorkerProcess,
  workerDirFor,
} from "./helpers/distributed.ts";
import { type RedisServer, startRedis } from "./helpers/redis.ts";
import { haveTool } from "./helpers/tools.ts";

const DAEMON = fileURLToPath(new URL("./fixtures/distributed-daemon.ts", import.meta.url));
const TRAIN = ["train-0", "train-1", "train-2", "train-3", "train-4", "train-5"];
const TEST = ["heldout-0", "heldout-1", "heldout-2", "heldout-3", "heldout-4", "heldout-5", "heldout-6", "heldout-7"];
const inputOf = (id: string) => (id.startsWith("heldout") ? `HELDOUT-INPUT-${id}` : `TRAIN-INPUT-${id}`);
// Every third task expects something the agent never answers: a deterministic mix of 1s and 0s.
const tasks = [...TRAIN, ...TEST].map((id, i) => ({
  id,
  input: { prompt: inputOf(id) },
  expected: i % 3 === 2 ? "never" : `answer:${inputOf(id)}`,
}));
const promptOf = (req: RecordedRequest): string => String(req.body?.messages?.[0]?.content ?? "");

describe.skipIf(!haveTool("redis-server", "redis-server") || !haveTool("bwrap", "bubblewrap"))(
  "tasks on BullMQ workers (real redis-server)",
  () => {
    let redis: RedisServer;
    let server: TestLlmServer;
    let exp: Experiment;
    const delayMs = 100;
    const onRequest: (prompt: string) => void = () => {};
    const workers: WorkerProcess[] = [];
    const dirs: string[] = [];
    let env: NodeJS.ProcessEnv;

    const startWorker = async (opts: { concurrency?: number } = {}) => {
      const dir = workerDirFor(exp.root);
      dirs.push(dir);
      const w = spawnWorker(dir, redis.url, env, opts);
      workers.push(w);
      await w.waitFor(/worker started/);
      return w;
    };
    const executor = () => bullmqExecutorFor(exp.root, redis.url, exp.log);
    const requestsFor = (id: string) => server.requests.filter((r) => promptOf(r) === inputOf(id)).length;
    const count = (sql: string, ...args: unknown[]) => {
      // The journal's own connection, read-only queries through better-sqlite3's public API.
      // biome-ignore lint/suspicious/noExplicitAny: test-only peek at the journal's database
      const db = (exp.journal as any).db as import("better-sqlite3").Database;
      return (db.prepare(sql).get(...args) as { n: number }).n;
    };

    beforeAll(async () => {
      redis = await startRedis({ aof: true });
      server = await startTestLlmServer({
        responder: async (req) => {
          const prompt = promptOf(req);
          onRequest(prompt);
          await new Promise((r) => setTimeout(r, prompt.includes("slow") ? 4000 : delayMs));
          return textReply(`answer:${prompt}`);
        },
      });
      exp = makeExperiment({ tasks, agent: ECHO_AGENT, split: { train: TRAIN, test: TEST }, baseURL: server.url });
      writeFileSync(join(exp.root, "experiment_config.yaml"), CONFIG_YAML);
      env = { ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key-local" };
      await Promise.all([startWorker(), startWorker()]);
    }, 60_000);

    afterAll(async () => {
      for (const w of workers) w.kill();
      await Promise.all(workers.map((w) => w.exited));
      exp?.cleanup();
      for (const d of dirs) removeDir(d);
      await server?.close();
      await redis?.cleanup();
    });

    it("gives the same per-task results as the local pool, train traces included", async () => {
      exp.journal.createRun("run-local", {});
      exp.journal.createRun("run-queue", {});
      // The local pool, sandboxed as the config says (bwrap by default), as the workers' are.
      const local = exp.runner();
      const queued = exp.runner({ executor: executor() });
      const localTrain = await local.run({ split: "train", runId: "run-local", reuse: false });
      const localTest = await local.run({ split: "test", runId: "run-local", reuse: false });
      const queueTrain = await queued.run({ split: "train", runId: "run-queue", reuse: false });
      const queueTest = await queued.run({ split: "test", runId: "run-queue", reuse: false });
      expect(queueTrain.results).toEqual(localTrain.results);
      expect(queueTest.results).toEqual(localTest.results);
      expect(Object.values(queueTest.results)).toContain(0);
      expect(Object.values(queueTest.results)).toContain(1);
      // Each result once, with its model calls once: 14 tasks, 14 calls in this run.
      expect(exp.journal.spend("run-queue").calls).toBe(TRAIN.length + TEST.length);
      // Train traces came back to the daemon; the queue's health was written for status.
      const trace = JSON.parse(
        (await import("node:fs")).readFileSync(join(paths(exp.root).tracesLatest, "train-0", "trace.json"), "utf8"),
      );
      expect(JSON.stringify(trace.events)).toContain("TRAIN-INPUT-train-0");
      const health = readQueueHealth(paths(exp.root).queueHealth);
      expect(health?.workers.length).toBe(2);
    }, 120_000);
  },
);
