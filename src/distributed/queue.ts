/**
 * The one module that talks to BullMQ and ioredis: connections, the task queue, its events, a worker, and the
 * two small things the harness keeps beside the queue (agent files by content hash, worker health).
 */
import { createHash } from "node:crypto";
import { type Processor, Queue, QueueEvents, Worker, type WorkerOptions } from "bullmq";
import { Redis } from "ioredis";
import { HarnessError, UserError } from "../errors.ts";
import type { LlmCallRow } from "../journal/stores.ts";
import { KEY_PREFIX, QUEUE_NAME, type TaskJobData, type TaskJobResult } from "./jobs.ts";

export type { Job } from "bullmq";
export { DelayedError, UnrecoverableError } from "bullmq";
export type TaskQueue = Queue<TaskJobData, TaskJobResult>;

/** Checks a redis:// or rediss:// URL; an operator's typo gets a clear error instead of a hang. */
export function checkRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError("USAGE", `redis URL ${JSON.stringify(url)} is not a URL; expected redis://host:port`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")
    throw new UserError("USAGE", `redis URL ${JSON.stringify(url)} must start with redis:// or rediss://`);
  return url;
}

/** The URL without its credentials, for messages. */
export function redisWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(not a URL)";
  }
}

/** Why a Redis connection failed, in an operator's words: "connection refused", "a password is needed"… */
function redisFailure(error: unknown, timeoutMs: number): { unreachable: boolean; why: string } {
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const message = typeof e?.message === "string" ? e.message : String(error);
  if (code === "ECONNREFUSED") return { unreachable: true, why: "connection refused" };
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return { unreachable: false, why: "its host name does not resolve" };
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(message)) {
    return { unreachable: true, why: `no answer within ${Math.round(timeoutMs / 1000)}s` };
  }
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return { unreachable: true, why: "network unreachable" };
  if (/NOAUTH|WRONGPASS|invalid password|AUTH/i.test(message)) {
    return { unreachable: false, why: "it refused the credentials (redis://:password@host:port, or user:password)" };
  }
  if (/DB index is out of range/i.test(message)) {
    return { unreachable: false, why: "the database number in the URL is out of range" };
  }
  if (/Protocol error|Unknown RESP|unknown reply|Unexpected/i.test(message)) {
    return { unreachable: false, why: "something answers there, but not Redis" };
  }
  return { unreachable: true, why: message };
}

/**
 * One look at the Redis behind `url`, bounded by `timeoutMs` (a wrong address must not hang `prepare` or a
 * worker): null when it answers as a Redis BullMQ can use, else why not, and whether it is only unreachable
 * (it may come back) or wrong (it never will).
 */
export async function probeRedis(
  url: string,
  timeoutMs = 5_000,
): Promise<{ unreachable: boolean; why: string } | null> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // ioredis rejects with a bare "Connection is closed"; what went wrong arrives as an error event first.
  let seen: unknown = null;
  redis.on("error", (error: unknown) => {
    seen ??= error;
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })), timeoutMs + 500);
  });
  try {
    const info = await Promise.race([
      redis.connect().then(async () => {
        // The database the URL names is selected as the connection opens: a refusal surfaces on the next command.
        await redis.ping();
        return redis.info("server");
      }),
      deadline,
    ]).catch((error: unknown) => {
      throw seen ?? error;
    });
    if (seen) throw seen;
    const version = /redis_version:(\S+)/.exec(info)?.[1];
    if (!version) return { unreachable: false, why: "something answers there, but not Redis" };
    if (Number(version.split(".")[0]) < 5)
      return { unreachable: false, why: `Redis ${version} is too old for BullMQ (5.0 or later)` };
    return null;
  } catch (error) {
    return redisFailure(error, timeoutMs);
  } finally {
    clearTimeout(timer);
    redis.disconnect();
  }
}

/**
 * A connection BullMQ can block on: no per-command retry limit (BullMQ's workers require it), and reconnects
 * forever with a capped backoff, so a Redis restart is waited out instead of failing the run.
 */
