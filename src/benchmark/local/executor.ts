/**
 * The local executor: runs a batch's tasks in sealed agent processes on this machine (../sealed/), up to
 * `concurrency` at once, and yields the outcomes. Everything that decides a reward happens here, in the
 * harness: the benchmark's env and its tools, the model calls (the gateway), the scorer on the harness's
 * own copy of the env's state, and the call on whose failure it was.
 */
import { readFileSync } from "node:fs";
import type { Clock } from "../../clock.ts";
import { errorMessage, HarnessError } from "../../errors.ts";
import type { AgentAdapter, TaskSpec } from "../adapters/types.ts";
import { type ExecutorItem, ItemQueue, type TaskBatch, type TaskExecutor } from "../executor.ts";
import type { AgentModels } from "../models.ts";
import { startAgentProcess } from "../sealed/agent-process.ts";
import { checkAgentStatic } from "../sealed/load-check.ts";
import { type AgentLanguage, languageOf, type SandboxMode, type SandboxSpec, specOf } from "../sealed/sandbox.ts";
import { importTsModule } from "../ts-module.ts";
import { AgentPool } from "./pool.ts";
import { keepSpareAgentProcess, takeAgentProcess } from "./spares.ts";
import type { EnvFactory, Job } from "./task.ts";

export interface LocalExecutorOptions {
  adapter: AgentAdapter;
  clock: Clock;
  model: string;
  concurrency: number;
  /** Per task, from reaching a loaded agent. */
  timeoutMs: number;
  /** Where the agent's model calls go (the gateway); the key never enters the agent's process. */
  models: AgentModels;
  /** The SDK's own retries inside the agent's client. */
  maxRetries: number;
  /** How often the child proves its event loop is alive. */
  heartbeatMs: number;
  /** Type-check the agent before running it; a load is always checked. */
  typeCheck: boolean;
  /** The seal: a bare mode takes the default user and limits (sandboxSpec gives the config's). */
  sandbox: SandboxMode | SandboxSpec;
  /** Keep one fresh agent process started between batches, so a batch does not wait for node and the runtime. */
  warmSpare?: boolean;
  /** Experiment root, to shorten paths in messages. */
  root: string;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export function createLocalExecutor(o: LocalExecutorOptions): TaskExecutor {
  const spec = specOf(o.sandbox);
  // The gate's paired re-runs start many one-task batches of the same two files: tsc once per file.
  const checked = new Set<string>();
  const loadEnv = envLoader(o);

  return {
    run(batch, signal) {
      const q = new ItemQueue<ExecutorItem>();
      const language = languageOf(batch.agentFile);
      runBatch(o, spec, batch, q, signal, loadEnv, checked).then(
        () => q.end(),
        (error: unknown) => q.fail(error),
      );
      return {
        async *[Symbol.asyncIterator]() {
          try {
            yield* q.groups();
          } finally {
            // After a shutdown began (the signal), no spare: it would only be killed again.
            if ((o.warmSpare ?? true) && !signal?.aborted) keepSpareAgentProcess(spec, language, o.clock);
          }
        },
      };
    },
  };
}

/** The benchmark's env module, loaded once per executor (it builds each task's env in the harness). */
export function envLoader(o: LocalExecutorOptions): () => Promise<EnvFactory | null> {
  let envFactory: Promise<EnvFactory | null> | null = null;
  return () => {
    const module = o.adapter.envModule;
    envFactory ??= module
      ? importTsModule(module).then((mod) => {
          let fn = mod.default;
          if (fn && typeof fn === "object" && "default" in fn) fn = (fn as { default: unknown }).default;
          if (typeof fn !== "function") throw new Error(`${module}: the default export must be createEnv(envData)`);
          return fn as EnvFactory;
        })
      : Promise.resolve(null);
    envFactory.catch(() => {
      envFactory = null;
    });
    return envFactory;
  };
}

/** Keeps the pool open for tasks added one at a time, until the signal aborts (openLocalSession). */
export interface OpenSession {
  open(add: (taskId: string, trial: number) => Promise<void>): void;
}

export async function runBatch(
  o: LocalExecutorOptions,
  spec: SandboxSpec,
  batch: TaskBatch,
  q: ItemQueue<ExecutorItem>,
  signal: AbortSignal | undefined,
  loadEnv: () => Promise<EnvFactory | null>,
  checked: Set<string>,
  session?: OpenSession,
): Promise<void> {
  const content = readFileSync(batch.agentFile);
  const language: AgentLanguage = languageOf(batch.agentFile);
  const pool = new AgentPool(
    o,
    batch,
    content,
    q,
    {
      main: () => takeAgentProcess(spec, language, o.clock),
      fresh: () => startAgentProcess(spec, language, o.clock),
    },
    spec.limits.requestBytesPerTask,
  );
  // The child's start-up overlaps the type-check and the task loading.
  pool.warm();
  let specs: Map<string, TaskSpec>;
  let createEnv: EnvFactory | null;
  try {
    const [check, loaded, env] = await Promise.all([
      checked.has(batch.agentHash)
        ? Promise.resolve({ ok: true as const })
        : checkAgentStatic(batch.agentFile, { root: o.root, typeCheck: o.typeCheck }),
      o.adapter.loadTasks(batch.taskIds),
      loadEnv().catch((error: unknown) => {
        throw new HarnessError("INFRA_FAILURE", `benchmark env ${o.adapter.envModule}: ${errorMessage(error)}`);
      }),
    ]);
    // Syntax and type errors: one clear error for the whole run, not one failure per task.
    if (!check.ok) throw new HarnessError("AGENT_LOAD_FAILED", check.message);
    checked.add(batch.agentHash);
    specs = loaded;
    createEnv = env;
  } catch (error) {
    pool.close();
    throw error;
  }
  const jobs: Job[] = [];
  let n = 0;
  for (const trial of batch.trials) {
    for (const id of batch.taskIds)
      jobs.push({ id: `j${++n}`, spec: specs.get(id)!, trial, attempt: 0, isolate: false });
  }
  if (session) {
    pool.hold();
    session.open(async (taskId, trial) => {
      const spec = (await o.adapter.loadTasks([taskId])).get(taskId);
      if (!spec) throw new HarnessError("INFRA_FAILURE", "the benchmark has no such task");
      pool.add({ id: `j${++n}`, spec, trial, attempt: 0, isolate: false });
    });
  }
  await pool.run(jobs, createEnv, signal);
}
