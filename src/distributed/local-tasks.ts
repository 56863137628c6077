/**
 * How a worker runs one task on its own machine: the same sandboxed pool, timeouts and scoring as a local
 * batch. An agent pool stays open per (agent version, split) while jobs keep coming, so a worker pays
 * the agent process's start-up once, not once a task; an idle pool is closed after a minute.
 */
import type { Adapter } from "../benchmark/adapters/types.ts";
import { createCommandExecutor } from "../benchmark/command-executor.ts";
import type { TaskOutcome } from "../benchmark/executor.ts";
import { type LocalSession, openLocalSession } from "../benchmark/local-executor.ts";
import { systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import { HarnessError } from "../errors.ts";
import type { Logger } from "../log.ts";

export interface LocalTaskRequest {
  agentFile: string;
  agentHash: string;
  split: Split;
  taskId: string;
  trial: number;
  model: string;
  timeoutMs: number;
}

/** This machine's way of running one task. */
export interface LocalTasks {
  listTasks(): Promise<string[]>;
  run(request: LocalTaskRequest): Promise<TaskOutcome>;
  close(): Promise<void>;
}

export interface LocalTasksOptions {
  root: string;
  config: Config;
  adapter: Adapter;
  /** Tasks one agent pool runs at once: the worker's concurrency. */
  concurrency: number;
  log: Logger;
  /** Close an agent pool no job has used for this long (default 60 s). */
  idleMs?: number;
  agentBaseURL?: string | null;
  agentApiKey?: string | null;
}

export function createLocalTasks(o: LocalTasksOptions): LocalTasks {
  const { adapter, log } = o;
  const sessions = new Map<string, { session: LocalSession; lastUsed: number; active: number }>();
  const checked = new Set<string>();
  const idleMs = o.idleMs ?? 60_000;
  const sweeper = setInterval(
    () => {
      const now = systemClock.monotonic();
      for (const [key, s] of sessions) {
        if (s.active === 0 && now - s.lastUsed > idleMs) {
          sessions.delete(key);
          s.session.close();
        }
      }
    },
    Math.min(idleMs, 10_000),
  );
  sweeper.unref();

  const sessionFor = (r: LocalTaskRequest) => {
    if (adapter.kind !== "agent") throw new Error("unreachable: command tasks need no pool");
    const key = [r.agentHash, r.split, r.model, r.timeoutMs].join("|");
    let s = sessions.get(key);
    if (!s) {
      const session = openLocalSession(
        {
          adapter,
          clock: systemClock,
          root: o.root,
          model: r.model,
          concurrency: o.concurrency,
          timeoutMs: r.timeoutMs,
          upstream: {
            baseURL: o.agentBaseURL ?? process.env.ANTHROPIC_BASE_URL ?? null,
            apiKey: o.agentApiKey ?? process.env.ANTHROPIC_API_KEY ?? null,
          },
          sandbox: o.config.sandbox,
          maxRetries: 2,
          heartbeatMs: 250,
          typeCheck: true,
          warn: (obj, msg) => log.warn(r.split === "train" ? obj : { reason: obj.kind }, msg),
        },
        { agentFile: r.agentFile, agentHash: r.agentHash, split: r.split },
        checked,
      );
      s = { session, lastUsed: systemClock.monotonic(), active: 0 };
      sessions.set(key, s);
    }
    return s;
  };

  async function run(r: LocalTaskRequest): Promise<TaskOutcome> {
    if (adapter.kind === "command") {
      // A command benchmark runs per job; its trace files stay with the command (not brought back).
      const executor = createCommandExecutor({ adapter, clock: systemClock, traces: null });
      for await (const items of executor.run({
        agentFile: r.agentFile,
        agentHash: r.agentHash,
        split: r.split,
        taskIds: [r.taskId],
        trials: [r.trial],
        runId: null,
        iteration: null,
        budgetUsd: null,
      })) {
        const outcome = items.find((item) => item.kind === "task");
        if (outcome) return outcome;
      }
      throw new HarnessError("INFRA_FAILURE", "the benchmark command gave no result for the task");
    }
    const s = sessionFor(r);
    s.active += 1;
    s.lastUsed = systemClock.monotonic();
    try {
      return await s.session.run(r.taskId, r.trial);
    } finally {
      s.active -= 1;
      s.lastUsed = systemClock.monotonic();
    }
  }

  return {
    listTasks: () => adapter.listTasks(),
    run,
    close: async () => {
      clearInterval(sweeper);
      for (const s of sessions.values()) s.session.close();
      sessions.clear();
    },
  };
}