export function connect(url: string, name: string, onError?: (error: Error) => void): Redis {
  const redis = new Redis(checkRedisUrl(url), {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    connectionName: `auto-harness:${name}`,
    retryStrategy: (times) => Math.min(100 * times, 2000),
  });
  // Without a listener ioredis prints every failed reconnect; it keeps reconnecting either way.
  redis.on("error", onError ?? (() => {}));
  return redis;
}

export function openQueue(connection: Redis): TaskQueue {
  return new Queue<TaskJobData, TaskJobResult>(QUEUE_NAME, { connection, prefix: KEY_PREFIX });
}

export function openQueueEvents(connection: Redis): QueueEvents {
  return new QueueEvents(QUEUE_NAME, { connection, prefix: KEY_PREFIX });
}

export function openWorker(
  connection: Redis,
  processor: Processor<TaskJobData, TaskJobResult>,
  options: Pick<WorkerOptions, "concurrency" | "lockDuration" | "stalledInterval" | "maxStalledCount" | "name">,
): Worker<TaskJobData, TaskJobResult> {
  return new Worker<TaskJobData, TaskJobResult>(QUEUE_NAME, processor, {
    connection,
    prefix: KEY_PREFIX,
    autorun: false,
    ...options,
  });
}

// ---------------------------------------------------------------- agent files by content hash

const agentKey = (hash: string) => `${KEY_PREFIX}:agent:${hash}`;
/** Agent versions are small; a week covers any run, and a re-run puts the file back. */
const AGENT_TTL_S = 7 * 24 * 3600;

