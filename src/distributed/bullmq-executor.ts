/**
 * `executor: bullmq`: the daemon's side of the queue. A batch becomes one job per (task, trial) — a job id
 * already in Redis (queued, running or finished before a crash) is not added twice — and outcomes are
 * yielded in groups as jobs finish. A job is removed from Redis only after the runner has journaled its
 * outcome (it pulls the next group), and every outcome carries a delivery id, so a copy delivered twice is dropped.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { extname } from "node:path";
import type { Redis } from "ioredis";
import type { ExecutorItem, TaskBatch, TaskExecutor, TaskOutcome } from "../benchmark/executor.ts";
import type { TraceEvent } from "../benchmark/sealed/protocol.ts";
import { type Clock, systemClock } from "../clock.ts";
import { AbortedError, EXIT_RESUMABLE, errorMessage, HarnessError } from "../errors.ts";
import type { LlmCallRow } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import type { QueueHealth } from "./health.ts";
import { jobIdOf, parseResult, type TaskJobData, type TaskJobResult, taskRefOf, type Versions } from "./jobs.ts";
import {
  collectedCalls,
  connect,
  type Job,
  openQueue,
  openQueueEvents,
  putAgentFile,
  readHealth,
  redisWhere,
  reportedCalls,
  reportedCount,
  setRunBudget,
  type TaskQueue,
} from "./queue.ts";

export interface BullmqExecutorOptions {
  redisUrl: string;
  versions: Versions;
  model: string;
  timeoutMs: number;
  log: Logger;
  /** Where the queue's health is written for `status` and the report (workspace/queue.json). */
  healthFile: string | null;
  /** How often job states are reconciled in case an event was missed (a Redis restart). Default 2 s. */
  sweepMs?: number;
  /** Times a job may fail on a worker (harness trouble, not the agent's) before its task counts as an infrastructure error. */
  attempts?: number;
  /** Redis unreachable this long ends the batch with a resumable INFRA_FAILURE (the run pauses). Default 5 min. */
  outageMs?: number;
  /** Measures the outage (monotonic time). */
  clock?: Clock;
}

const KEEP_S = 7 * 24 * 3600;

export function createBullmqExecutor(o: BullmqExecutorOptions): TaskExecutor {
  return { run: (batch, signal) => runBatch(o, batch, signal) };
}

interface Key {
  taskId: string;
  trial: number;
}

