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
import { AbortedError, errorMessage, HarnessError } from "../errors.ts";
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
  withdraw,
} from "./queue.ts";
import { type RedisWatch, watchRedis } from "./redis-watch.ts";

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
  const run = batch.runId ?? "adhoc";
  const pending = new Map<string, Key>();
  for (const trial of batch.trials) {
    for (const taskId of batch.taskIds) {
      const taskRef = taskRefOf(batch.split, taskId);
      pending.set(jobIdOf({ run, agentHash: batch.agentHash, split: batch.split, taskRef, trial }), { taskId, trial });
    }
  }
  if (pending.size === 0) return;
  const jobs = new QueueBatch(o, batch, run, pending, signal);
  try {
    await jobs.watch.until(jobs.events.waitUntilReady());
    // What a killed daemon's workers paid for after it died is journaled before anything new runs.
    yield* jobs.collectReported();
    await jobs.watch.until(setRunBudget(jobs.redis, run, batch.budgetUsd));
    await jobs.watch.until(putAgentFile(jobs.redis, readFileSync(batch.agentFile)));
    await jobs.watch.until(jobs.add([...pending.keys()]));
    await jobs.watch.until(jobs.sweep());
    jobs.startSweeping();
    yield* driveJobs(jobs, batch, o.log, signal);
    yield* jobs.collectReported();
    // The batch's last word for status: every task done, and what the workers did.
    await jobs.sweep().catch(() => {});
  } catch (error) {
    // A wait cut short by the outage surfaces as "Connection is closed": the outage is the reason.
    throw jobs.watch.failure() ?? error;
  } finally {
    await jobs.close();
  }
}

