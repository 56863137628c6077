/**
 * The local executor: runs a batch's tasks in agent child processes on this machine, up to
 * `concurrency` at once, scores each answer in this process, and yields the outcomes.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { withinBudget } from "../budget.ts";
import type { Clock } from "../clock.ts";
import { AbortedError, errorMessage, HarnessError } from "../errors.ts";
import type { LlmCallRow } from "../journal/journal.ts";
import { costUsd } from "../llm/client.ts";
import type { AgentAdapter, TaskSpec } from "./adapters/types.ts";
import { rewardOf } from "./adapters/types.ts";
import { type ExecutorItem, ItemQueue, type TaskBatch, type TaskExecutor } from "./executor.ts";
import { infraClass } from "./infra-class.ts";
import { checkAgentStatic } from "./load-check.ts";
import type { ChildInit, ChildOutcome, FromChild, LlmUsageReport, ToChild, TraceEvent } from "./protocol.ts";
import type { Reward } from "./types.ts";

// Resolved from the harness (SDK, tsx), so the child works even when the experiment dir has no node_modules.
const CHILD_ENTRY = fileURLToPath(new URL("./child-entry.mjs", import.meta.url));

export interface LocalExecutorOptions {
  adapter: AgentAdapter;
  clock: Clock;
  model: string;
  concurrency: number;
  /** Per task, from reaching a loaded agent. */
  timeoutMs: number;
  /** Endpoint of the agent's model calls. */
  baseURL: string | null;
  apiKey: string | null;
  /** The SDK's own retries inside the agent's client. */
  maxRetries: number;
  /** How often the child proves its event loop is alive. */
  heartbeatMs: number;
  /** Type-check the agent before running it; a load is always checked. */
  typeCheck: boolean;
  /** Experiment root, to shorten paths in messages. */
  root: string;
  warn(obj: Record<string, unknown>, msg: string): void;
}

interface Finished {
  reward: Reward;
  durationMs: number;
  error: string | null;
  events: TraceEvent[];
  answer: unknown;
}

export function createLocalExecutor(o: LocalExecutorOptions): TaskExecutor {
  return {
    run(batch, signal) {
      const q = new ItemQueue<ExecutorItem>();
      runBatch(o, batch, q, signal).then(
        () => q.end(),
        (error: unknown) => q.fail(error),
      );
      return q;
    },
  };
}

async function runBatch(
  o: LocalExecutorOptions,
  batch: TaskBatch,
  q: ItemQueue<ExecutorItem>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const meter = { spent: 0 };
  for (const trial of batch.trials) await runTrial(o, batch, trial, meter, q, signal);
}

async function runTrial(
  o: LocalExecutorOptions,
  batch: TaskBatch,
  trial: number,
  meter: { spent: number },
  q: ItemQueue<ExecutorItem>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const isTrain = batch.split === "train";
  const callsByTask = new Map<string, LlmCallRow[]>();
  let specs = new Map<string, TaskSpec>();
  const pool = new AgentPool({
    agentFile: batch.agentFile,
    envModule: o.adapter.envModule,
    model: o.model,
    baseURL: o.baseURL,
    apiKey: o.apiKey,
    maxRetries: o.maxRetries,
    recordTrace: isTrain,
    heartbeatMs: o.heartbeatMs,
    concurrency: Math.max(1, o.concurrency),
    timeoutMs: o.timeoutMs,
    clock: o.clock,
    mayStart: () => {
      if (withinBudget(batch.budgetUsd, meter.spent)) return null;
      return new HarnessError(
        "BUDGET_EXHAUSTED",
        `budget_usd reached: $${meter.spent.toFixed(4)} spent by the agent under test in this run, over the $${batch.budgetUsd?.toFixed(4)} left; raise budget_usd to continue`,
      );
    },
    onUsage: (u) => {
      const row: LlmCallRow = {
        runId: batch.runId,
        iteration: batch.iteration,
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
      };
      meter.spent += row.costUsd;
      const list = callsByTask.get(u.taskId) ?? [];
      list.push(row);
      callsByTask.set(u.taskId, list);
    },
    score: async (taskId, outcome) =>
      rewardOf(await o.adapter.score(specs.get(taskId)!, { answer: outcome.answer, state: outcome.state })),
    finish: (taskId, f) => {
      const llmCalls = callsByTask.get(taskId) ?? [];
      callsByTask.delete(taskId);
      q.push({
        kind: "task",
        taskId,
        trial,
        reward: f.reward,
        durationMs: f.durationMs,
        error: isTrain ? f.error : null,
        infraClass: f.reward === null ? infraClass(f.error) : null,
        events: isTrain ? f.events : null,
        task: isTrain ? (specs.get(taskId)?.agentTask ?? null) : null,
        answer: isTrain ? f.answer : null,
        llmCalls,
      });
    },
    warn: (obj, msg) => o.warn(isTrain ? obj : { reason: obj.kind }, msg),
  });
  // The child's start-up (tsx, the SDK) overlaps the type-check and the task loading.
  pool.warm();
  try {
    const [check, loaded] = await Promise.all([
      checkAgentStatic(batch.agentFile, { root: o.root, typeCheck: o.typeCheck }),
      o.adapter.loadTasks(batch.taskIds),
    ]);
    // Syntax and type errors: one clear error for the whole run, not one failure per task.
    if (!check.ok) throw new HarnessError("AGENT_LOAD_FAILED", check.message);
    specs = loaded;
  } catch (error) {
    pool.close();
    throw error;
  }
  try {
    await pool.run(
      batch.taskIds.map((id) => specs.get(id)!),
      signal,
    );
  } finally {
    // Calls of tasks that never finished (aborted, crashed) are still spend.
    const rest = [...callsByTask.values()].flat();
    if (rest.length > 0) q.push({ kind: "spend", llmCalls: rest });
  }
}

// ---------------------------------------------------------------- the child-process pool

type UsageMessage = Omit<LlmUsageReport, "type">;

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
  lastHeartbeat: number;
  killed = false;
  exited = false;
  stderrTail = "";

  constructor(
    readonly capacity: number,
    opts: PoolOptions,
    onMessage: (w: Worker, m: FromChild) => void,
    onExit: (w: Worker, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    this.lastHeartbeat = opts.clock.now();
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
        w.lastHeartbeat = this.opts.clock.now();
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
      w.lastHeartbeat = this.opts.clock.now();
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
    w.lastHeartbeat = this.opts.clock.now();
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
    const frozen = this.opts.clock.now() - w.lastHeartbeat > Math.max(1000, this.opts.heartbeatMs * 4);
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
