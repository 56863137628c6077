/**
 * A benchmark run (DESIGN §5): which tasks still need a result, the journal cache, train traces,
 * progress, the budget and the infrastructure-failure rule. Executing the tasks is an executor's job
 * (executor.ts): the local child-process pool, the command adapter's program, or a queue.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { budgetExhausted, budgetLeft, withinBudget } from "../budget.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import { errorMessage, HarnessError, UserError } from "../errors.ts";
import { pinnedSplit } from "../journal/pins.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { meanReward, passes } from "../scoring.ts";
import { editableSpecs, listEditable } from "../workspace/editable.ts";
import { paths } from "../workspace/paths.ts";
import type { Adapter } from "./adapters/types.ts";
import { createCommandExecutor } from "./command-executor.ts";
import type { TaskExecutor, TaskOutcome } from "./executor.ts";
import { allNonTransient, describeClasses } from "./failure.ts";
import { createLocalExecutor } from "./local/executor.ts";
import { type AgentModels, journaledModels, modelTargets } from "./models.ts";
import { scorerFaultCheck } from "./scorer-fault.ts";
import { type SandboxMode, sandboxSpec } from "./sealed/sandbox.ts";
import { writeTrainTrace } from "./traces.ts";
import type { BenchmarkRunner, Reward, RunRequest, RunSummary } from "./types.ts";

export const DEFAULT_INFRA_ERROR_SHARE = 0.5;

export interface RunnerOptions {
  root: string;
  config: Config;
  /** The task-result cache, the ledger, progress, and the pinned split (the split a run takes its tasks from). */
  journal: Pick<Stores, "taskResults" | "ledger" | "runs" | "pins" | "transaction">;
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