/** The drive loop: each group of finished jobs yielded to the runner, then acknowledged, within the budget. */
async function* driveJobs(
  jobs: QueueBatch,
  batch: TaskBatch,
  log: Logger,
  signal?: AbortSignal,
): AsyncGenerator<ExecutorItem[]> {
  const { pending, queue, spent } = jobs;
  while (pending.size > 0) {
    if (jobs.watch.failure()) throw jobs.watch.failure();
    if (signal?.aborted)
      throw new AbortedError("benchmark run aborted; its jobs stay in Redis and are collected on resume");
    yield* jobs.collectReported();
    if (jobs.ready.length === 0) {
      await jobs.nextWake();
      continue;
    }
    const finished = await jobs.takeFinished();
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
}

/** One batch's connections, its jobs not yet journaled, the sweep, and the wake-ups the drive loop waits on. */
class QueueBatch {
  readonly redis: Redis;
  readonly queue: TaskQueue;
  readonly events: ReturnType<typeof openQueueEvents>;
  readonly watch: RedisWatch;
  readonly spent = new BatchSpend();
  /** Jobs reported finished (by an event or a sweep) and not yet fetched. */
  readonly ready: string[] = [];
  private readonly eventsConnection: Redis;
  private readonly clock: Clock;
  private readonly total: number;
  private readonly queued = new Set<string>();
  private readonly refusals = new Set<string>();
  private wake: (() => void) | null = null;
  private lastError = "";
  private stalled = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly onAbort = () => this.poke();

  constructor(
    private readonly o: BullmqExecutorOptions,
    private readonly batch: TaskBatch,
    private readonly run: string,
    readonly pending: Map<string, Key>,
    private readonly signal?: AbortSignal,
  ) {
    const { log } = o;
    this.total = pending.size;
    const onError = (error: Error) => {
      // One line per distinct trouble (Redis down: every reconnect fails the same way).
      if (error.message === this.lastError) return;
      this.lastError = error.message;
      log.warn({ error: error.message }, "Redis connection trouble; waiting for it");
    };
    this.redis = connect(o.redisUrl, "daemon", onError);
    this.eventsConnection = connect(o.redisUrl, "daemon-events", onError);
    this.queue = openQueue(this.redis);
    this.events = openQueueEvents(this.eventsConnection);
    this.queue.on("error", onError);
    this.events.on("error", onError);
    this.clock = o.clock ?? systemClock;
    // Redis away past the limit: every wait below ends, and the batch fails with why (the run pauses, exit 75).
    this.watch = watchRedis(this.redis, {
      outageMs: o.outageMs ?? 5 * 60_000,
      clock: this.clock,
      onOutage: (error) => {
        log.error({ err: error.message }, error.message);
        this.poke();
        this.redis.disconnect();
        this.eventsConnection.disconnect();
      },
      describe: (ms) =>
        `Redis at redis_url ${redisWhere(o.redisUrl)} did not answer for ${Math.round(ms / 1000)}s${this.lastError ? ` (${this.lastError})` : ""}; the run pauses, and resumes once Redis answers (check that redis-server runs there)`,
    });
    this.events.on("completed", ({ jobId }) => this.markReady(jobId));
    this.events.on("failed", ({ jobId }) => this.markReady(jobId));
    this.events.on("stalled", ({ jobId }) => {
      if (!pending.has(jobId)) return;
      this.stalled += 1;
      log.warn(
        { stalled: this.stalled },
        "a worker stopped renewing a job's lock; the job runs again on another worker",
      );
    });
    signal?.addEventListener("abort", this.onAbort);
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  nextWake(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  private markReady(jobId: string): void {
    if (!this.pending.has(jobId) || this.queued.has(jobId)) return;
    this.queued.add(jobId);
    this.ready.push(jobId);
    this.poke();
  }

  private dataOf(key: Key): TaskJobData {
    const { batch, o } = this;
    return {
      run: this.run,
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
    };
  }

  add(ids: string[]) {
    return this.queue.addBulk(
      ids.map((jobId) => ({
        name: this.batch.split,
        data: this.dataOf(this.pending.get(jobId)!),
        opts: {
          jobId,
          attempts: this.o.attempts ?? 3,
          backoff: { type: "exponential", delay: 1000 },
          // The daemon removes each job once journaled; these only bound what a daemon that never returns leaves.
          removeOnComplete: { age: KEEP_S },
          removeOnFail: { age: KEEP_S },
        },
      })),
    );
  }

  async sweep(): Promise<void> {
    const { pending, queue, redis, o } = this;
    const { log } = o;
    const missing: string[] = [];
    // All at once: the requests share the connection's round trips.
    await Promise.all(
      [...pending.keys()].map(async (jobId) => {
        const job = await queue.getJob(jobId);
        if (!job) missing.push(jobId);
        else if (job.finishedOn) this.markReady(jobId);
      }),
    );
    // Not in Redis and not journaled (Redis lost it, or it was withdrawn): add it again.
    if (missing.length > 0) await this.add(missing);
    const workers = await readHealth(redis, this.clock.now());
    for (const w of workers) {
      if (w.refused && !this.refusals.has(w.id)) {
        this.refusals.add(w.id);
        log.error({ worker: w.id, host: w.host }, `worker ${w.id} ${w.refused}`);
      }
    }
    // Paid calls the workers reported: the loop collects them into the journal.
    if ((await reportedCount(redis, this.run)) > 0) this.poke();
    if (o.healthFile) {
      const counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed");
      const health: QueueHealth = {
        at: this.clock.now(),
        split: this.batch.split,
        done: this.total - pending.size,
        total: this.total,
        waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        delayed: counts.delayed ?? 0,
        stalled: this.stalled,
        workers,
      };
      writeFileSync(o.healthFile, `${JSON.stringify(health, null, 2)}\n`);
    }
  }

  startSweeping(): void {
    this.timer = setInterval(() => {
      this.sweep().catch((error: unknown) =>
        this.o.log.warn({ error: errorMessage(error) }, "queue sweep failed; retrying"),
      );
    }, this.o.sweepMs ?? 2000);
  }

  /** Bounded by the outage watch: a command Redis never answers waits in ioredis's queue for ever. */
  collectReported(): AsyncGenerator<ExecutorItem[]> {
    return reportedSpend(this.redis, this.run, this.batch, this.spent, this.watch.until);
  }

  /** Every job reported finished since the last look, fetched together rather than one round trip at a time. */
  async takeFinished() {
    const ids = this.ready.splice(0);
    for (const jobId of ids) this.queued.delete(jobId);
    return (
      await Promise.all(
        ids.map(async (jobId) => {
          const key = this.pending.get(jobId);
          if (!key) return null;
          const job = (await this.queue.getJob(jobId)) as Job<TaskJobData, TaskJobResult> | undefined;
          if (!job?.finishedOn) return null;
          const state = await job.getState();
          if (state !== "completed" && state !== "failed") return null;
          return { jobId, key, job, state };
        }),
      )
    ).filter((f) => f !== null);
  }

  async close(): Promise<void> {
    this.watch.stop();
    if (this.timer) clearInterval(this.timer);
    this.signal?.removeEventListener("abort", this.onAbort);
    for (const close of [
      () => this.events.close(),
      () => this.queue.close(),
      () => this.redis.quit(),
      () => this.eventsConnection.quit(),
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
