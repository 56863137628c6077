/**
 * Benchmark tasks through BullMQ on real worker processes against a real redis-server (AOF on): the same
 * results as the local pool, every result journaled exactly once through a worker SIGKILL, a daemon SIGKILL
 * and a Redis restart, and no held-out content in Redis, on the worker or in the daemon's workspace.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type RecordedRequest,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../../../dev/llm-server/llm-server.ts";
import { agentHashOf } from "../../../src/benchmark/agent-hash.ts";
import { readQueueHealth } from "../../../src/distributed/health.ts";
import { connect } from "../../../src/distributed/queue.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { ECHO_AGENT, type Experiment, makeExperiment } from "../../helpers/benchmark-fixtures.ts";
import {
  bullmqExecutorFor,
  CONFIG_YAML,
  filesContaining,
  removeDir,
  spawnWorker,
  type WorkerProcess,
  workerDirFor,
} from "../../helpers/distributed.ts";
import { until } from "../../helpers/processes.ts";
import { type RedisServer, startRedis } from "../../helpers/redis.ts";
import { haveTool } from "../../helpers/tools.ts";

const DAEMON = fileURLToPath(new URL("../../fixtures/distributed-daemon.ts", import.meta.url));
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
    let delayMs = 100;
    let onRequest: (prompt: string) => void = () => {};
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
      exp.journal.runs.createRun("run-local", {});
      exp.journal.runs.createRun("run-queue", {});
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
      expect(exp.journal.ledger.spend("run-queue").calls).toBe(TRAIN.length + TEST.length);
      // Train traces came back to the daemon; the queue's health was written for status.
      const trace = JSON.parse(
        (await import("node:fs")).readFileSync(join(paths(exp.root).tracesLatest, "train-0", "trace.json"), "utf8"),
      );
      expect(JSON.stringify(trace.events)).toContain("TRAIN-INPUT-train-0");
      const health = readQueueHealth(paths(exp.root).queueHealth);
      expect(health?.workers.length).toBe(2);
    }, 120_000);

    /**
     * Each task's result journaled once for this run, right; its paid calls in the ledger (one per task, or what the
     * server served when a killed attempt's call was paid too); no job left in the queue.
     */
    const expectExactlyOnce = async (runId: string, split: "train" | "test", ids: string[], calls = ids.length) => {
      const agentHash = agentHashOf(readFileSync(paths(exp.root).agentFile));
      const rows = exp.journal.taskResults.taskResults(agentHash, split).filter((r) => r.runId === runId);
      expect(rows.map((r) => r.taskId).sort()).toEqual([...ids].sort());
      for (const r of rows) expect(r.reward).toBe(tasks.find((t) => t.id === r.taskId)?.expected === "never" ? 0 : 1);
      expect(exp.journal.ledger.spend(runId).calls).toBe(calls);
      const client = connect(redis.url, "test-check");
      try {
        expect(await client.llen("auto-harness:tasks:wait")).toBe(0);
        expect(await client.llen("auto-harness:tasks:active")).toBe(0);
      } finally {
        client.disconnect();
      }
    };

    it("a worker SIGKILLed mid-task: its tasks run again on another worker, each result journaled once", async () => {
      const running = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
      // The request of train-3 reaching the model means a worker is in the middle of it: kill every worker then.
      const midTask = new Promise<void>((resolve) => {
        onRequest = (prompt) => {
          if (prompt === inputOf("train-3")) resolve();
        };
      });
      delayMs = 600;
      exp.journal.runs.createRun("run-kill-worker", {});
      const servedFrom = server.served.length;
      const done = exp.runner({ executor: executor() }).run({ split: "train", runId: "run-kill-worker", reuse: false });
      await midTask;
      for (const w of running) w.kill("SIGKILL");
      await Promise.all(running.map((w) => w.exited));
      const before = requestsFor("train-3");
      await startWorker();
      const summary = await done;
      onRequest = () => {};
      delayMs = 100;
      expect(summary.infraErrors).toBe(0);
      // The killed attempt never answered; BullMQ's stalled-job check gave the task to the new worker.
      expect(requestsFor("train-3")).toBe(before + 1);
      // A killed attempt whose reply had come was paid for: counted, once, as the server served it.
      const served = server.served.length - servedFrom;
      expect(served).toBeGreaterThanOrEqual(TRAIN.length);
      await expectExactlyOnce("run-kill-worker", "train", TRAIN, served);
      expect(readQueueHealth(paths(exp.root).queueHealth)?.stalled).toBeGreaterThan(0);
    }, 120_000);

    /** A new agent version (same behaviour), so journaled results of earlier tests are not reused. */
    const newAgentVersion = (label: string) => exp.writeAgent(`${ECHO_AGENT}// ${label}\n`);
    const liveWorkers = () => workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);

    it("the daemon SIGKILLed mid-gate: on resume it collects what finished meanwhile instead of running it again", async () => {
      newAgentVersion("daemon-kill");
      delayMs = 400;
      const from = server.requests.length;
      const daemon = () => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", DAEMON, exp.root, redis.url, "run-kill-daemon", "test"],
          {
            stdio: ["ignore", "pipe", "pipe"],
          },
        );
        let out = "";
        child.stdout?.on("data", (d) => {
          out += d;
        });
        child.stderr?.on("data", (d) => {
          out += d;
        });
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        return { child, exited, output: () => out };
      };
      const first = daemon();
      await until(
        "the daemon to collect two results",
        () => /COLLECTED 2\b/.test(first.output()),
        60_000,
        () => first.output(),
      );
      first.child.kill("SIGKILL");
      await first.exited;
      // The workers go on without the daemon: every test task reaches the model and finishes.
      // One connection for the whole wait, not one a check.
      const client = connect(redis.url, "test-wait");
      try {
        await until(
          "every test task to finish on the workers",
          async () => {
            const busy =
              (await client.llen("auto-harness:tasks:wait")) + (await client.llen("auto-harness:tasks:active"));
            return busy === 0 && heldoutRequestsSince(from) >= TEST.length;
          },
          60_000,
        );
      } finally {
        client.disconnect();
      }
      const second = daemon();
      expect(await second.exited).toBe(0);
      expect(second.output()).toMatch(/DONE /);
      delayMs = 100;
      // Not one test task ran twice: the resumed daemon collected the results from Redis.
      expect(heldoutRequestsSince(from)).toBe(TEST.length);
      await expectExactlyOnce("run-kill-daemon", "test", TEST);
    }, 120_000);

    it("Redis restarted mid-benchmark (AOF on): nothing lost; no held-out content in Redis, on workers or in the daemon", async () => {
      newAgentVersion("redis-restart");
      delayMs = 300;
      const firstHeldout = new Promise<void>((resolve) => {
        onRequest = (prompt) => {
          if (prompt.startsWith("HELDOUT")) resolve();
        };
      });
      exp.journal.runs.createRun("run-redis-restart", {});
      const done = exp.runner({ executor: executor() }).run({ split: "test", runId: "run-redis-restart" });
      await firstHeldout;
      onRequest = () => {};
      await redis.stop();
      await new Promise((r) => setTimeout(r, 500));
      await redis.start();
      const summary = await done;
      delayMs = 100;
      expect(summary.infraErrors).toBe(0);
      await expectExactlyOnce("run-redis-restart", "test", TEST);

      const heldout = TEST.flatMap((id) => [id, inputOf(id), `answer:${inputOf(id)}`]);
      // Redis's files hold every write since the first test: train traces did cross (the scan can see)...
      const files = redis.files();
      expect(files.some((f) => f.name.endsWith(".incr.aof"))).toBe(true);
      expect(redis.scan(["TRAIN-INPUT-train-0"])).toEqual(["TRAIN-INPUT-train-0"]);
      // ...and nothing of a held-out task ever did: no id, no input, no answer.
      expect(redis.scan(heldout)).toEqual([]);
      // The workers' machines keep only agent files; the daemon's workspace and logs no held-out input or answer.
      for (const w of workers) expect(filesContaining(join(w.dir, "workspace"), heldout)).toEqual([]);
      const contentOnly = TEST.flatMap((id) => [inputOf(id), `answer:${inputOf(id)}`]);
      expect(filesContaining(join(exp.root, "workspace"), contentOnly)).toEqual([]);
      expect(exp.logs.join("").includes("HELDOUT")).toBe(false);
    }, 120_000);

    it("a worker with another benchmark version refuses the job with the reason; a matching worker then runs it", async () => {
      newAgentVersion("refusal");
      // Stop the matching workers cleanly (SIGTERM: exit 0), so only the mismatched one is there to take the job.
      const good = liveWorkers();
      for (const w of good) w.kill("SIGTERM");
      expect(await Promise.all(good.map((w) => w.exited))).toEqual(good.map(() => 0));
      const dir = workerDirFor(exp.root, (d) =>
        writeFileSync(
          join(d, "bench", "tasks.jsonl"),
          `${readFileSync(join(d, "bench", "tasks.jsonl"), "utf8")}{"id":"extra"}\n`,
        ),
      );
      dirs.push(dir);
      const mismatched = spawnWorker(dir, redis.url, env);
      workers.push(mismatched);
      exp.journal.runs.createRun("run-refusal", {});
      const from = server.requests.length;
      const done = exp.runner({ executor: executor() }).run({
        split: "train",
        taskIds: ["train-0", "train-1"],
        runId: "run-refusal",
      });
      expect(await mismatched.exited).toBe(2);
      expect(mismatched.output()).toMatch(
        /refused: benchmark version differs \(daemon local\+\w+, this worker local\+\w+\)/,
      );
      expect(server.requests.length).toBe(from);
      await startWorker();
      const summary = await done;
      expect(summary.results).toEqual({ "train-0": 1, "train-1": 1 });
      expect(exp.logs.join("")).toMatch(/refused: benchmark version differs/);
    }, 120_000);

    it("an agent file that does not load on the worker fails the batch once, with the reason", async () => {
      exp.writeAgent("export default { run( {\n");
      exp.journal.runs.createRun("run-load-failed", {});
      const from = server.requests.length;
      const error = await exp
        .runner({ executor: executor() })
        .run({ split: "train", taskIds: ["train-0", "train-1"], runId: "run-load-failed" })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "AGENT_LOAD_FAILED" });
      // The type-checker's own words, as a local run gives them; never the worker's cache path.
      expect((error as Error).message).toMatch(/agent\.ts\(2,1\): error TS1005/);
      expect((error as Error).message).not.toContain("workspace/worker");
      expect(server.requests.length).toBe(from);
    }, 120_000);

    const heldoutRequestsSince = (from: number) =>
      server.requests.slice(from).filter((r) => promptOf(r).startsWith("HELDOUT")).length;
  },
);
