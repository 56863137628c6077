/**
 * The task runner around every adapter (DESIGN §5): concurrency, per-task timeouts, isolation of
 * the agent in a child process, the journal cache, train traces, progress, and the infra-failure rule.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { AbortedError, errorMessage, HarnessError, UserError } from "../errors.ts";
import type { Journal, LlmCallRow, Split } from "../journal/journal.ts";
import { costUsd } from "../llm/client.ts";
import type { Logger } from "../log.ts";
import { meanReward, passes } from "../scoring.ts";
import { readSplit } from "../workspace/files.ts";
import { paths } from "../workspace/paths.ts";
import type { Adapter, AgentAdapter, CommandAdapter, TaskSpec } from "./adapters/types.ts";
import { rewardOf } from "./adapters/types.ts";
import { checkAgentStatic } from "./load-check.ts";
import type { ChildInit, ChildOutcome, FromChild, LlmUsageReport, ToChild, TraceEvent } from "./protocol.ts";
import { copyToBaselineOnce, writeTrainTraceAsync } from "./traces.ts";
import type { BenchmarkRunner, Reward, RunRequest, RunSummary } from "./types.ts";

export const DEFAULT_INFRA_ERROR_SHARE = 0.5;
// Resolved from the harness (SDK, tsx), so the child works even when the experiment dir has no node_modules.
const CHILD_ENTRY = fileURLToPath(new URL("./child-entry.mjs", import.meta.url));

export interface RunnerOptions {
  root: string;
  config: Config;
  journal: Journal;
  log: Logger;
  adapter: Adapter;
  clock?: Clock;
  /** Share of a run's tasks that may end in an infrastructure error before the run fails (default config or 0.5). */
  infraErrorShare?: number;
  /** Reuse journaled results of the same agent hash (default true). */
  reuse?: boolean;
  /** Type-check the agent with tsc before running it (default true); a load is always checked. */
  typeCheck?: boolean;
  /** Endpoint of the agent's client (default ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY). */
  agentBaseURL?: string;
  agentApiKey?: string;
  /** The SDK's own retries inside the agent's client (default 2). */
  agentMaxRetries?: number;
  /** How often the child proves its event loop is alive (default 250 ms). */
  heartbeatMs?: number;
}

