/** The pieces beside the queue, against a real redis-server: agent files by hash, worker health, the journal's delivery rule. */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connect,
  getAgentFile,
  putAgentFile,
  readHealth,
  reportHealth,
  sha256,
  type WorkerHealth,
} from "../../../src/distributed/queue.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { type RedisServer, startRedis } from "../../helpers/redis.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

describe.skipIf(!haveTool("redis-server", "redis-server"))("queue side channels (real redis-server)", () => {
  let redisServer: RedisServer;
  beforeAll(async () => {
    redisServer = await startRedis({ aof: true });
  });
  afterAll(async () => {
    await redisServer?.cleanup();
  });

  it("moves an agent file by its content hash, and refuses one that does not match it", async () => {
    const redis = connect(redisServer.url, "test");
    try {
      const content = Buffer.from("export default { run: async () => 'v1' };\n");
      const hash = await putAgentFile(redis, content);
      expect(hash).toBe(sha256(content));
      expect((await getAgentFile(redis, hash)).equals(content)).toBe(true);
      await redis.set(`auto-harness:agent:${hash}`, "export default { run: async () => 'tampered' };\n");
      await expect(getAgentFile(redis, hash)).rejects.toThrow(/does not match its hash/);
      await expect(getAgentFile(redis, "0".repeat(64))).rejects.toThrow(/is not in Redis/);
    } finally {
      redis.disconnect();
    }
  });

  it("lists live workers and prunes one that stopped reporting", async () => {
    const redis = connect(redisServer.url, "test");
    try {
      const base: WorkerHealth = {
        id: "a",
        host: "h",
        pid: 1,
        concurrency: 2,
        running: 1,
        done: 3,
        failed: 0,
        meanTaskMs: 500,
        startedAt: 0,
        lastSeen: 10_000,
        versions: { harness: "x", benchmark: "y" },
        refused: null,
      };
      await reportHealth(redis, base);
      await reportHealth(redis, { ...base, id: "b", lastSeen: 1_000 });
      const live = await readHealth(redis, 12_000, 5_000);
      expect(live.map((w) => w.id)).toEqual(["a"]);
      expect(await redis.hkeys("auto-harness:workers")).toEqual(["a"]);
    } finally {
      redis.disconnect();
    }
  });
});

describe("journal: a result delivered twice is written once", () => {
  it("drops the second delivery with its LLM calls, and takes a new delivery of the same task", () => {
    const dir = tempDir();
    const journal = Journal.open(join(dir, "journal.sqlite"));
    try {
      journal.runs.createRun("r1", {});
      const row = {
        agentHash: "h",
        split: "test" as const,
        taskId: "t1",
        trial: 0,
        reward: null,
        durationMs: 5,
        error: null,
        runId: "r1",
      };
      const call = {
        runId: "r1",
        iteration: 1,
        stepKey: null,
        role: "agent" as const,
        model: "claude-sonnet-4-6",
        promptHash: null,
        inputTokens: 100,
        outputTokens: 10,
        cacheCreationTokens: 0,
        cacheReadTokens: 0,
        costUsd: 0.01,
        latencyMs: 3,
        stopReason: null,
        response: null,
      };
      expect(journal.taskResults.putTaskResult(row, [call], "job-1@100")).toBe(true);
      expect(journal.taskResults.putTaskResult(row, [call], "job-1@100")).toBe(false);
      expect(journal.ledger.llmCalls("r1")).toHaveLength(1);
      // The same task run again (a new job, a new delivery) replaces the infrastructure error.
      expect(journal.taskResults.putTaskResult({ ...row, reward: 1 }, [call], "job-1@200")).toBe(true);
      expect(journal.taskResults.getTaskResult("h", "test", "t1")?.reward).toBe(1);
      expect(journal.ledger.spend("r1").calls).toBe(2);
    } finally {
      journal.close();
    }
  });
});
