/**
 * The benchmark runner (DESIGN §5): it resolves once what every run shares (the executor, the agent's models,
 * the scorer check); a run's phases (the tasks still needing a result, the journal cache, train traces,
 * progress, the budget, the infrastructure-failure rule) are in run.ts. Executing the tasks is an executor's
 * job (executor.ts): the local child-process pool, the command adapter's program, or a queue.
 */
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import { paths } from "../workspace/paths.ts";
import type { Adapter } from "./adapters/types.ts";
import { agentHashOf } from "./agent-hash.ts";
import { createCommandExecutor } from "./command-executor.ts";
import type { TaskExecutor } from "./executor.ts";
import { createLocalExecutor } from "./local/executor.ts";
import { type AgentModels, journaledModels, modelTargets } from "./models.ts";
import { type RunContext, type RunJournal, runBenchmark } from "./run.ts";
import { scorerFaultCheck } from "./scorer-fault.ts";
import { type SandboxMode, sandboxSpec } from "./sealed/sandbox.ts";
import type { BenchmarkRunner } from "./types.ts";

export const DEFAULT_INFRA_ERROR_SHARE = 0.5;

export interface RunnerOptions {
  root: string;
  config: Config;
  /** The task-result cache, the ledger, progress, and the pinned split (the split a run takes its tasks from). */
  journal: RunJournal;
  log: Logger;
  adapter: Adapter;
  clock?: Clock;
  /** Executes the batches (default: the local pool for agent adapters, the command for command adapters). */
  executor?: TaskExecutor;
  /** Share of a run's tasks that may end in an infrastructure error before the run fails (default config or 0.5). */
  infraErrorShare?: number;
  /** Reuse journaled results of the same agent hash (default true). */
  reuse?: boolean;
  /** Type-check the agent with tsc before running it (default true); a load is always checked. */
  typeCheck?: boolean;
  /** The environment the providers' base URLs and keys are read from (default: the harness's own). */
  agentEnv?: NodeJS.ProcessEnv;
  /** The built-in `anthropic` provider's endpoint and key (default ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY). */
  agentBaseURL?: string;
  agentApiKey?: string;
  /** The agent's models (default: the gateway over the config's providers, journaling each paid call). */
  models?: AgentModels;
  /** The SDK's own retries inside the agent's client (default 2). */
  agentMaxRetries?: number;
  /** How often the child proves its event loop is alive (default 250 ms). */
  heartbeatMs?: number;
  /** Overrides config.sandbox. */
  sandbox?: SandboxMode;
  /** Keep a fresh agent process started between runs (default true). */
  warmSpare?: boolean;
  /**
   * The incumbent's agent file content (the last accepted version): when the scorer throws on an answer, the
   * incumbent answers the same task, and a scorer that throws on both is a benchmark bug (scorer-fault.ts).
   */
  incumbentAgent?: () => Promise<string | null>;
}

function defaultExecutor(options: RunnerOptions, clock: Clock): TaskExecutor {
  const { adapter, config, log, root } = options;
  const p = paths(root);
  if (adapter.kind === "command") {
    return createCommandExecutor({
      adapter,
      clock,
      traces: { latest: p.tracesLatest, baseline: p.tracesBaseline },
      models: options.models ?? runnerModels(options, clock),
    });
  }
  return createLocalExecutor({
    adapter,
    clock,
    root,
    model: config.agent_model,
    concurrency: config.max_concurrency,
    timeoutMs: config.per_task_timeout * 1000,
    models: options.models ?? runnerModels(options, clock),
    sandbox: sandboxSpec(config, options.sandbox, root),
    ...(options.warmSpare === undefined ? {} : { warmSpare: options.warmSpare }),
    maxRetries: options.agentMaxRetries ?? 2,
    heartbeatMs: options.heartbeatMs ?? 250,
    typeCheck: options.typeCheck ?? true,
    warn: (obj, msg) => log.warn(obj, msg),
  });
}

/** The gateway over the config's models, with the runner's overrides of the `anthropic` provider. */
function runnerModels(options: RunnerOptions, clock: Clock): AgentModels {
  const env: NodeJS.ProcessEnv = {
    ...(options.agentEnv ?? process.env),
    ...(options.agentBaseURL ? { ANTHROPIC_BASE_URL: options.agentBaseURL } : {}),
    ...(options.agentApiKey ? { ANTHROPIC_API_KEY: options.agentApiKey } : {}),
  };
  return journaledModels({
    targets: modelTargets(options.config, env),
    clock,
    ledger: options.journal.ledger,
    budgetUsd: options.config.budget_usd,
    log: options.log,
  });
}

export function createRunner(options: RunnerOptions): BenchmarkRunner {
  const { config, journal, adapter } = options;
  const clock = options.clock ?? systemClock;
  const executor = options.executor ?? defaultExecutor(options, clock);
  let taskList: Promise<string[]> | null = null;

  const listTasks = (): Promise<string[]> => {
    taskList ??= adapter.listTasks().catch((error: unknown) => {
      taskList = null;
      throw error;
    });
    return taskList;
  };

  const ctx: RunContext = {
    config,
    journal,
    log: options.log,
    adapter,
    sandbox: options.sandbox,
    reuse: options.reuse,
    clock,
    p: paths(options.root, undefined, (config as Partial<Config>).agent_file),
    infraShare:
      options.infraErrorShare ??
      (config as Config & { infra_error_share?: number }).infra_error_share ??
      DEFAULT_INFRA_ERROR_SHARE,
    executor,
    checkScorer: options.incumbentAgent
      ? scorerFaultCheck({
          incumbent: options.incumbentAgent,
          hashOf: agentHashOf,
          executor,
          recordSpend: (calls) => journal.ledger.recordLlmCalls(calls),
        })
      : null,
    listTasks,
  };
  return { listTasks, run: (request) => runBenchmark(ctx, request) };
}