export function agentHashOf(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

interface Finished {
  reward: Reward;
  durationMs: number;
  error: string | null;
  events: TraceEvent[];
  answer: unknown;
}

/** Tasks of a split as fixed by workspace/split.json. */
function splitTaskIds(root: string, split: Split): string[] {
  const file = readSplit(paths(root).split);
  if (!file) throw new UserError("RUN_STATE", "workspace/split.json is missing; run `auto-harness prepare` first");
  return split === "train" ? file.train : file.test;
}

export function createRunner(options: RunnerOptions): BenchmarkRunner {
  const { root, config, journal, log, adapter } = options;
  const clock = options.clock ?? systemClock;
  const p = paths(root);
  const infraShare =
    options.infraErrorShare ??
    (config as Config & { infra_error_share?: number }).infra_error_share ??
    DEFAULT_INFRA_ERROR_SHARE;
  let taskList: Promise<string[]> | null = null;

  const listTasks = (): Promise<string[]> => {
    taskList ??= adapter.listTasks().catch((error: unknown) => {
      taskList = null;
      throw error;
    });
    return taskList;
  };

  async function run(request: RunRequest): Promise<RunSummary> {
    const { split } = request;
    const isTrain = split === "train";
    const writeTraces = isTrain && (request.writeTraces ?? true);
    const agentContent = readFileSync(p.agentFile);
    const agentHash = agentHashOf(agentContent);
    const ids = [...new Set(request.taskIds ?? splitTaskIds(root, split))];
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

    const results: Record<string, Reward> = {};
    let reused = 0;
    if (request.reuse ?? options.reuse ?? (config as Config & { reuse_results?: boolean }).reuse_results ?? true) {
      for (const row of journal.taskResults(agentHash, split)) {
        // An infrastructure error is not an answer: run those again.
        if (row.trial === 0 && row.reward !== null && ids.includes(row.taskId)) {
          results[row.taskId] = row.reward;
          reused += 1;
        }
      }
    }
    const missing = ids.filter((id) => !(id in results));
    log.info({ split, total: ids.length, reused, toRun: missing.length, agentHash }, "benchmark run started");

    const started = clock.now();
    const traceWrites: Promise<unknown>[] = [];
    let done = 0;
    let passed = Object.values(results).filter(passes).length;
    const pendingCalls: LlmCallRow[] = [];
    const finish = (taskId: string, f: Finished, task: TaskSpec | null): void => {
      results[taskId] = f.reward;
      journal.putTaskResult(
        {
          agentHash,
          split,
          taskId,
          trial: 0,
          reward: f.reward,
          durationMs: f.durationMs,
          error: isTrain ? f.error : null,
          runId: request.runId,
        },
        pendingCalls.splice(0),
      );
      if (writeTraces) {
        traceWrites.push(
          writeTrainTraceAsync(p.tracesLatest, p.tracesBaseline, taskId, {
            trace: {
              task_id: taskId,
              task: task?.agentTask ?? null,
              events: f.events,
              answer: f.answer,
              error: f.error,
            },
            result: { reward: f.reward, duration_ms: f.durationMs, error: f.error },
          }).catch((error: unknown) =>
            log.warn({ taskId, error: errorMessage(error) }, "could not write a train trace"),
          ),
        );
      }
      done += 1;
      if (passes(f.reward)) passed += 1;
      const elapsed = clock.now() - started;
      const etaS = Math.round(((elapsed / done) * (missing.length - done)) / 1000);
      const progress = {
        split,
        done: done + reused,
        total: ids.length,
        passRate: Number((passed / (done + reused)).toFixed(4)),
        etaS,
      };
      // Test tasks: counts only, no id, no content.
      request.onProgress?.(progress);
      if (isTrain) log.info({ ...progress, taskId, reward: f.reward }, "task finished");
      else log.info(progress, "task finished");
    };

    try {
      if (missing.length > 0) {
        if (adapter.kind === "agent") {
          await runAgentTasks({ adapter, missing, split, request, finish, pendingCalls });
        } else {
          await runCommandTasks({ adapter, missing, split, request, finish, writeTraces, pendingCalls });
        }
      }
    } finally {
      // Calls of tasks that never finished (aborted, crashed) are still spend.
      journal.recordLlmCalls(pendingCalls.splice(0));
      await Promise.all(traceWrites);
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
    log.info(
      { split, score, passed: summary.passed, total: summary.total, infraErrors: nulls, reused },
      "benchmark run finished",
    );
    if (ids.length > 0 && nulls / ids.length > infraShare) {
      throw new HarnessError(
        "INFRA_FAILURE",
        `${nulls} of ${ids.length} ${split} tasks could not run (infrastructure errors, limit ${Math.round(infraShare * 100)}%); not charged to the agent`,
        { retryable: true },
      );
    }
    return summary;
  }

  interface RunContext<A extends Adapter> {
    adapter: A;
    missing: string[];
    split: Split;
    request: RunRequest;
    finish: (taskId: string, f: Finished, task: TaskSpec | null) => void;
    /** The agent's LLM calls not yet journaled. */
    pendingCalls: LlmCallRow[];
  }

  async function runCommandTasks(ctx: RunContext<CommandAdapter> & { writeTraces: boolean }): Promise<void> {
    let pending = ctx.missing;
    let lastError: string | null = null;
    const got: Record<string, Reward> = {};
    for (let attempt = 1; attempt <= 2 && pending.length > 0; attempt++) {
      const t0 = clock.now();
      try {
        const out = await ctx.adapter.runTasks({
          split: ctx.split,
          taskIds: pending,
          agentFile: p.agentFile,
          tracesDir: ctx.writeTraces ? p.tracesLatest : null,
          ...(ctx.request.signal ? { signal: ctx.request.signal } : {}),
        });
        for (const id of pending) got[id] = typeof out[id] === "number" ? Math.min(1, Math.max(0, out[id])) : null;
      } catch (error) {
        if (ctx.request.signal?.aborted) throw new AbortedError("benchmark run aborted", error);
        lastError = errorMessage(error);
        for (const id of pending) got[id] = null;
      }
      const durationMs = Math.round((clock.now() - t0) / Math.max(1, pending.length));
      const retry = pending.filter((id) => got[id] === null);
      for (const id of pending) {
        if (got[id] === null && attempt < 2) continue;
        if (ctx.writeTraces) copyToBaselineOnce(p.tracesLatest, p.tracesBaseline, id);
        ctx.finish(
          id,
          {
            reward: got[id] ?? null,
            durationMs,
            error: got[id] === null ? (lastError ?? "no result for this task") : null,
            events: [],
            answer: null,
          },
          null,
        );
      }
      pending = retry;
    }
  }

  /**
   * budget_usd covers the agent under test too: no task starts once the run's spend (journaled, plus calls
   * not yet journaled) reaches it, so a benchmark overshoots by at most the tasks already in flight.
   */
  function budgetRefusal(runId: string | null, pending: LlmCallRow[]): Error | null {
    const budget = config.budget_usd;
    if (budget === null || runId === null) return null;
    const spent = journal.spend(runId).totalUsd + pending.reduce((sum, c) => sum + c.costUsd, 0);
    if (spent < budget) return null;
    return new HarnessError(
      "BUDGET_EXHAUSTED",
      `budget_usd ${budget} reached: $${spent.toFixed(4)} spent, the agent under test included; raise budget_usd to continue`,
    );
  }

  async function runAgentTasks(ctx: RunContext<AgentAdapter>): Promise<void> {
    let specs = new Map<string, TaskSpec>();
    const pool = new AgentPool({
      agentFile: p.agentFile,
      envModule: ctx.adapter.envModule,
      model: config.agent_model,
      baseURL: options.agentBaseURL ?? process.env.ANTHROPIC_BASE_URL ?? null,
      apiKey: options.agentApiKey ?? process.env.ANTHROPIC_API_KEY ?? null,
      maxRetries: options.agentMaxRetries ?? 2,
      recordTrace: ctx.split === "train",
      heartbeatMs: options.heartbeatMs ?? 250,
      concurrency: Math.max(1, config.max_concurrency),
      timeoutMs: config.per_task_timeout * 1000,
      clock,
      mayStart: () => budgetRefusal(ctx.request.runId, ctx.pendingCalls),
      onUsage: (u) => {
        // Journaled with the next finished task: one fsync per task, not one per call.
        ctx.pendingCalls.push({
          runId: ctx.request.runId,
          iteration: ctx.request.iteration ?? null,
          stepKey: null,
          role: "agent",
          model: u.model,
          promptHash: null,
          inputTokens: u.inputTokens,
          outputTokens: u.outputTokens,
          cacheCreationTokens: u.cacheCreationTokens,
          cacheReadTokens: u.cacheReadTokens,
          costUsd: costUsd(u.model, {
            input_tokens: u.inputTokens,
            output_tokens: u.outputTokens,
            cache_creation_input_tokens: u.cacheCreationTokens,
            cache_read_input_tokens: u.cacheReadTokens,
          }),
          latencyMs: u.latencyMs,
          // Never a test response; train responses live in the trace files.
          response: null,
          stopReason: u.stopReason,
        });
      },
      score: async (taskId, outcome) => {
        const spec = specs.get(taskId)!;
        return rewardOf(await ctx.adapter.score(spec, { answer: outcome.answer, state: outcome.state }));
      },
      finish: (taskId, f) => ctx.finish(taskId, f, specs.get(taskId) ?? null),
      warn: (obj, msg) => log.warn(ctx.split === "train" ? obj : { reason: obj.kind }, msg),
    });
    // The child's start-up (tsx, the SDK) overlaps the type-check and the task loading.
    pool.warm();
    try {
      const [check, loaded] = await Promise.all([
        checkAgentStatic(p.agentFile, { root, typeCheck: options.typeCheck ?? true }),
        ctx.adapter.loadTasks(ctx.missing),
      ]);
      // Syntax and type errors: one clear error for the whole run, not one failure per task.
      if (!check.ok) throw new HarnessError("AGENT_LOAD_FAILED", check.message);
      specs = loaded;
    } catch (error) {
      pool.close();
      throw error;
    }
    await pool.run(
      ctx.missing.map((id) => specs.get(id)!),
      ctx.request.signal,
    );
  }

  return { listTasks, run };
}

// ---------------------------------------------------------------- the child-process pool

type UsageMessage = Omit<LlmUsageReport, "type" | "taskId">;

/** What the child is told at start (ChildInit), plus what the pool itself needs. */
interface PoolOptions extends Omit<ChildInit, "type"> {
  concurrency: number;
  timeoutMs: number;
  clock: Clock;
  onUsage(u: UsageMessage): void;
  /** Asked before each task starts; an error stops the run (the budget). */
  mayStart?: () => Error | null;
  score(
    taskId: string,
    outcome: Extract<ChildOutcome, { ok: true }>,
  ): Promise<{ reward: number; detail: string | null }>;
  finish(taskId: string, f: Finished): void;
  warn(obj: { kind: string; [k: string]: unknown }, msg: string): void;
}

interface Queued {
  spec: TaskSpec;
  /** Infrastructure attempts so far. */
  attempt: number;
  /** Run alone: it was in flight when a child's event loop froze, and only one of those was the culprit. */
  isolate: boolean;
}

interface InFlight {
  item: Queued;
  startedAt: number;
  timer: NodeJS.Timeout | null;
}

class Worker {
  readonly child: ChildProcess;
  readonly inflight = new Map<string, InFlight>();
  readonly ready: Promise<void>;
  lastHeartbeat = Date.now();
  killed = false;
  exited = false;
  stderrTail = "";

  constructor(
    readonly capacity: number,
    opts: PoolOptions,
    onMessage: (w: Worker, m: FromChild) => void,
    onExit: (w: Worker, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    // stdout is never read (the protocol is IPC); stderr only for train, where it may explain a crash.
    this.child = fork(CHILD_ENTRY, [], {
      execArgv: [],
      stdio: ["ignore", "ignore", opts.recordTrace ? "pipe" : "ignore", "ipc"],
      serialization: "json",
    });
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-4000);
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.child.on("message", (m: FromChild) => {
        if (m.type === "ready") resolve();
        else if (m.type === "load-failed") reject(new HarnessError("AGENT_LOAD_FAILED", m.message));
        else onMessage(this, m);
      });
      this.child.on("exit", (code, signal) => {
        this.exited = true;
        reject(
          new HarnessError(
            "AGENT_LOAD_FAILED",
            `the agent process exited before the agent loaded (code ${code}, signal ${signal})${
              opts.recordTrace && this.stderrTail ? `: ${this.stderrTail.slice(-1500)}` : ""
            }`,
          ),
        );
        onExit(this, code, signal);
      });
    });
    this.ready.catch(() => {});
    const init: ChildInit = {
      type: "init",
      agentFile: opts.agentFile,
      envModule: opts.envModule,
      model: opts.model,
      baseURL: opts.baseURL,
      apiKey: opts.apiKey,
      maxRetries: opts.maxRetries,
      recordTrace: opts.recordTrace,
      heartbeatMs: opts.heartbeatMs,
    };
    this.child.send(init);
  }

  send(message: ToChild): void {
    if (!this.exited && this.child.connected) this.child.send(message);
  }

  kill(): void {
    if (this.exited) return;
    this.killed = true;
    this.child.kill("SIGKILL");
  }

  get room(): number {
    return this.exited || this.killed ? 0 : this.capacity - this.inflight.size;
  }
}