async function* runBatch(
  o: BullmqExecutorOptions,
  batch: TaskBatch,
  signal?: AbortSignal,
): AsyncGenerator<ExecutorItem[]> {
  const { log } = o;
  const run = batch.runId ?? "adhoc";
  const pending = new Map<string, Key>();
  for (const trial of batch.trials) {
    for (const taskId of batch.taskIds) {
      const taskRef = taskRefOf(batch.split, taskId);
      pending.set(jobIdOf({ run, agentHash: batch.agentHash, split: batch.split, taskRef, trial }), { taskId, trial });
    }
  }
  if (pending.size === 0) return;
  const total = pending.size;
  let lastError = "";
  const onError = (error: Error) => {
    // One line per distinct trouble (Redis down: every reconnect fails the same way).
    if (error.message === lastError) return;
    lastError = error.message;
    log.warn({ error: error.message }, "Redis connection trouble; waiting for it");
  };
  const redis = connect(o.redisUrl, "daemon", onError);
  const eventsConnection = connect(o.redisUrl, "daemon-events", onError);
  const queue = openQueue(redis);
  const events = openQueueEvents(eventsConnection);
  queue.on("error", onError);
  events.on("error", onError);
  const ready: string[] = [];
  const queued = new Set<string>();
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const clock = o.clock ?? systemClock;
  // Redis away past the limit: every wait below ends, and the batch fails with why (the run pauses, exit 75).
  const watch = watchRedis(redis, {
    outageMs: o.outageMs ?? 5 * 60_000,
    clock,
    onOutage: (error) => {
      log.error({ err: error.message }, error.message);
      poke();
      redis.disconnect();
      eventsConnection.disconnect();
    },
    describe: (ms) =>
      `Redis at redis_url ${redisWhere(o.redisUrl)} did not answer for ${Math.round(ms / 1000)}s${lastError ? ` (${lastError})` : ""}; the run pauses, and resumes once Redis answers (check that redis-server runs there)`,
  });
  const markReady = (jobId: string) => {
    if (!pending.has(jobId) || queued.has(jobId)) return;
    queued.add(jobId);
    ready.push(jobId);
    poke();
  };
  let stalled = 0;
  events.on("completed", ({ jobId }) => markReady(jobId));
  events.on("failed", ({ jobId }) => markReady(jobId));
  events.on("stalled", ({ jobId }) => {
    if (!pending.has(jobId)) return;
    stalled += 1;
    log.warn({ stalled }, "a worker stopped renewing a job's lock; the job runs again on another worker");
  });
  const onAbort = () => poke();
  signal?.addEventListener("abort", onAbort);

  const dataOf = (key: Key): TaskJobData => ({
    run,
    iteration: batch.iteration,
    agentHash: batch.agentHash,
    agentExt: extname(batch.agentFile) || ".ts",
    agentName: batch.agentFile,
    split: batch.split,
    taskRef: taskRefOf(batch.split, key.taskId),
    trial: key.trial,
    versions: o.versions,
    model: o.model,
    timeoutMs: o.timeoutMs,
  });
  const add = (ids: string[]) =>
    queue.addBulk(
      ids.map((jobId) => ({
        name: batch.split,
        data: dataOf(pending.get(jobId)!),
        opts: {
          jobId,
          attempts: o.attempts ?? 3,
          backoff: { type: "exponential", delay: 1000 },
          // The daemon removes each job once journaled; these only bound what a daemon that never returns leaves.
          removeOnComplete: { age: KEEP_S },
          removeOnFail: { age: KEEP_S },
        },
      })),
    );

  const refusals = new Set<string>();
  const sweep = async () => {
    const missing: string[] = [];
    // All at once: the requests share the connection's round trips.
    await Promise.all(
      [...pending.keys()].map(async (jobId) => {
        const job = await queue.getJob(jobId);
        if (!job) missing.push(jobId);
        else if (job.finishedOn) markReady(jobId);
      }),
    );
    // Not in Redis and not journaled (Redis lost it, or it was withdrawn): add it again.
    if (missing.length > 0) await add(missing);
    const workers = await readHealth(redis, clock.now());
    for (const w of workers) {
      if (w.refused && !refusals.has(w.id)) {
        refusals.add(w.id);
        log.error({ worker: w.id, host: w.host }, `worker ${w.id} ${w.refused}`);
      }
    }
    // Paid calls the workers reported: the loop collects them into the journal.
    if ((await reportedCount(redis, run)) > 0) poke();
    if (o.healthFile) {
      const counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
      const health: QueueHealth = {
        at: clock.now(),
        split: batch.split,
        done: total - pending.size,
        total,
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        stalled,
        workers,
      };
      writeFileSync(o.healthFile, `${JSON.stringify(health, null, 2)}\n`);
    }
  };

  let timer: NodeJS.Timeout | null = null;
  const spent = new BatchSpend();
  // Bounded by the outage watch: a command Redis never answers waits in ioredis's queue for ever.
  const collectReported = () => reportedSpend(redis, run, batch, spent, watch.until);
  try {
    await watch.until(events.waitUntilReady());
    // What a killed daemon's workers paid for after it died is journaled before anything new runs.
    yield* collectReported();
    await watch.until(setRunBudget(redis, run, batch.budgetUsd));
    await watch.until(putAgentFile(redis, readFileSync(batch.agentFile)));
    await watch.until(add([...pending.keys()]));
    await watch.until(sweep());
    timer = setInterval(() => {
      sweep().catch((error: unknown) => log.warn({ error: errorMessage(error) }, "queue sweep failed; retrying"));
    }, o.sweepMs ?? 2000);
    while (pending.size > 0) {
      if (watch.failure()) throw watch.failure();
      if (signal?.aborted)
        throw new AbortedError("benchmark run aborted; its jobs stay in Redis and are collected on resume");
      yield* collectReported();
      if (ready.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      // Every job reported finished since the last look, fetched together rather than one round trip at a time.
      const ids = ready.splice(0);
      for (const jobId of ids) queued.delete(jobId);
      const finished = (
        await Promise.all(
          ids.map(async (jobId) => {
            const key = pending.get(jobId);
            if (!key) return null;
            const job = (await queue.getJob(jobId)) as Job<TaskJobData, TaskJobResult> | undefined;
            if (!job?.finishedOn) return null;
            const state = await job.getState();
            if (state !== "completed" && state !== "failed") return null;
            return { jobId, key, job, state };
          }),
        )
      ).filter((f) => f !== null);
      for (const f of finished) {
        const loadError = f.state === "completed" ? parseResult(f.job.returnvalue)?.loadError : undefined;
        if (!loadError) continue;
        // As a local run: one clear error for the whole batch, not one failure per task.
        await f.job.remove().catch(() => {});
        await withdraw(queue, [...pending.keys()]);
        throw new HarnessError("AGENT_LOAD_FAILED", loadError);
      }
      if (finished.length === 0) continue;
      const items = finished.map((f) => outcomeOf(batch, f.key, f.job, f.state));
      for (const f of finished) pending.delete(f.jobId);
      for (const item of items) spent.add(item.llmCalls);
      // The runner journals the group before it asks for the next one; only then are its jobs acknowledged.
      yield items;
      await Promise.all(
        finished.map((f) =>
          f.job
            .remove()
            .catch((error: unknown) => log.warn({ error: errorMessage(error) }, "could not remove a finished job")),
        ),
      );
      if (batch.budgetUsd !== null && spent.usd >= batch.budgetUsd && pending.size > 0) {
        await withdraw(queue, [...pending.keys()]);
        throw new HarnessError(
          "BUDGET_EXHAUSTED",
          `budget_usd reached: $${spent.usd.toFixed(4)} spent by the agent under test in this run, over the $${batch.budgetUsd.toFixed(4)} left; raise budget_usd to continue`,
        );
      }
    }
    yield* collectReported();
    // The batch's last word for status: every task done, and what the workers did.
    await sweep().catch(() => {});
  } catch (error) {
    // A wait cut short by the outage surfaces as "Connection is closed": the outage is the reason.
    throw watch.failure() ?? error;
  } finally {
    watch.stop();
    if (timer) clearInterval(timer);
    signal?.removeEventListener("abort", onAbort);
    for (const close of [
      () => events.close(),
      () => queue.close(),
      () => redis.quit(),
      () => eventsConnection.quit(),
    ]) {
      try {
        // Bounded: a connection Redis never answers again must not hold the daemon. Not unref'd: with nothing
        // else pending, an unref'd bound let the process end mid-await (exit 13) instead of pausing the run.
        await Promise.race([close(), new Promise((resolve) => setTimeout(resolve, 2_000))]);
      } catch {
        // closing a connection that is already gone
      }
    }
  }
}

/** What a batch spent: each paid call once, whether it came as a worker's report or with its job's result. */
class BatchSpend {
  private readonly seen = new Set<string>();
  usd = 0;

  add(calls: LlmCallRow[]): void {
    for (const c of calls) {
      if (c.callId && this.seen.has(c.callId)) continue;
      if (c.callId) this.seen.add(c.callId);
      this.usd += c.costUsd;
    }
  }
}

/** The calls workers reported as they paid them, as a group the runner journals (each once, by its id), then dropped from Redis. */
async function* reportedSpend(
  redis: Redis,
  run: string,
  batch: TaskBatch,
  spent: BatchSpend,
  until: <T>(p: Promise<T>) => Promise<T>,
): AsyncGenerator<ExecutorItem[]> {
  const { rows, read } = await until(reportedCalls(redis, run));
  if (read === 0) return;
  const calls = rows.map((c) => ({
    ...c,
    runId: batch.runId,
    iteration: c.iteration ?? batch.iteration,
    role: "agent" as const,
    response: null,
  }));
  spent.add(calls);
  if (calls.length > 0) yield [{ kind: "spend", llmCalls: calls }];
  await until(collectedCalls(redis, run, read));
}

function outcomeOf(
  batch: TaskBatch,
  key: Key,
  job: Job<TaskJobData, TaskJobResult>,
  state: "completed" | "failed",
): TaskOutcome & { deliveryId: string } {
  const isTrain = batch.split === "train";
  const deliveryId = `${job.id}@${job.finishedOn}`;
  const result = state === "completed" ? parseResult(job.returnvalue) : null;
  const tag = <T extends { runId: string | null; iteration: number | null }>(c: T): T => ({
    ...c,
    runId: batch.runId,
    iteration: batch.iteration,
  });
  if (!result) {
    const reason = state === "failed" ? job.failedReason || "the job failed" : "a worker returned a malformed result";
    return {
      kind: "task",
      taskId: key.taskId,
      trial: key.trial,
      reward: null,
      durationMs: 0,
      error: isTrain ? `queue: ${reason}` : null,
      infraClass: "queue job failed",
      events: null,
      task: null,
      answer: null,
      llmCalls: [],
      deliveryId,
    };
  }
  return {
    kind: "task",
    taskId: key.taskId,
    trial: key.trial,
    reward: result.reward,
    durationMs: result.durationMs,
    error: isTrain ? (result.error ?? null) : null,
    infraClass: result.reward === null ? (result.infraClass ?? "unknown") : null,
    events: isTrain ? ((result.events as TraceEvent[] | null | undefined) ?? null) : null,
    task: isTrain ? ((result.task as TaskOutcome["task"]) ?? null) : null,
    answer: isTrain ? (result.answer ?? null) : null,
    llmCalls: result.llmCalls.map((c) => tag({ ...c, role: "agent" as const, response: null })),
    deliveryId,
  };
}

/**
 * Pings Redis every second (one ping at a time, each bounded): a Redis that is down, or up but not answering,
 * for `outageMs` of monotonic time is an outage, reported once through `onOutage`.
 */
function watchRedis(
  redis: ReturnType<typeof connect>,
  o: { outageMs: number; clock: Clock; onOutage(error: HarnessError): void; describe(ms: number): string },
): { failure(): HarnessError | null; until<T>(p: Promise<T>): Promise<T>; stop(): void } {
  let downSince: number | null = null;
  let failure: HarnessError | null = null;
  let pinging = false;
  let fail: (error: HarnessError) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  const timer = setInterval(() => {
    if (pinging || failure) return;
    pinging = true;
    const bounded = new Promise((_, reject) => setTimeout(() => reject(new Error("no answer")), 2_000).unref());
    Promise.race([redis.ping(), bounded])
      .then(
        () => {
          downSince = null;
        },
        () => {
          const now = o.clock.monotonic();
          downSince ??= now;
          if (now - downSince < o.outageMs) return;
          failure = new HarnessError("INFRA_FAILURE", o.describe(now - downSince), { exitCode: EXIT_RESUMABLE });
          fail(failure);
          o.onOutage(failure);
        },
      )
      .finally(() => {
        pinging = false;
      });
  }, 1_000);
  timer.unref();
  return {
    failure: () => failure,
    // A wait that Redis alone can end (the queue getting ready) ends with the outage too.
    until: (p) => Promise.race([p, failed]),
    stop: () => clearInterval(timer),
  };
}

/** Removes jobs no worker has started (an active job is locked: it runs to its end and is removed later). */
async function withdraw(queue: TaskQueue, ids: string[]): Promise<void> {
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
