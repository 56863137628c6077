/**
 * `auto-harness worker`: takes task jobs from the queue and runs each in this machine's own sandboxed agent
 * pool, exactly as the daemon would run it locally, then hands back the outcome (for test jobs the reward only).
 */
import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import type { TaskOutcome } from "../benchmark/executor.ts";
import { type Clock, systemClock } from "../clock.ts";
import { errorMessage, HarnessError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { writeFileAtomic } from "../workspace/files.ts";
import {
  hashTaskId,
  resultForSplit,
  runIdOf,
  type TaskJobData,
  type TaskJobResult,
  type Versions,
  versionMismatch,
} from "./jobs.ts";
import type { LocalTasks } from "./local-tasks.ts";
import {
  connect,
  DelayedError,
  getAgentFile,
  type Job,
  openWorker,
  removeHealth,
  reportHealth,
  UnrecoverableError,
  type WorkerHealth,
} from "./queue.ts";

export interface WorkerProcessOptions {
  redisUrl: string;
  concurrency: number;
  /** Seconds a silent worker keeps its jobs before another takes them over (BullMQ's lock). */
  lockTimeoutS: number;
  versions: Versions;
  /** Where fetched agent files are kept, one folder per hash. */
  cacheDir: string;
  local: LocalTasks;
  log: Logger;
  id?: string;
  clock?: Clock;
}

export interface RunningWorker {
  id: string;
  /** Resolves with the exit code: 0 after close(), 2 after refusing a job. */
  finished: Promise<number>;
  close(): Promise<void>;
}

/** What a worker's job handling, health reports and shutdown share. */
interface WorkerState {
  id: string;
  opts: WorkerProcessOptions;
  clock: Clock;
  redis: Redis;
  blocking: Redis;
  health: WorkerHealth;
  /** Milliseconds of the jobs done, for the mean. */
  totalMs: number;
  agentFiles: Map<string, Promise<string>>;
  testRefs: Promise<Map<string, string>> | null;
  exitCode: number;
  stopping: Promise<void> | null;
  worker: ReturnType<typeof openWorker> | null;
  beat: NodeJS.Timeout | null;
}

export async function startWorker(opts: WorkerProcessOptions): Promise<RunningWorker> {
  const id = opts.id ?? `${hostname()}-${process.pid}`;
  const clock = opts.clock ?? systemClock;
  const { log } = opts;
  let lastError = "";
  const onError = (error: Error) => {
    if (error.message === lastError) return;
    lastError = error.message;
    log.warn({ error: error.message }, "Redis connection trouble; waiting for it");
  };
  const s: WorkerState = {
    id,
    opts,
    clock,
    redis: connect(opts.redisUrl, `worker-${id}`, onError),
    blocking: connect(opts.redisUrl, `worker-${id}-jobs`, onError),
    health: {
      id,
      host: hostname(),
      pid: process.pid,
      concurrency: opts.concurrency,
      running: 0,
      done: 0,
      failed: 0,
      meanTaskMs: null,
      startedAt: clock.now(),
      lastSeen: clock.now(),
      versions: opts.versions,
      refused: null,
    },
    totalMs: 0,
    agentFiles: new Map(),
    testRefs: null,
    exitCode: 0,
    stopping: null,
    worker: null,
    beat: null,
  };
  const worker = openWorker(s.blocking, (job, token) => processJob(s, job, token), {
    concurrency: opts.concurrency,
    lockDuration: opts.lockTimeoutS * 1000,
    stalledInterval: Math.max(500, Math.round((opts.lockTimeoutS * 1000) / 2)),
    maxStalledCount: 2,
    name: id,
  });
  s.worker = worker;
  worker.on("error", onError);
  const beat = setInterval(() => publish(s), 1000);
  s.beat = beat;
  beat.unref();
  publish(s);
  const running = worker.run();
  log.info({ worker: id, concurrency: opts.concurrency, versions: opts.versions }, "worker started");
  const finished = running.then(
    async () => {
      await stopWorker(s, 0);
      return s.exitCode;
    },
    async (error: unknown) => {
      log.error({ error: errorMessage(error) }, "worker stopped on an error");
      await stopWorker(s, 1);
      return s.exitCode;
    },
  );
  return { id, finished, close: () => stopWorker(s, 0) };
}

function agentFileFor(s: WorkerState, hash: string, ext: string): Promise<string> {
  let file = s.agentFiles.get(hash);
  if (!file) {
    file = getAgentFile(s.redis, hash).then((content) => {
      const dir = join(s.opts.cacheDir, hash);
      mkdirSync(dir, { recursive: true });
      // The extension tells the sandbox which runtime loads it (TypeScript or Python).
      const path = join(dir, `agent${/^\.[a-z]{1,4}$/.test(ext) ? ext : ".ts"}`);
      // Workers sharing an experiment directory share this cache: another one must never read a half-written file.
      writeFileAtomic(path, content);
      return path;
    });
    file.catch(() => s.agentFiles.delete(hash));
    s.agentFiles.set(hash, file);
  }
  return file;
}

/** A test job names its task by hash only: find it among this benchmark's own ids. */
async function taskIdOf(s: WorkerState, data: TaskJobData): Promise<string | null> {
  if (data.split === "train") return data.taskRef;
  s.testRefs ??= s.opts.local.listTasks().then((ids) => new Map(ids.map((t) => [hashTaskId(t), t])));
  return (await s.testRefs).get(data.taskRef) ?? null;
}

function publish(s: WorkerState): void {
  s.health.lastSeen = s.clock.now();
  reportHealth(s.redis, s.health).catch(() => {});
}

function stopWorker(s: WorkerState, code: number): Promise<void> {
  s.exitCode = Math.max(s.exitCode, code);
  s.stopping ??= (async () => {
    if (s.beat) clearInterval(s.beat);
    for (const step of [
      () => s.worker?.close(),
      () => s.opts.local.close(),
      async () => {
        if (s.health.refused) publish(s);
        else await removeHealth(s.redis, s.id);
      },
      () => s.redis.quit(),
      () => s.blocking.quit(),
    ]) {
      try {
        await step();
      } catch (error) {
        s.opts.log.warn({ error: errorMessage(error) }, "worker shutdown step failed");
      }
    }
  })();
  return s.stopping;
}

async function processJob(
  s: WorkerState,
  job: Job<TaskJobData, TaskJobResult>,
  token?: string,
): Promise<TaskJobResult> {
  const { opts, health, clock, id } = s;
  const { log, local } = opts;
  const data = job.data;
  const refusal = health.refused ?? versionMismatch(data.versions, opts.versions);
  if (refusal) {
    // Handed back for a worker with the daemon's versions; this one takes no more jobs.
    if (!health.refused) {
      health.refused = refusal;
      log.error({ jobVersions: data.versions, workerVersions: opts.versions }, refusal);
      publish(s);
      await job.log(`worker ${id} ${refusal}`).catch(() => {});
      setImmediate(() => void stopWorker(s, 2));
    }
    await job.moveToDelayed(clock.now() + 1000, token);
    throw new DelayedError();
  }
  health.running += 1;
  publish(s);
  const started = clock.monotonic();
  try {
    const taskId = await taskIdOf(s, data);
    if (taskId === null)
      throw new UnrecoverableError("the task is not in this worker's benchmark (its versions agree: a bug)");
    const agentFile = await agentFileFor(s, data.agentHash, data.agentExt ?? ".ts");
    let outcome: TaskOutcome;
    try {
      outcome = await local.run({
        agentFile,
        agentHash: data.agentHash,
        split: data.split,
        taskId,
        trial: data.trial,
        model: data.model,
        timeoutMs: data.timeoutMs,
        runId: runIdOf(data.run),
        iteration: data.iteration ?? null,
      });
    } catch (error) {
      // The agent file does not load: the daemon fails the whole batch with this reason, as a local run does.
      if (error instanceof HarnessError && error.code === "AGENT_LOAD_FAILED") {
        // Name the file as the daemon's operator knows it, not by this worker's cache path.
        const cached = new RegExp(`\\S*${data.agentHash}/agent\\.\\w+`, "g");
        const loadError = error.message.replace(cached, data.agentName ?? "the agent file");
        return { reward: null, durationMs: 0, llmCalls: [], worker: id, loadError };
      }
      throw error;
    }
    health.done += 1;
    s.totalMs += clock.monotonic() - started;
    health.meanTaskMs = Math.round(s.totalMs / health.done);
    if (data.split === "train") log.info({ taskId, reward: outcome.reward }, "task finished");
    else log.info({ split: "test" }, "task finished");
    return resultForSplit(data.split, {
      reward: outcome.reward,
      durationMs: outcome.durationMs,
      llmCalls: outcome.llmCalls,
      worker: id,
      infraClass: outcome.infraClass ?? null,
      error: outcome.error,
      events: outcome.events,
      task: outcome.task ?? null,
      answer: outcome.answer,
    });
  } catch (error) {
    health.failed += 1;
    // A test job's error could quote its task: only train errors are kept.
    if (data.split === "train") throw error;
    throw new Error("the task could not run on this worker (details withheld: test split)");
  } finally {
    health.running -= 1;
    publish(s);
  }
}
