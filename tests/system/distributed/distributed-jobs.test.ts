import { describe, expect, it } from "vitest";
import { type QueueHealth, queueLines } from "../../../src/distributed/health.ts";
import {
  hashTaskId,
  jobIdOf,
  parseJobId,
  parseResult,
  resultForSplit,
  type TaskJobResult,
  taskRefOf,
  versionMismatch,
} from "../../../src/distributed/jobs.ts";
import type { WorkerHealth } from "../../../src/distributed/queue.ts";

const call = {
  runId: null,
  iteration: null,
  stepKey: null,
  role: "agent" as const,
  model: "m",
  promptHash: null,
  inputTokens: 10,
  outputTokens: 2,
  cacheCreationTokens: 0,
  cacheReadTokens: 0,
  costUsd: 0.001,
  latencyMs: 5,
  stopReason: "end_turn",
  response: { content: "a reply that must not travel" },
};

describe("job ids", () => {
  it.each([
    { run: "run-20261202-ab12", agentHash: "f".repeat(64), split: "train" as const, taskRef: "t-1", trial: 0 },
    { run: "r:1|x", agentHash: "a1", split: "test" as const, taskRef: hashTaskId("secret task"), trial: 3 },
    { run: "r", agentHash: "a", split: "train" as const, taskRef: "odd:id|with/sep%", trial: 1 },
  ])("round-trips $taskRef without ':' (BullMQ refuses it)", (key) => {
    const id = jobIdOf(key);
    expect(id).not.toContain(":");
    expect(parseJobId(id)).toEqual(key);
  });

  it("differs in every part of (run, agent hash, split, task, trial)", () => {
    const base = { run: "r", agentHash: "a", split: "train" as const, taskRef: "t", trial: 0 };
    const ids = new Set([
      jobIdOf(base),
      jobIdOf({ ...base, run: "r2" }),
      jobIdOf({ ...base, agentHash: "b" }),
      jobIdOf({ ...base, split: "test" }),
      jobIdOf({ ...base, taskRef: "u" }),
      jobIdOf({ ...base, trial: 1 }),
    ]);
    expect(ids.size).toBe(6);
  });

  it("names a test task by a hash, a train task by its id", () => {
    expect(taskRefOf("train", "refund-7")).toBe("refund-7");
    const ref = taskRefOf("test", "refund-7");
    expect(ref).not.toContain("refund");
    expect(ref).toBe(hashTaskId("refund-7"));
    expect(hashTaskId("refund-8")).not.toBe(ref);
  });

  it("rejects malformed ids", () => {
    expect(parseJobId("a|b|c")).toBeNull();
    expect(parseJobId("r|a|valid|t|0")).toBeNull();
    expect(parseJobId("r|a|train|t|-1")).toBeNull();
  });
});

describe("version handshake", () => {
  const v = { harness: "0.1.0+abc", benchmark: "local+123" };
  it.each([
    { worker: v, reason: null },
    {
      worker: { ...v, harness: "0.1.0+def" },
      reason: /harness version differs \(daemon 0\.1\.0\+abc, this worker 0\.1\.0\+def\)/,
    },
    {
      worker: { ...v, benchmark: "local+999" },
      reason: /benchmark version differs \(daemon local\+123, this worker local\+999\)/,
    },
  ])("worker $worker.harness / $worker.benchmark", ({ worker, reason }) => {
    const got = versionMismatch(v, worker);
    if (reason === null) expect(got).toBeNull();
    else expect(got).toMatch(reason);
  });
});

describe("held-out rule", () => {
  const full: TaskJobResult = {
    reward: 0.5,
    durationMs: 120,
    llmCalls: [call],
    worker: "w1",
    error: "expected refund of order 4411",
    events: [{ kind: "note", message: "customer Alice" }],
    task: { id: "x", input: "secret input" },
    answer: "Alice's refund",
  };
  it("a test result keeps the reward, time, token counts and worker only", () => {
    const out = resultForSplit("test", full);
    expect(Object.keys(out).sort()).toEqual(["durationMs", "llmCalls", "reward", "worker"]);
    expect(out.llmCalls[0]?.response).toBeNull();
    expect(JSON.stringify(out)).not.toMatch(/Alice|4411|secret|reply/);
  });
  it("a train result keeps its trace", () => {
    expect(resultForSplit("train", full)).toEqual(full);
  });
  it("parses only well-formed results", () => {
    expect(parseResult(full)).toEqual(full);
    expect(parseResult({ ...full, reward: 2 })).toBeNull();
    expect(parseResult({ ...full, llmCalls: "x" })).toBeNull();
    expect(parseResult(null)).toBeNull();
  });
});

describe("queue health lines", () => {
  const worker = (id: string, meanTaskMs: number | null, extra: Partial<WorkerHealth> = {}): WorkerHealth => ({
    id,
    host: `${id}.lan`,
    pid: 1,
    concurrency: 4,
    running: 2,
    done: 10,
    failed: 0,
    meanTaskMs,
    startedAt: 0,
    lastSeen: 0,
    versions: { harness: "x", benchmark: "y" },
    refused: null,
    ...extra,
  });
  const health: QueueHealth = {
    at: 10_000,
    split: "test",
    done: 12,
    total: 40,
    waiting: 20,
    active: 8,
    delayed: 0,
    stalled: 1,
    workers: [
      worker("a", 500),
      worker("b", 2500),
      worker("c", null, { running: 0, refused: "refused: harness version differs" }),
    ],
  };
  it("says progress, running per worker, stalled jobs and the slowest worker", () => {
    expect(queueLines(health, 13_000)).toEqual([
      ["queue", "test 12/40 done, 20 waiting, 8 running, 0 delayed, 1 stalled (as of 3s ago)"],
      ["worker", "a: 2/4 running, 10 done, 0 failed, mean 0.5s a task"],
      ["worker", "b: 2/4 running, 10 done, 0 failed, mean 2.5s a task  [slowest]"],
      ["worker", "c: 0/4 running, 10 done, 0 failed  [refused: harness version differs]"],
    ]);
  });
  it("tells how to add a worker when none is connected", () => {
    expect(queueLines({ ...health, workers: [] }, 10_000)[1]).toEqual([
      "workers",
      "none connected: start `auto-harness worker --redis <url>`",
    ]);
  });
});
