/**
 * One benchmark run's phases: the set-up (tasks, trials, the journal cache), the drive loop (batches within the
 * budget, outcomes journaled as they land, traces, progress), and the settling (results and the
 * infrastructure-failure rule).
 */
import { resolve } from "node:path";
import { budgetExhausted, budgetLeft, withinBudget } from "../budget.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import { errorMessage, HarnessError, UserError } from "../errors.ts";
import { pinnedSplit } from "../journal/pins.ts";
import type { Stores } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { meanReward, passes } from "../scoring.ts";
import { editableSpecs } from "../workspace/editable.ts";
import type { paths } from "../workspace/paths.ts";
import type { Adapter } from "./adapters/types.ts";
import { agentBundleHash } from "./agent-hash.ts";
import type { TaskExecutor, TaskOutcome } from "./executor.ts";
import { allNonTransient, describeClasses } from "./failure.ts";
import type { scorerFaultCheck } from "./scorer-fault.ts";
import type { SandboxMode } from "./sealed/sandbox.ts";
import { writeTrainTrace } from "./traces.ts";
import type { Reward, RunRequest, RunSummary } from "./types.ts";

/** The task-result cache, the ledger, progress, and the pinned split (the split a run takes its tasks from). */
export type RunJournal = Pick<Stores, "taskResults" | "ledger" | "runs" | "pins" | "transaction">;

/** What a runner resolves once and every run of it shares. */
export interface RunContext {
  config: Config;
  journal: RunJournal;
  log: Logger;
  adapter: Pick<Adapter, "kind">;
  /** Overrides config.sandbox. */
  sandbox: SandboxMode | undefined;
  /** Reuse journaled results of the same agent hash (default config `reuse_results`, else true). */
  reuse: boolean | undefined;
  clock: Clock;
  p: ReturnType<typeof paths>;
  infraShare: number;
  executor: TaskExecutor;
  checkScorer: ReturnType<typeof scorerFaultCheck> | null;
  listTasks: () => Promise<string[]>;
}

/** A run's tasks and trials, the journaled results it reuses and the (task, trial) pairs it still needs. */
interface PlannedRun {
  request: RunRequest;
  split: Split;
  isTrain: boolean;
  agentFile: string;
  writeTraces: boolean;
  agentHash: string;
  trials: number[];
  ids: string[];
  /** rewards[taskId][trial] */
  rewards: Map<string, Map<number, Reward>>;
  reused: number;
  toRun: string[][];
  missingCount: number;
  total: number;
}

/** What the drive loop counts as outcomes land. */
interface RunTally {
  started: number;
  progressAt: number;
  done: number;
  passed: number;
  infraClasses: Map<string, number>;
  scorerThrew: Set<string>;
  /** Train errors may be shown (the coding agent reads them anyway); a test task's never are. */
  firstTrainError: string | null;
  traceWrites: Promise<unknown>[];
}

/** Dollars the run has spent (budget_usd covers the agent under test too). */
function spentBy(ctx: RunContext, runId: string | null): number {
  return runId === null ? 0 : ctx.journal.ledger.spend(runId).totalUsd;
}

function budgetError(ctx: RunContext, runId: string | null): HarnessError {
  return budgetExhausted(ctx.config.budget_usd, spentBy(ctx, runId), ", the agent under test included");
}

export async function runBenchmark(ctx: RunContext, request: RunRequest): Promise<RunSummary> {
  const run = await planRun(ctx, request);
  const tally: RunTally = {
    started: 0,
    // Counts only, for status and the live view; at most one write a second.
    progressAt: Number.NEGATIVE_INFINITY,
    done: 0,
    passed: [...run.rewards.values()].reduce((n, m) => n + [...m.values()].filter(passes).length, 0),
    infraClasses: new Map(),
    scorerThrew: new Set(),
    firstTrainError: null,
    traceWrites: [],
  };
  journalProgress(ctx, run, tally, run.reused, null, true);
  tally.started = ctx.clock.monotonic();
  try {
    await driveBatches(ctx, run, tally);
    // An answer that broke the scorer: the agent's 0, unless the incumbent's breaks it too.
    const limit = request.runId === null ? null : ctx.config.budget_usd;
    const { agentFile, agentHash, split } = run;
    const ran = { agentFile, agentHash, split, runId: request.runId, iteration: request.iteration ?? null };
    await ctx.checkScorer?.(
      [...tally.scorerThrew],
      { ...ran, budgetUsd: budgetLeft(limit, spentBy(ctx, request.runId)) },
      request.signal,
    );
  } finally {
    await Promise.all(tally.traceWrites);
  }
  return settleRun(ctx, run, tally);
}