export function sha256(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** Stores the agent file under its hash (once; a second put only refreshes its lifetime). */
export async function putAgentFile(redis: Redis, content: Buffer): Promise<string> {
  const hash = sha256(content);
  await redis.set(agentKey(hash), content, "EX", AGENT_TTL_S);
  return hash;
}

/** The agent file of `hash`, checked against its hash. */
export async function getAgentFile(redis: Redis, hash: string): Promise<Buffer> {
  const content = await redis.getBuffer(agentKey(hash));
  if (!content) throw new HarnessError("INFRA_FAILURE", `agent file ${hash.slice(0, 12)} is not in Redis`);
  if (sha256(content) !== hash)
    throw new HarnessError("INFRA_FAILURE", `agent file ${hash.slice(0, 12)} in Redis does not match its hash`);
  return content;
}

// ---------------------------------------------------------------- worker health

const workersKey = `${KEY_PREFIX}:workers`;

/** What each worker reports about itself every second: counts only, never a task's id or content. */
export interface WorkerHealth {
  id: string;
  host: string;
  pid: number;
  concurrency: number;
  running: number;
  done: number;
  failed: number;
  /** Mean wall time of its finished tasks. */
  meanTaskMs: number | null;
  startedAt: number;
  lastSeen: number;
  versions: { harness: string; benchmark: string };
  /** Set when it refused a job (version mismatch); it stops taking jobs then. */
  refused: string | null;
}

export async function reportHealth(redis: Redis, health: WorkerHealth): Promise<void> {
  await redis.hset(workersKey, health.id, JSON.stringify(health));
}

export async function removeHealth(redis: Redis, id: string): Promise<void> {
  await redis.hdel(workersKey, id);
}

/** Every worker that reported within `maxAgeMs`; older entries (a SIGKILLed worker) are pruned. */
export async function readHealth(redis: Redis, now: number, maxAgeMs = 10_000): Promise<WorkerHealth[]> {
  const all = await redis.hgetall(workersKey);
  const live: WorkerHealth[] = [];
  const dead: string[] = [];
  for (const [id, text] of Object.entries(all)) {
    try {
      const h = JSON.parse(text) as WorkerHealth;
      if (now - h.lastSeen <= maxAgeMs) live.push(h);
      else dead.push(id);
    } catch {
      dead.push(id);
    }
  }
  if (dead.length > 0) await redis.hdel(workersKey, ...dead);
  return live.sort((a, b) => a.id.localeCompare(b.id));
}

// ---------------------------------------------------------------- paid calls, reported as they are paid

const callsKey = (run: string) => `${KEY_PREFIX}:calls:${run}`;
/** Reports the daemon has not collected outlive a daemon that never returns by this long. */
const CALLS_TTL_S = 7 * 24 * 3600;

/** A worker's paid call, appended the moment its reply completes: the daemon journals it even if the worker dies. */
export async function reportCall(redis: Redis, run: string, row: LlmCallRow): Promise<void> {
  await redis.multi().rpush(callsKey(run), JSON.stringify(row)).expire(callsKey(run), CALLS_TTL_S).exec();
}

/** The calls reported for a run and not yet collected, oldest first (at most `max`), and how many entries were read. */
export async function reportedCalls(
  redis: Redis,
  run: string,
  max = 1000,
): Promise<{ rows: LlmCallRow[]; read: number }> {
  const texts = await redis.lrange(callsKey(run), 0, max - 1);
  const rows: LlmCallRow[] = [];
  for (const text of texts) {
    try {
      rows.push(JSON.parse(text) as LlmCallRow);
    } catch {
      // not a row: dropped with the rest once collected
    }
  }
  return { rows, read: texts.length };
}

export async function reportedCount(redis: Redis, run: string): Promise<number> {
  return redis.llen(callsKey(run));
}

/** Drops the first `n` reports, once the daemon has journaled them (a report read twice is written once). */
export async function collectedCalls(redis: Redis, run: string, n: number): Promise<void> {
  if (n > 0) await redis.ltrim(callsKey(run), n, -1);
}

// ---------------------------------------------------------------- the run's budget, shared by its workers

const budgetKey = (run: string) => `${KEY_PREFIX}:budget:${run}`;

// A call fits if, beside what was spent and what calls in flight on any worker may cost, its worst case does.
const RESERVE = `
local left = redis.call('HGET', KEYS[1], 'left')
if not left then return 1 end
left = tonumber(left)
local held = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0') + tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local usd = tonumber(ARGV[1])
if held < left and held + usd <= left then
  redis.call('HINCRBYFLOAT', KEYS[1], 'reserved', ARGV[1])
  return 1
end
return 0
`;

/** What a batch may spend (null: no limit), set by the daemon when it hands the batch out. */
export async function setRunBudget(redis: Redis, run: string, leftUsd: number | null): Promise<void> {
  if (leftUsd === null) {
    await redis.del(budgetKey(run));
    return;
  }
  await redis
    .multi()
    .hset(budgetKey(run), { left: String(leftUsd), spent: "0", reserved: "0" })
    .expire(budgetKey(run), CALLS_TTL_S)
    .exec();
}

export async function reserveRunBudget(redis: Redis, run: string, usd: number): Promise<boolean> {
  return (await redis.eval(RESERVE, 1, budgetKey(run), String(usd))) === 1;
}

export async function settleRunBudget(redis: Redis, run: string, reservedUsd: number, paidUsd: number): Promise<void> {
  const key = budgetKey(run);
  // Only a budget the daemon set is kept: settling must not make one where there is no limit.
  if (!(await redis.exists(key))) return;
  await redis
    .multi()
    .hincrbyfloat(key, "reserved", String(-reservedUsd))
    .hincrbyfloat(key, "spent", String(paidUsd))
    .exec();
}

/** Removes jobs no worker has started (an active job is locked: it runs to its end and is removed later). */
export async function withdraw(queue: TaskQueue, ids: string[]): Promise<void> {
  for (const jobId of ids) {
    try {
      const job = await queue.getJob(jobId);
      const state = await job?.getState();
      if (job && (state === "waiting" || state === "delayed" || state === "prioritized")) await job.remove();
    } catch {
      // started meanwhile
    }
  }
}