export function agentHashOf(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/**
 * The cache key of an agent: its file's hash, or, when other files are editable (config `editable`), the hash
 * of them all, name and content, so a change to a prompt file alone is a new agent too.
 */
export function agentBundleHash(agentFile: string, agentRel: string, specs: readonly string[]): string {
  const content = readFileSync(agentFile);
  if (specs.length <= 1 || !agentFile.endsWith(agentRel)) return agentHashOf(content);
  const root = agentFile.slice(0, agentFile.length - agentRel.length);
  const others = listEditable(root, specs).filter((f) => f !== agentRel);
  if (others.length === 0) return agentHashOf(content);
  const hash = createHash("sha256").update(content);
  for (const f of others) hash.update(`\u0000${f}\u0000`).update(readFileSync(join(root, f)));
  return hash.digest("hex");
}

/** Tasks of a split as the journal pins it (workspace/split.json is only its view). */
function splitTaskIds(journal: RunnerOptions["journal"], split: Split): string[] {
  const file = pinnedSplit(journal.pins);
  if (!file) throw new UserError("RUN_STATE", "the journal holds no split; run `auto-harness prepare` first");
  return split === "train" ? file.train : file.test;
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

/** The trial numbers a request asks for: one given trial, the first `trials`, or trial 0. */
function trialsOf(request: RunRequest): number[] {
  if (request.trial !== undefined) return [request.trial];
  return Array.from({ length: Math.max(1, request.trials ?? 1) }, (_, i) => i);
}

export function createRunner(options: RunnerOptions): BenchmarkRunner {
  const { root, config, journal, log, adapter } = options;
  const clock = options.clock ?? systemClock;
  const p = paths(root, undefined, (config as Partial<Config>).agent_file);
  const infraShare =
    options.infraErrorShare ??
    (config as Config & { infra_error_share?: number }).infra_error_share ??
    DEFAULT_INFRA_ERROR_SHARE;
  const executor = options.executor ?? defaultExecutor(options, clock);
  const checkScorer = options.incumbentAgent
    ? scorerFaultCheck({
        incumbent: options.incumbentAgent,
        hashOf: agentHashOf,
        executor,
        recordSpend: (calls) => journal.ledger.recordLlmCalls(calls),
      })
    : null;
  let taskList: Promise<string[]> | null = null;

  const listTasks = (): Promise<string[]> => {
    taskList ??= adapter.listTasks().catch((error: unknown) => {
      taskList = null;
      throw error;
    });
    return taskList;
  };

  /** Dollars the run may still spend (budget_usd covers the agent under test too); null: no limit. */
  const spentBy = (runId: string | null): number => (runId === null ? 0 : journal.ledger.spend(runId).totalUsd);
  const budgetError = (runId: string | null) =>
    budgetExhausted(config.budget_usd, spentBy(runId), ", the agent under test included");

  async function run(request: RunRequest): Promise<RunSummary> {
    const { split } = request;
    const isTrain = split === "train";
    const agentFile = request.agentFile ? resolve(request.agentFile) : p.agentFile;
    // Traces describe the workspace's agent; another file's run (the incumbent) leaves them alone.
    const writeTraces = isTrain && (request.writeTraces ?? request.agentFile === undefined);
    const agentHash = agentBundleHash(agentFile, p.agentRel, editableSpecs(config as Partial<Config>));
    const trials = trialsOf(request);
    const ids = [...new Set(request.taskIds ?? splitTaskIds(journal, split))];
    if (request.taskIds) {
      const known = new Set(await listTasks());
      const unknown = ids.filter((id) => !known.has(id));
      // For test, the ids themselves stay out of the message.
      if (unknown.length > 0) {
        throw new UserError(
          "USAGE",
          isTrain ? `unknown task id(s): ${unknown.join(", ")}` : `${unknown.length} unknown task id(s)`,
        );
      }
    }

    // rewards[taskId][trial]
    const rewards = new Map<string, Map<number, Reward>>(ids.map((id) => [id, new Map()]));
    let reused = 0;
    if (request.reuse ?? options.reuse ?? (config as Config & { reuse_results?: boolean }).reuse_results ?? true) {
      for (const row of journal.taskResults.taskResults(agentHash, split)) {
        // An infrastructure error is not an answer: run those again.
        if (row.reward !== null && trials.includes(row.trial) && rewards.has(row.taskId)) {
          rewards.get(row.taskId)!.set(row.trial, row.reward);
          reused += 1;
        }
      }
    }
    const toRun = trials.map((trial) => ids.filter((id) => !rewards.get(id)!.has(trial)));
    const missingCount = toRun.reduce((n, list) => n + list.length, 0);
    const total = ids.length * trials.length;
    log.info({ split, total, reused, toRun: missingCount, agentHash }, "benchmark run started");
    if (adapter.kind === "agent" && (options.sandbox ?? config.sandbox) === "none" && missingCount > 0) {
      log.warn({ split, sandbox: "none" }, "the agent under test runs unsealed (sandbox: none)");
    }
    // Counts only, for status and the live view; at most one write a second.
    let progressAt = Number.NEGATIVE_INFINITY;
    const journalProgress = (doneNow: number, etaS: number | null, force: boolean): void => {
      if (request.runId === null || (!force && clock.monotonic() - progressAt < 1000)) return;
      progressAt = clock.monotonic();
      journal.runs.putProgress({
        runId: request.runId,
        iteration: request.iteration ?? null,
        split,
        done: doneNow,
        total,
        etaS,
      });
    };
    journalProgress(reused, null, true);

    const started = clock.monotonic();
    const traceWrites: Promise<unknown>[] = [];
    let done = 0;
    let passed = [...rewards.values()].reduce((n, m) => n + [...m.values()].filter(passes).length, 0);
    const infraClasses = new Map<string, number>();
    const scorerThrew = new Set<string>();
    // Train errors may be shown (the coding agent reads them anyway); a test task's never are.
    let firstTrainError: string | null = null;

    const journalOutcome = (o: TaskOutcome): boolean =>
      journal.taskResults.putTaskResult(
        {
          agentHash,
          split,
          taskId: o.taskId,
          trial: o.trial,
          reward: o.reward,
          durationMs: o.durationMs,
          error: isTrain ? o.error : null,
          runId: request.runId,
        },
        // Journaled with the task, not one write per call.
        o.llmCalls,
        o.deliveryId,
      );

    const finish = (o: TaskOutcome): void => {
      rewards.get(o.taskId)?.set(o.trial, o.reward);
      request.onResult?.(o.taskId, o.trial, o.reward);
      if (o.reward === null) {
        const cls = o.infraClass ?? "unknown";
        infraClasses.set(cls, (infraClasses.get(cls) ?? 0) + 1);
        if (isTrain && firstTrainError === null && o.error) firstTrainError = o.error;
      }
      if (o.agentFailure === "scorer threw") scorerThrew.add(o.taskId);
      if (writeTraces && o.events !== null) {
        traceWrites.push(
          writeTrainTrace(p.tracesLatest, p.tracesBaseline, o.taskId, {
            trace: { task_id: o.taskId, task: o.task ?? null, events: o.events, answer: o.answer, error: o.error },
            result: { reward: o.reward, duration_ms: o.durationMs, error: o.error },
          }).catch((error: unknown) =>
            log.warn({ taskId: o.taskId, error: errorMessage(error) }, "could not write a train trace"),
          ),
        );
      }
      done += 1;
      if (passes(o.reward)) passed += 1;
      const elapsed = clock.monotonic() - started;
      const etaS = Math.round(((elapsed / done) * (missingCount - done)) / 1000);
      const progress = {
        split,
        done: done + reused,
        total,
        passRate: Number((passed / (done + reused)).toFixed(4)),
        etaS,
      };
      // Test tasks: counts only, no id, no content.
      request.onProgress?.(progress);
      journalProgress(progress.done, etaS, done === missingCount);
      if (isTrain) log.info({ ...progress, taskId: o.taskId, reward: o.reward }, "task finished");
      else log.info(progress, "task finished");
    };

    try {
      // Trials that need the same tasks share one batch.
      const groups = new Map<string, { taskIds: string[]; trials: number[] }>();
      toRun.forEach((list, i) => {
        if (list.length === 0) return;
        const key = list.join("\n");
        const g = groups.get(key) ?? { taskIds: list, trials: [] };
        g.trials.push(trials[i]!);
        groups.set(key, g);
      });
      for (const g of groups.values()) {
        // A run outside the loop (runId null: the CLI's benchmark and gate commands) has no budget.
        const limit = request.runId === null ? null : config.budget_usd;
        const spent = spentBy(request.runId);
        if (!withinBudget(limit, spent)) throw budgetError(request.runId);
        const budgetUsd = budgetLeft(limit, spent);
        const items = executor.run(
          {
            agentFile,
            agentHash,
            split,
            taskIds: g.taskIds,
            trials: g.trials,
            runId: request.runId,
            iteration: request.iteration ?? null,
            budgetUsd,
          },
          request.signal,
        );
        try {
          for await (const group of items) {
            // What finished together is journaled together: one fsync, not one per task.
            const fresh = journal.transaction(() =>
              group.map((item) => {
                if (item.kind === "task") return journalOutcome(item);
                // Calls of tasks that never finished (aborted, crashed) are still spend.
                journal.ledger.recordLlmCalls(item.llmCalls);
                return false;
              }),
            );
            // A second delivery of the same outcome (a queue's): journaled once, counted once.
            group.forEach((item, i) => {
              if (item.kind === "task" && fresh[i]) finish(item);
            });
          }
        } catch (error) {
          if (error instanceof HarnessError && error.code === "BUDGET_EXHAUSTED") throw budgetError(request.runId);
          throw error;
        }
      }
      // An answer that broke the scorer: the agent's 0, unless the incumbent's breaks it too.
      const limit = request.runId === null ? null : config.budget_usd;
      const ran = { agentFile, agentHash, split, runId: request.runId, iteration: request.iteration ?? null };
      await checkScorer?.(
        [...scorerThrew],
        { ...ran, budgetUsd: budgetLeft(limit, spentBy(request.runId)) },
        request.signal,
      );
    } finally {
      await Promise.all(traceWrites);
    }

    // A task's result: its one trial, or the mean of its trials' rewards.
    const results: Record<string, Reward> = {};
    for (const id of ids) {
      const values = trials.map((t) => rewards.get(id)!.get(t) ?? null);
      results[id] = trials.length === 1 ? values[0]! : meanReward(Object.fromEntries(values.map((v, i) => [i, v])));
    }
    const nulls = ids.filter((id) => results[id] === null).length;
    const score = meanReward(results);
    const summary: RunSummary = {
      split,
      agentHash,
      results,
      score,
      passed: ids.filter((id) => passes(results[id])).length,
      total: ids.length,
      infraErrors: nulls,
      reused,
    };
    const classes = describeClasses(infraClasses);
    log.info(
      {
        split,
        score,
        passed: summary.passed,
        total: summary.total,
        infraErrors: nulls,
        ...(nulls ? { infraClasses: Object.fromEntries(infraClasses) } : {}),
        reused,
      },
      "benchmark run finished",
    );
    if (ids.length > 0 && nulls / ids.length > (request.infraErrorShare ?? infraShare)) {
      const what = `${nulls} of ${ids.length} ${split} tasks could not run (infrastructure errors: ${classes}; limit ${Math.round(infraShare * 100)}%)`;
      if (allNonTransient(infraClasses)) {
        // A refused key or an unknown model does not heal with time: fail now instead of pausing for ever.
        throw new HarnessError(
          "LLM_REJECTED",
          `${what}; the API refuses the agent's calls: check ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL and agent_model`,
        );
      }
      const sample = firstTrainError as string | null;
      const first = sample ? `\nfirst error: ${sample.slice(0, 1200)}` : "";
      throw new HarnessError("INFRA_FAILURE", `${what}; not charged to the agent${first}`);
    }
    return summary;
  }

  return { listTasks, run };
}