/** The set-up: which agent, which tasks and trials, and what the journal already holds for them. */
async function planRun(ctx: RunContext, request: RunRequest): Promise<PlannedRun> {
  const { config, journal, log, adapter } = ctx;
  const { split } = request;
  const isTrain = split === "train";
  const agentFile = request.agentFile ? resolve(request.agentFile) : ctx.p.agentFile;
  // Traces describe the workspace's agent; another file's run (the incumbent) leaves them alone.
  const writeTraces = isTrain && (request.writeTraces ?? request.agentFile === undefined);
  const agentHash = agentBundleHash(agentFile, ctx.p.agentRel, editableSpecs(config as Partial<Config>));
  const trials = trialsOf(request);
  const ids = [...new Set(request.taskIds ?? splitTaskIds(journal, split))];
  if (request.taskIds) {
    const known = new Set(await ctx.listTasks());
    const unknown = ids.filter((id) => !known.has(id));
    // For test, the ids themselves stay out of the message.
    if (unknown.length > 0) {
      throw new UserError(
        "USAGE",
        isTrain ? `unknown task id(s): ${unknown.join(", ")}` : `${unknown.length} unknown task id(s)`,
      );
    }
  }

  const rewards = new Map<string, Map<number, Reward>>(ids.map((id) => [id, new Map()]));
  let reused = 0;
  if (request.reuse ?? ctx.reuse ?? (config as Config & { reuse_results?: boolean }).reuse_results ?? true) {
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
  if (adapter.kind === "agent" && (ctx.sandbox ?? config.sandbox) === "none" && missingCount > 0) {
    log.warn({ split, sandbox: "none" }, "the agent under test runs unsealed (sandbox: none)");
  }
  return {
    request,
    split,
    isTrain,
    agentFile,
    writeTraces,
    agentHash,
    trials,
    ids,
    rewards,
    reused,
    toRun,
    missingCount,
    total,
  };
}

function journalProgress(
  ctx: RunContext,
  run: PlannedRun,
  tally: RunTally,
  doneNow: number,
  etaS: number | null,
  force: boolean,
): void {
  const { request } = run;
  if (request.runId === null || (!force && ctx.clock.monotonic() - tally.progressAt < 1000)) return;
  tally.progressAt = ctx.clock.monotonic();
  ctx.journal.runs.putProgress({
    runId: request.runId,
    iteration: request.iteration ?? null,
    split: run.split,
    done: doneNow,
    total: run.total,
    etaS,
  });
}

/** The drive loop: each batch within the budget, what finished together journaled together. */
async function driveBatches(ctx: RunContext, run: PlannedRun, tally: RunTally): Promise<void> {
  const { config, journal } = ctx;
  const { request } = run;
  // Trials that need the same tasks share one batch.
  const groups = new Map<string, { taskIds: string[]; trials: number[] }>();
  run.toRun.forEach((list, i) => {
    if (list.length === 0) return;
    const key = list.join("\n");
    const g = groups.get(key) ?? { taskIds: list, trials: [] };
    g.trials.push(run.trials[i]!);
    groups.set(key, g);
  });
  for (const g of groups.values()) {
    // A run outside the loop (runId null: the CLI's benchmark and gate commands) has no budget.
    const limit = request.runId === null ? null : config.budget_usd;
    const spent = spentBy(ctx, request.runId);
    if (!withinBudget(limit, spent)) throw budgetError(ctx, request.runId);
    const budgetUsd = budgetLeft(limit, spent);
    const items = ctx.executor.run(
      {
        agentFile: run.agentFile,
        agentHash: run.agentHash,
        split: run.split,
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
            if (item.kind === "task") return journalOutcome(ctx, run, item);
            // Calls of tasks that never finished (aborted, crashed) are still spend.
            journal.ledger.recordLlmCalls(item.llmCalls);
            return false;
          }),
        );
        // A second delivery of the same outcome (a queue's): journaled once, counted once.
        group.forEach((item, i) => {
          if (item.kind === "task" && fresh[i]) finishTask(ctx, run, tally, item);
        });
      }
    } catch (error) {
      if (error instanceof HarnessError && error.code === "BUDGET_EXHAUSTED") throw budgetError(ctx, request.runId);
      throw error;
    }
  }
}

