/**
 * How a worker runs one task on its own machine: the same sandboxed pool, timeouts and scoring as a local
 * batch. An agent pool stays open per (agent version, split) while jobs keep coming, so a worker pays
 * the agent process's start-up once, not once a task; an idle pool is closed after a minute.
 */
import type { Adapter } from "../benchmark/adapters/types.ts";
import { createCommandExecutor } from "../benchmark/command-executor.ts";
import type { TaskOutcome } from "../benchmark/executor.ts";
import { type LocalSession, openLocalSession } from "../benchmark/local/session.ts";
import { type AgentModels, gatewayModels, modelTargets } from "../benchmark/models.ts";
import { sandboxSpec } from "../benchmark/sealed/sandbox.ts";
import { systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import { HarnessError } from "../errors.ts";
import { createRunBudget } from "../gateway/reservations.ts";
import type { Logger } from "../log.ts";

export interface LocalTaskRequest {
  agentFile: string;
  agentHash: string;
  split: Split;
  taskId: string;
  trial: number;
  model: string;
  timeoutMs: number;
  /** The daemon's run and iteration: the calls the task pays for are theirs. */
  runId?: string | null;
  iteration?: number | null;
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
  /** The agent's models (default: the gateway over the config's providers, nothing recorded but the outcome's calls). */
  models?: AgentModels;
}

/** Calls metered into each outcome only, with no budget of their own (the daemon checks its budget per batch). */
function outcomeModels(o: LocalTasksOptions): AgentModels {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(o.agentBaseURL ? { ANTHROPIC_BASE_URL: o.agentBaseURL } : {}),
    ...(o.agentApiKey ? { ANTHROPIC_API_KEY: o.agentApiKey } : {}),
  };
  const unlimited = createRunBudget(null);
  return gatewayModels({
    targets: modelTargets(o.config, env),
    clock: systemClock,
    budgetFor: () => unlimited,
    record: () => {},
    log: o.log,
  });
}

export function createLocalTasks(o: LocalTasksOptions): LocalTasks {
  const { adapter, log } = o;
  const sessions = new Map<string, { session: LocalSession; lastUsed: number; active: number }>();
  const checked = new Set<string>();
  const idleMs = o.idleMs ?? 60_000;
  const models = o.models ?? outcomeModels(o);
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
    const key = [r.agentHash, r.split, r.model, r.timeoutMs, r.runId, r.iteration].join("|");
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
          models,
          sandbox: sandboxSpec(o.config, undefined, o.root),
          maxRetries: 2,
          heartbeatMs: 250,
          typeCheck: true,
          warn: (obj, msg) => log.warn(r.split === "train" ? obj : { reason: obj.kind }, msg),
        },
        {
          agentFile: r.agentFile,
          agentHash: r.agentHash,
          split: r.split,
          runId: r.runId ?? null,
          iteration: r.iteration ?? null,
        },
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
      const executor = createCommandExecutor({ adapter, clock: systemClock, traces: null, models });
      for await (const items of executor.run({
        agentFile: r.agentFile,
        agentHash: r.agentHash,
        split: r.split,
        taskIds: [r.taskId],
        trials: [r.trial],
        runId: r.runId ?? null,
        iteration: r.iteration ?? null,
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