/**
 * Runs tasks in one child process, up to `concurrency` at once (agents are I/O bound, and one
 * process keeps start-up and memory low). A task that hangs while the child stays responsive is
 * aborted in place; a child whose event loop froze (a busy loop) is killed, and the tasks it held
 * run again one at a time so that only the culprit is charged.
 */
class AgentPool {
  private main: Worker | null = null;
  private isolated: Worker | null = null;
  private readonly queue: Queued[] = [];
  private inflightTotal = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(private readonly opts: PoolOptions) {}

  /** Starts the main child before there is work for it. */
  warm(): void {
    this.worker(false);
  }

  close(): void {
    this.main?.kill();
    this.isolated?.kill();
  }

  async run(specs: TaskSpec[], signal?: AbortSignal): Promise<void> {
    for (const spec of specs) this.queue.push({ spec, attempt: 0, isolate: false });
    const onAbort = () => this.fail(new AbortedError("benchmark run aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      while (!this.failure && (this.queue.length > 0 || this.inflightTotal > 0)) {
        await this.dispatch();
        if (this.failure) break;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.main?.kill();
      this.isolated?.kill();
      for (const w of [this.main, this.isolated])
        for (const f of w?.inflight.values() ?? []) if (f.timer) clearTimeout(f.timer);
    }
    if (this.failure) throw this.failure;
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.poke();
  }

  private worker(isolate: boolean): Worker {
    const current = isolate ? this.isolated : this.main;
    if (current && !current.exited && !current.killed) return current;
    const w = new Worker(
      isolate ? 1 : this.opts.concurrency,
      this.opts,
      (worker, m) => this.onMessage(worker, m),
      (worker, code, sig) => this.onExit(worker, code, sig),
    );
    if (isolate) this.isolated = w;
    else this.main = w;
    return w;
  }

  private async dispatch(): Promise<void> {
    for (let i = 0; i < this.queue.length && this.inflightTotal < this.opts.concurrency; ) {
      const item = this.queue[i]!;
      const w = this.worker(item.isolate);
      if (w.room <= 0) {
        i++;
        continue;
      }
      const refusal = this.opts.mayStart?.() ?? null;
      if (refusal) {
        this.fail(refusal);
        return;
      }
      this.queue.splice(i, 1);
      this.start(w, item);
    }
    // A load failure surfaces here once, for the whole run.
    const waiting = [this.main, this.isolated].filter((w): w is Worker => w !== null && !w.exited && !w.killed);
    for (const w of waiting) {
      w.ready.catch((error: unknown) => {
        if (error instanceof HarnessError && !w.killed) this.fail(error);
      });
    }
  }

  private start(w: Worker, item: Queued): void {
    const id = item.spec.id;
    const f: InFlight = { item, startedAt: this.opts.clock.now(), timer: null };
    w.inflight.set(id, f);
    this.inflightTotal += 1;
    void w.ready.then(
      () => {
        if (w.inflight.get(id) !== f) return;
        // The clock starts when the task reaches a loaded agent: start-up is not the task's time.
        f.startedAt = this.opts.clock.now();
        w.lastHeartbeat = Date.now();
        f.timer = setTimeout(() => this.onTimeout(w, id), this.opts.timeoutMs);
        w.send({ type: "run", taskId: id, task: item.spec.agentTask, envData: item.spec.envData });
      },
      () => {},
    );
  }

  private take(w: Worker, taskId: string): InFlight | null {
    const f = w.inflight.get(taskId);
    if (!f) return null;
    if (f.timer) clearTimeout(f.timer);
    w.inflight.delete(taskId);
    this.inflightTotal -= 1;
    return f;
  }

  private settle(taskId: string, f: InFlight, result: Omit<Finished, "durationMs">): void {
    try {
      this.opts.finish(taskId, { ...result, durationMs: this.opts.clock.now() - f.startedAt });
    } catch (error) {
      this.fail(error as Error);
    }
    this.poke();
  }

  private infra(taskId: string, f: InFlight, error: string, events: TraceEvent[]): void {
    if (f.item.attempt < 1) {
      this.opts.warn({ kind: "infra", taskId, error }, "task hit an infrastructure error; retrying once");
      this.queue.push({ ...f.item, attempt: f.item.attempt + 1 });
      this.poke();
      return;
    }
    this.settle(taskId, f, { reward: null, error, events, answer: null });
  }

  private onMessage(w: Worker, m: FromChild): void {
    if (m.type === "hb") {
      w.lastHeartbeat = Date.now();
      return;
    }
    if (m.type === "llm") {
      try {
        this.opts.onUsage(m);
      } catch (error) {
        this.fail(error as Error);
      }
      return;
    }
    if (m.type !== "done") return;
    w.lastHeartbeat = Date.now();
    const f = this.take(w, m.taskId);
    if (!f) return;
    const outcome = m.outcome;
    if (!outcome.ok) {
      if (outcome.infra) this.infra(m.taskId, f, outcome.error, outcome.events);
      else this.settle(m.taskId, f, { reward: 0, error: outcome.error, events: outcome.events, answer: null });
      return;
    }
    this.opts.score(m.taskId, outcome).then(
      ({ reward, detail }) =>
        this.settle(m.taskId, f, { reward, error: detail, events: outcome.events, answer: outcome.answer }),
      (error: unknown) => this.infra(m.taskId, f, `scorer failed: ${errorMessage(error)}`, outcome.events),
    );
  }

  private onTimeout(w: Worker, taskId: string): void {
    const f = w.inflight.get(taskId);
    if (!f) return;
    const seconds = this.opts.timeoutMs / 1000;
    const timeout = `timeout: the task ran longer than ${seconds}s and was stopped`;
    const frozen = Date.now() - w.lastHeartbeat > Math.max(1000, this.opts.heartbeatMs * 4);
    if (!frozen) {
      // The child still answers: only this task hangs. Abort it in place.
      this.take(w, taskId);
      w.send({ type: "abort", taskId });
      this.settle(taskId, f, { reward: 0, error: timeout, events: [], answer: null });
      return;
    }
    const suspects = [...w.inflight.keys()].map((id) => [id, this.take(w, id)!] as const);
    w.kill();
    this.opts.warn({ kind: "frozen", taskId, inFlight: suspects.length }, "agent process froze; killed it");
    if (suspects.length === 1 || w.capacity === 1) {
      // Alone in its process: this task is the culprit.
      this.settle(taskId, f, {
        reward: 0,
        error: `${timeout} (its process was busy and had to be killed)`,
        events: [],
        answer: null,
      });
      for (const [id, other] of suspects) if (id !== taskId) this.queue.push(other.item);
    } else {
      for (const [, other] of suspects) this.queue.push({ ...other.item, isolate: true });
    }
    this.poke();
  }

  private onExit(w: Worker, code: number | null, sig: NodeJS.Signals | null): void {
    w.exited = true;
    if (w.killed) return;
    const lost = [...w.inflight.keys()].map((id) => [id, this.take(w, id)!] as const);
    const tail = this.opts.recordTrace && w.stderrTail ? `: ${w.stderrTail.slice(-500)}` : "";
    for (const [id, f] of lost) this.infra(id, f, `the agent process crashed (code ${code}, signal ${sig})${tail}`, []);
    this.poke();
  }
}