function journalOutcome(ctx: RunContext, run: PlannedRun, o: TaskOutcome): boolean {
  return ctx.journal.taskResults.putTaskResult(
    {
      agentHash: run.agentHash,
      split: run.split,
      taskId: o.taskId,
      trial: o.trial,
      reward: o.reward,
      durationMs: o.durationMs,
      error: run.isTrain ? o.error : null,
      runId: run.request.runId,
    },
    // Journaled with the task, not one write per call.
    o.llmCalls,
    o.deliveryId,
  );
}

function finishTask(ctx: RunContext, run: PlannedRun, tally: RunTally, o: TaskOutcome): void {
  const { log } = ctx;
  const { request, split, isTrain } = run;
  run.rewards.get(o.taskId)?.set(o.trial, o.reward);
  request.onResult?.(o.taskId, o.trial, o.reward);
  if (o.reward === null) {
    const cls = o.infraClass ?? "unknown";
    tally.infraClasses.set(cls, (tally.infraClasses.get(cls) ?? 0) + 1);
    if (isTrain && tally.firstTrainError === null && o.error) tally.firstTrainError = o.error;
  }
  if (o.agentFailure === "scorer threw") tally.scorerThrew.add(o.taskId);
  if (run.writeTraces && o.events !== null) {
    tally.traceWrites.push(
      writeTrainTrace(ctx.p.tracesLatest, ctx.p.tracesBaseline, o.taskId, {
        trace: { task_id: o.taskId, task: o.task ?? null, events: o.events, answer: o.answer, error: o.error },
        result: { reward: o.reward, duration_ms: o.durationMs, error: o.error },
      }).catch((error: unknown) =>
        log.warn({ taskId: o.taskId, error: errorMessage(error) }, "could not write a train trace"),
      ),
    );
  }
  tally.done += 1;
  if (passes(o.reward)) tally.passed += 1;
  const { done, passed } = tally;
  const elapsed = ctx.clock.monotonic() - tally.started;
  const etaS = Math.round(((elapsed / done) * (run.missingCount - done)) / 1000);
  const progress = {
    split,
    done: done + run.reused,
    total: run.total,
    passRate: Number((passed / (done + run.reused)).toFixed(4)),
    etaS,
  };
  // Test tasks: counts only, no id, no content.
  request.onProgress?.(progress);
  journalProgress(ctx, run, tally, progress.done, etaS, done === run.missingCount);
  if (isTrain) log.info({ ...progress, taskId: o.taskId, reward: o.reward }, "task finished");
  else log.info(progress, "task finished");
}

/** The settling: each task's result, the summary, and the infrastructure-failure rule. */
function settleRun(ctx: RunContext, run: PlannedRun, tally: RunTally): RunSummary {
  const { split, agentHash, ids, trials, reused, request } = run;
  const { infraClasses } = tally;
  const infraShare = ctx.infraShare;
  // A task's result: its one trial, or the mean of its trials' rewards.
  const results: Record<string, Reward> = {};
  for (const id of ids) {
    const values = trials.map((t) => run.rewards.get(id)!.get(t) ?? null);
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
  ctx.log.info(
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
    const sample = tally.firstTrainError;
    const first = sample ? `\nfirst error: ${sample.slice(0, 1200)}` : "";
    throw new HarnessError("INFRA_FAILURE", `${what}; not charged to the agent${first}`);
  }
  return summary;
}

/** Tasks of a split as the journal pins it (workspace/split.json is only its view). */
function splitTaskIds(journal: RunJournal, split: Split): string[] {
  const file = pinnedSplit(journal.pins);
  if (!file) throw new UserError("RUN_STATE", "the journal holds no split; run `auto-harness prepare` first");
  return split === "train" ? file.train : file.test;
}

/** The trial numbers a request asks for: one given trial, the first `trials`, or trial 0. */
function trialsOf(request: RunRequest): number[] {
  if (request.trial !== undefined) return [request.trial];
  return Array.from({ length: Math.max(1, request.trials ?? 1) }, (_, i) => i);
}
