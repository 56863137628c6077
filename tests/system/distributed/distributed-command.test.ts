/** A `command` benchmark through BullMQ: a worker runs the benchmark's own program for each job's task. */
import { cpSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAdapter } from "../../../src/benchmark/adapters/index.ts";
import { createRunner } from "../../../src/benchmark/runner.ts";
import { loadConfig } from "../../../src/config/load.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { bullmqExecutorFor, spawnWorker, type WorkerProcess } from "../../helpers/distributed.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { type RedisServer, startRedis } from "../../helpers/redis.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

/** A copy of examples/command, as on a machine that has the benchmark (tsx reachable for its agent import). */
function copyCommandExample(dir: string, withAgent: boolean): string {
  cpSync(join(REPO_ROOT, "examples", "command"), dir, { recursive: true });
  if (!withAgent) rmSync(join(dir, "agent"), { recursive: true, force: true });
  symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

describe.skipIf(!haveTool("redis-server", "redis-server"))("a command benchmark on a BullMQ worker", () => {
  let redis: RedisServer;
  let worker: WorkerProcess;
  beforeAll(async () => {
    redis = await startRedis({ aof: true });
  });
  afterAll(async () => {
    worker?.kill();
    await worker?.exited;
    await redis?.cleanup();
  });

  it("gives the same per-task rewards as running the command locally, train and test", async () => {
    const root = copyCommandExample(join(tempDir(), "daemon"), true);
    worker = spawnWorker(copyCommandExample(join(tempDir(), "worker"), false), redis.url, {});
    await worker.waitFor(/worker started/);
    const config = loadConfig(join(root, "experiment_config.yaml"));
    const journal = Journal.open(paths(root).journal);
    try {
      const { log } = createLogger({ stdout: false });
      const base = { root, config, journal, log, adapter: createAdapter(config, root, log), reuse: false };
      const local = createRunner(base);
      const queued = createRunner({ ...base, executor: bullmqExecutorFor(root, redis.url, log) });
      const train = ["r1", "r2", "r3", "r7"];
      const test = ["r5", "r6", "r8"];
      journal.runs.createRun("run-cmd", {});
      const localTrain = await local.run({ split: "train", taskIds: train, runId: "run-cmd" });
      const localTest = await local.run({ split: "test", taskIds: test, runId: "run-cmd" });
      const queueTrain = await queued.run({ split: "train", taskIds: train, runId: "run-cmd" });
      const queueTest = await queued.run({ split: "test", taskIds: test, runId: "run-cmd" });
      expect(queueTrain.results).toEqual(localTrain.results);
      expect(queueTest.results).toEqual(localTest.results);
      expect(queueTrain.infraErrors + queueTest.infraErrors).toBe(0);
      expect(new Set(Object.values({ ...queueTrain.results, ...queueTest.results })).size).toBe(2);
    } finally {
      journal.close();
    }
  }, 120_000);
});
