/**
 * The local executor: runs a batch's tasks in sealed agent processes on this machine (sandbox.ts),
 * up to `concurrency` at once, and yields the outcomes. Everything that decides a reward happens
 * here, in the harness: the benchmark's env and its tools, the model calls (llm-proxy.ts), the
 * scorer on the harness's own copy of the env's state, and the call on whose failure it was.
 */
import { readFileSync } from "node:fs";
import { withinBudget } from "../budget.ts";
import type { Clock } from "../clock.ts";
import type { Split } from "../domain.ts";
import { AbortedError, errorMessage, HarnessError } from "../errors.ts";
import type { LlmCallRow } from "../journal/stores.ts";
import type { AgentAdapter, TaskSpec } from "./adapters/types.ts";
import { rewardOf } from "./adapters/types.ts";
import { outsideText, placeAgent } from "./agent-build.ts";
import { type ExecutorItem, ItemQueue, type TaskBatch, type TaskExecutor, type TaskOutcome } from "./executor.ts";
import { infraClass } from "./infra-class.ts";
import { forwardLlmCall, type Upstream } from "./llm-proxy.ts";
import { checkAgentStatic } from "./load-check.ts";
import { type EnvShape, type FromChild, fromChildSchema, type ToChild, type TraceEvent } from "./protocol.ts";
import {
  type AgentLanguage,
  type AgentProcess,
  keepSpareAgentProcess,
  languageOf,
  type SandboxMode,
  startAgentProcess,
  takeAgentProcess,
} from "./sandbox.ts";
import { keptBody } from "./traces.ts";
import { importTsModule } from "./ts-module.ts";
import type { Reward } from "./types.ts";

export interface LocalExecutorOptions {
  adapter: AgentAdapter;
  clock: Clock;
  model: string;
  concurrency: number;
  /** Per task, from reaching a loaded agent. */
  timeoutMs: number;
  /** Where the agent's model calls go; the key never enters the agent's process. */
  upstream: Upstream;
  /** The SDK's own retries inside the agent's client. */
  maxRetries: number;
  /** How often the child proves its event loop is alive. */
  heartbeatMs: number;
  /** Type-check the agent before running it; a load is always checked. */
  typeCheck: boolean;
  sandbox: SandboxMode;
  /** Keep one fresh agent process started between batches, so a batch does not wait for node, the SDK and tsx. */
  warmSpare?: boolean;
  /** Experiment root, to shorten paths in messages. */
  root: string;
  warn(obj: Record<string, unknown>, msg: string): void;
}

interface EnvHandle {
  env: Record<string, unknown>;
  state(): unknown;
}
type EnvFactory = (envData: unknown) => EnvHandle | Promise<EnvHandle>;

const NOTE_CHARS = 2000;
const NOTE_DATA_CHARS = 8000;
const STDERR_CHARS = 4000;

export function createLocalExecutor(o: LocalExecutorOptions): TaskExecutor {
  // The gate's paired re-runs start many one-task batches of the same two files: tsc once per file.
  const checked = new Set<string>();
  const takeProcess = (language: AgentLanguage): AgentProcess => takeAgentProcess(o.sandbox, language);
  const restock = (language: AgentLanguage): void => {
    if (o.warmSpare ?? true) keepSpareAgentProcess(o.sandbox, language);
  };
  const loadEnv = envLoader(o);

  return {
    run(batch, signal) {
      const q = new ItemQueue<ExecutorItem>();
      const language = languageOf(batch.agentFile);
      runBatch(o, batch, q, signal, () => takeProcess(language), loadEnv, checked).then(
        () => q.end(),
        (error: unknown) => q.fail(error),
      );
      return {
        async *[Symbol.asyncIterator]() {
          try {
            yield* q.groups();
          } finally {
            restock(language);
          }
        },
      };
    },
  };
}

/** The benchmark's env module, loaded once per executor (it builds each task's env in the harness). */
function envLoader(o: LocalExecutorOptions): () => Promise<EnvFactory | null> {
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

/** One agent pool kept open for tasks that arrive one at a time (a queue worker). */
export interface LocalSession {
  /** Runs one task; resolves with its outcome (rejects with AGENT_LOAD_FAILED if the agent does not load). */
  run(taskId: string, trial: number): Promise<TaskOutcome>;
  close(): void;
}

/**
 * The local pool for a queue worker: the same sandbox, timeouts, retries and scoring as a batch, but the
 * tasks arrive one by one and the agent process stays warm between them.
 */
export function openLocalSession(
  o: LocalExecutorOptions,
  s: { agentFile: string; agentHash: string; split: Split },
  /** Agent hashes already type-checked, shared by a worker's sessions: tsc once per agent version. */
  checked: Set<string> = new Set(),
): LocalSession {
  const language = languageOf(s.agentFile);
  const q = new ItemQueue<ExecutorItem>();
  const abort = new AbortController();
  const waiting = new Map<string, { resolve(outcome: TaskOutcome): void; reject(error: unknown): void }>();
  const keyOf = (taskId: string, trial: number) => `${trial}\0${taskId}`;
  let failure: unknown = null;
  let add: ((taskId: string, trial: number) => Promise<void>) | null = null;
  let opened: () => void = () => {};
  const isOpen = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const batch: TaskBatch = {
    agentFile: s.agentFile,
    agentHash: s.agentHash,
    split: s.split,
    taskIds: [],
    trials: [],
    runId: null,
    iteration: null,
    budgetUsd: null,
  };
  const end = (error: unknown) => {
    failure ??= error;
    for (const w of waiting.values()) w.reject(failure);
    waiting.clear();
    opened();
  };
  const session = {
    open: (a: (taskId: string, trial: number) => Promise<void>) => {
      add = a;
      opened();
    },
  };
  runBatch(o, batch, q, abort.signal, () => takeAgentProcess(o.sandbox, language), envLoader(o), checked, session).then(
    () => end(new AbortedError("the agent pool was closed")),
    (error: unknown) => end(error),
  );
  void (async () => {
    for await (const item of q) {
      if (item.kind !== "task") continue;
      const key = keyOf(item.taskId, item.trial);
      waiting.get(key)?.resolve(item);
      waiting.delete(key);
    }
  })().catch(() => {});
  return {
    async run(taskId, trial) {
      await isOpen;
      if (failure || !add) throw failure;
      const outcome = new Promise<TaskOutcome>((resolve, reject) =>
        waiting.set(keyOf(taskId, trial), { resolve, reject }),
      );
      await add(taskId, trial);
      return outcome;
    },
    close: () => abort.abort(),
  };
}

interface Job {
  id: string;
  spec: TaskSpec;
  trial: number;
  /** Infrastructure attempts so far. */
  attempt: number;
  /** Run alone: it was in flight when its process froze or crashed, and only one of those was the culprit. */
  isolate: boolean;
}

interface Running {
  job: Job;
  startedAt: number;
  timer: AbortController;
  env: EnvHandle | null;
  events: TraceEvent[];
  calls: LlmCallRow[];
  /** The endpoint's last failure on this task, cleared by its next whole answer. */
  upstreamInfra: string | null;
  open: Map<string, AbortController>;
  forwards: Set<Promise<void>>;
}

interface Settled {
  reward: Reward;
  error: string | null;
  answer: unknown;
}

async function runBatch(
  o: LocalExecutorOptions,
  batch: TaskBatch,
  q: ItemQueue<ExecutorItem>,
  signal: AbortSignal | undefined,
  takeProcess: () => AgentProcess,
  loadEnv: () => Promise<EnvFactory | null>,
  checked: Set<string>,
  /** Keeps the pool open for tasks added one at a time, until the signal aborts (openLocalSession). */
  session?: { open(add: (taskId: string, trial: number) => Promise<void>): void },
): Promise<void> {
  const content = readFileSync(batch.agentFile);
  const pool = new AgentPool(o, batch, content, q, takeProcess);
  // The child's start-up (node, the SDK, tsx) overlaps the type-check and the task loading.
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

class Worker {
  readonly running = new Map<string, Running>();
  /** Model calls in flight: callId → jobId. */
  readonly calls = new Map<string, string>();
  readonly ready: Promise<void>;
  lastHeartbeat: number;
  killed = false;
  exited = false;
  stderrTail = "";

  constructor(
    readonly proc: AgentProcess,
    readonly capacity: number,
    private readonly agentFile: string,
    content: Buffer,
    o: LocalExecutorOptions,
    onMessage: (w: Worker, m: FromChild) => void,
    onExit: (w: Worker, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    this.lastHeartbeat = o.clock.monotonic();
    const child = proc.child;
    child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_CHARS);
    });
    let failLoad: (error: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      failLoad = reject;
      child.on("message", (raw: unknown) => {
        const parsed = fromChildSchema.safeParse(raw);
        // The agent shares the child's process and can send anything: what does not parse is dropped.
        if (!parsed.success) return;
        const m = parsed.data;
        if (m.type === "ready") resolve();
        else if (m.type === "load-failed") reject(new HarnessError("AGENT_LOAD_FAILED", this.outside(m.message)));
        else onMessage(this, m);
      });
      child.on("exit", (code, signal) => {
        this.exited = true;
        // Before any task: nothing in stderr can be a task's content.
        const tail = this.stderrTail ? `: ${this.outside(this.stderrTail.slice(-1500))}` : "";
        reject(
          new HarnessError(
            "AGENT_LOAD_FAILED",
            `the agent process exited before the agent loaded (code ${code}, signal ${signal})${tail}`,
          ),
        );
        onExit(this, code, signal);
      });
    });
    this.ready.catch(() => {});
    placeAgent(proc, agentFile, content).then(
      (placed) => {
        // The pool fails the whole run on this, and closes the process with it.
        if (!placed.ok) return failLoad(new HarnessError("AGENT_LOAD_FAILED", this.outside(placed.message)));
        this.send({
          type: "init",
          agentFile: placed.inside,
          model: o.model,
          maxRetries: o.maxRetries,
          heartbeatMs: o.heartbeatMs,
        });
      },
      () => this.kill(),
    );
  }

  /** Messages name the agent by its path inside the sandbox; the operator knows it by its own. */
  outside(text: string): string {
    return outsideText(this.proc, this.agentFile, text);
  }

  send(message: ToChild): void {
    if (!this.exited && this.proc.child.connected) this.proc.child.send(message);
  }

  kill(): void {
    this.killed = true;
    this.proc.dispose();
  }

  get room(): number {
    return this.exited || this.killed ? 0 : this.capacity - this.running.size;
  }
}

/**
 * The batch's agent processes: one holding up to `concurrency` tasks (agents are I/O bound, and one
 * process keeps start-up and memory low), and one for running suspects alone. A task that hangs
 * while its process stays responsive is aborted in place; a process whose event loop froze, or that
 * crashed, is killed, and the tasks it held run again one at a time so that only the culprit is charged.
 */
class AgentPool {
  private main: Worker | null = null;
  private isolated: Worker | null = null;
  private readonly queue: Job[] = [];
  private inflightTotal = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private createEnv: EnvFactory | null = null;
  private spent = 0;
  private settling = 0;
  private held = false;
  private readonly isTrain: boolean;

  constructor(
    private readonly o: LocalExecutorOptions,
    private readonly batch: TaskBatch,
    private readonly content: Buffer,
    private readonly out: ItemQueue<ExecutorItem>,
    private readonly takeProcess: () => AgentProcess,
  ) {
    this.isTrain = batch.split === "train";
  }

  warm(): void {
    this.worker(false);
  }

  /** Keeps run() going while idle, for jobs add()ed later; it then ends when its signal aborts. */
  hold(): void {
    this.held = true;
  }

  add(job: Job): void {
    this.queue.push(job);
    this.poke();
  }

  close(): void {
    for (const w of [this.main, this.isolated]) {
      if (!w) continue;
      for (const r of w.running.values()) this.abandon(r);
      w.kill();
    }
  }

  async run(jobs: Job[], createEnv: EnvFactory | null, signal?: AbortSignal): Promise<void> {
    this.createEnv = createEnv;
    this.queue.push(...jobs);
    const onAbort = () => this.fail(new AbortedError("benchmark run aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      while (!this.failure && (this.held || this.queue.length > 0 || this.inflightTotal > 0 || this.settling > 0)) {
        this.dispatch();
        if (this.failure) break;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      const unfinished = [this.main, this.isolated].flatMap((w) => [...(w?.running.values() ?? [])]);
      this.close();
      await Promise.allSettled(unfinished.flatMap((r) => [...r.forwards]));
      while (this.settling > 0)
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      // Calls of tasks that never finished (aborted, budget) are still spend.
      const calls = unfinished.flatMap((r) => r.calls);
      if (calls.length > 0) this.out.push({ kind: "spend", llmCalls: calls });
    }
    if (this.failure) throw this.failure;
  }

  /** Work for a task that left its process but has no outcome yet (scoring, waiting for its calls' records). */
  private track(p: Promise<unknown>): void {
    this.settling += 1;
    void p
      .catch((error: unknown) => this.fail(error as Error))
      .finally(() => {
        this.settling -= 1;
        this.poke();
      });
  }

  /** A task that runs again keeps the spend of its first go. */
  private keepSpend(r: Running): void {
    this.track(
      Promise.allSettled([...r.forwards]).then(() => {
        if (r.calls.length > 0) this.out.push({ kind: "spend", llmCalls: r.calls });
      }),
    );
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
      // The main process comes from the spare; a suspect gets a fresh one.
      isolate ? startAgentProcess(this.o.sandbox, languageOf(this.batch.agentFile)) : this.takeProcess(),
      isolate ? 1 : Math.max(1, this.o.concurrency),
      this.batch.agentFile,
      this.content,
      this.o,
      (worker, m) => this.onMessage(worker, m),
      (worker, code, sig) => this.onExit(worker, code, sig),
    );
    // A load failure surfaces once, for the whole run.
    w.ready.catch((error: unknown) => {
      if (error instanceof HarnessError && !w.killed) this.fail(error);
    });
    if (isolate) this.isolated = w;
    else this.main = w;
    return w;
  }

  private budgetRefusal(): Error | null {
    const left = this.batch.budgetUsd;
    if (withinBudget(left, this.spent)) return null;
    return new HarnessError(
      "BUDGET_EXHAUSTED",
      `budget reached: $${this.spent.toFixed(4)} spent by the agent under test, $${left?.toFixed(4)} was left`,
    );
  }

  private dispatch(): void {
    const concurrency = Math.max(1, this.o.concurrency);
    for (let i = 0; i < this.queue.length && this.inflightTotal < concurrency; ) {
      const job = this.queue[i]!;
      const w = this.worker(job.isolate);
      if (w.room <= 0) {
        i++;
        continue;
      }
      const refusal = this.budgetRefusal();
      if (refusal) {
        this.fail(refusal);
        return;
      }
      this.queue.splice(i, 1);
      this.start(w, job);
    }
  }

  private start(w: Worker, job: Job): void {
    const r: Running = {
      job,
      startedAt: this.o.clock.monotonic(),
      timer: new AbortController(),
      env: null,
      events: [],
      calls: [],
      upstreamInfra: null,
      open: new Map(),
      forwards: new Set(),
    };
    w.running.set(job.id, r);
    this.inflightTotal += 1;
    void Promise.all([w.ready, this.buildEnv(job)]).then(
      ([, env]) => {
        if (w.running.get(job.id) !== r) return;
        if (env instanceof Error) {
          this.take(w, job.id);
          return this.infra(r, `benchmark env failed: ${env.message}`);
        }
        r.env = env;
        // The clock starts when the task reaches a loaded agent: start-up is not the task's time.
        r.startedAt = this.o.clock.monotonic();
        w.lastHeartbeat = this.o.clock.monotonic();
        this.o.clock.sleep(this.o.timeoutMs, r.timer.signal).then(
          () => this.onTimeout(w, job.id),
          () => {},
        );
        w.send({ type: "run", jobId: job.id, task: job.spec.agentTask, env: shapeOf(env.env) });
      },
      () => {},
    );
  }

  private async buildEnv(job: Job): Promise<EnvHandle | Error> {
    try {
      return this.createEnv ? await this.createEnv(job.spec.envData) : { env: {}, state: () => null };
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  private take(w: Worker, jobId: string): Running | null {
    const r = w.running.get(jobId);
    if (!r) return null;
    r.timer.abort();
    w.running.delete(jobId);
    this.inflightTotal -= 1;
    return r;
  }

  /** Stops what the harness still does for a task the agent no longer runs. */
  private abandon(r: Running): void {
    r.timer.abort();
    for (const c of r.open.values()) c.abort();
  }

  private settle(r: Running, s: Settled): void {
    this.abandon(r);
    const durationMs = this.o.clock.monotonic() - r.startedAt;
    this.track(
      Promise.allSettled([...r.forwards]).then(() => {
        try {
          this.out.push({
            kind: "task",
            taskId: r.job.spec.id,
            trial: r.job.trial,
            reward: s.reward,
            durationMs,
            error: this.isTrain ? s.error : null,
            infraClass: s.reward === null ? infraClass(s.error) : null,
            events: this.isTrain ? r.events : null,
            task: this.isTrain ? r.job.spec.agentTask : null,
            answer: this.isTrain ? s.answer : null,
            llmCalls: r.calls,
          });
        } catch (error) {
          this.fail(error as Error);
        }
      }),
    );
  }

  /** The harness's own failure: run again once, then null. */
  private infra(r: Running, error: string): void {
    if (r.job.attempt < 1) {
      this.abandon(r);
      this.o.warn(
        this.isTrain ? { kind: "infra", taskId: r.job.spec.id, error } : { reason: "infra" },
        "task hit an infrastructure error; retrying once",
      );
      // Its spend so far stays spend.
      this.keepSpend(r);
      this.queue.push({ ...r.job, attempt: r.job.attempt + 1 });
      this.poke();
      return;
    }
    this.settle(r, { reward: null, error, answer: null });
  }

  /** A failure the agent caused scores 0, unless the endpoint had failed it first. */
  private agentFailure(r: Running, error: string): void {
    if (r.upstreamInfra) this.infra(r, r.upstreamInfra);
    else this.settle(r, { reward: 0, error, answer: null });
  }

  private onMessage(w: Worker, m: FromChild): void {
    if (m.type === "hb") {
      w.lastHeartbeat = this.o.clock.monotonic();
      return;
    }
    if (m.type === "llm") {
      this.onLlm(w, m);
      return;
    }
    if (m.type === "llm-cancel") {
      const jobId = w.calls.get(m.callId);
      if (jobId) w.running.get(jobId)?.open.get(m.callId)?.abort();
      return;
    }
    if (m.type === "env") {
      void this.onEnv(w, m);
      return;
    }
    if (m.type === "note") {
      const r = w.running.get(m.jobId);
      // Test runs send notes too (the child cannot tell), and they are dropped here.
      if (r && this.isTrain) r.events.push(noteEvent(this.o.clock.now(), m.message, m.data));
      return;
    }
    if (m.type !== "done") return;
    w.lastHeartbeat = this.o.clock.monotonic();
    const r = this.take(w, m.jobId);
    if (!r) return;
    const outcome = m.outcome;
    // Calls still open are abandoned; their records (and whether the endpoint failed) come first.
    this.abandon(r);
    this.track(
      Promise.allSettled([...r.forwards]).then(async () => {
        if (!outcome.ok) return this.agentFailure(r, outcome.error.slice(0, 20_000));
        if (r.upstreamInfra) return this.infra(r, r.upstreamInfra);
        let scored: { reward: number; detail: string | null };
        try {
          // The harness's own env state, never anything the agent reports.
          scored = rewardOf(
            await this.o.adapter.score(r.job.spec, {
              answer: outcome.answer,
              state: r.env?.state() ?? null,
              trial: r.job.trial,
            }),
          );
        } catch (error) {
          return this.infra(r, `scorer failed: ${errorMessage(error)}`);
        }
        this.settle(r, { reward: scored.reward, error: scored.detail, answer: outcome.answer });
      }),
    );
  }

  private onLlm(w: Worker, m: Extract<FromChild, { type: "llm" }>): void {
    const r = w.running.get(m.jobId);
    const reply = (message: ToChild) => w.send(message);
    if (!r || w.calls.has(m.callId)) {
      reply({ type: "llm-fail", callId: m.callId, message: "no such task in flight" });
      return;
    }
    const controller = new AbortController();
    w.calls.set(m.callId, m.jobId);
    r.open.set(m.callId, controller);
    const forward = forwardLlmCall(
      this.o.upstream,
      this.o.clock,
      m,
      {
        head: (status, headers) => reply({ type: "llm-head", callId: m.callId, status, headers }),
        chunk: (data) => reply({ type: "llm-chunk", callId: m.callId, data }),
        end: () => reply({ type: "llm-end", callId: m.callId }),
        fail: (message) => reply({ type: "llm-fail", callId: m.callId, message }),
      },
      controller.signal,
    ).then((result) => {
      w.calls.delete(m.callId);
      r.open.delete(m.callId);
      if (result.usage) {
        r.calls.push({ ...result.usage, runId: this.batch.runId, iteration: this.batch.iteration });
        this.spent += result.usage.costUsd;
      }
      if (this.isTrain) r.events.push(result.event);
      if (result.infra) r.upstreamInfra = result.infra;
      else if (!result.cancelled && result.event.status !== null && result.event.status < 300) r.upstreamInfra = null;
    });
    r.forwards.add(forward);
    void forward.finally(() => r.forwards.delete(forward));
  }

  private async onEnv(w: Worker, m: Extract<FromChild, { type: "env" }>): Promise<void> {
    const r = w.running.get(m.jobId);
    const fn = r?.env?.env[m.name];
    if (!r || typeof fn !== "function") {
      w.send({ type: "env-result", callId: m.callId, ok: false, error: `no tool ${JSON.stringify(m.name)}` });
      return;
    }
    const [tool, toolInput] = m.name === "execute" ? m.args : [m.name, m.args];
    const event: TraceEvent = { kind: "tool", at: this.o.clock.now(), name: String(tool), input: keptBody(toolInput) };
    if (this.isTrain) r.events.push(event);
    try {
      const output = await (fn as (...a: unknown[]) => unknown).apply(r.env!.env, m.args);
      event.output = keptBody(output);
      w.send({ type: "env-result", callId: m.callId, ok: true, value: output ?? null });
    } catch (error) {
      event.error = errorMessage(error);
      w.send({ type: "env-result", callId: m.callId, ok: false, error: errorMessage(error) });
    }
  }

  private onTimeout(w: Worker, jobId: string): void {
    const r = w.running.get(jobId);
    if (!r) return;
    const seconds = this.o.timeoutMs / 1000;
    const timeout = `timeout: the task ran longer than ${seconds}s and was stopped`;
    const frozen = this.o.clock.monotonic() - w.lastHeartbeat > Math.max(1000, this.o.heartbeatMs * 4);
    if (!frozen) {
      // The process still answers: only this task hangs. Abort it in place.
      this.take(w, jobId);
      w.send({ type: "abort", jobId });
      this.settle(r, { reward: 0, error: timeout, answer: null });
      return;
    }
    const suspects = [...w.running.keys()].map((id) => this.take(w, id)!);
    w.kill();
    this.o.warn(
      this.isTrain ? { kind: "frozen", taskId: r.job.spec.id, inFlight: suspects.length } : { reason: "frozen" },
      "agent process froze; killed it",
    );
    if (suspects.length === 1 || w.capacity === 1) {
      // Alone in its process: this task is the culprit.
      this.settle(r, { reward: 0, error: `${timeout} (its process was busy and had to be killed)`, answer: null });
      for (const other of suspects) if (other !== r) this.requeue(other, true);
    } else {
      for (const other of suspects) this.requeue(other, true);
    }
    this.poke();
  }

  private requeue(r: Running, isolate: boolean): void {
    this.abandon(r);
    this.keepSpend(r);
    this.queue.push({ ...r.job, isolate });
  }

  private onExit(w: Worker, code: number | null, sig: NodeJS.Signals | null): void {
    w.exited = true;
    if (w.killed) return;
    const lost = [...w.running.keys()].map((id) => this.take(w, id)!);
    const tail = this.isTrain && w.stderrTail ? `: ${w.stderrTail.slice(-500)}` : "";
    const why = `the agent process crashed (code ${code}, signal ${sig})${tail}`;
    if (lost.length === 1 || w.capacity === 1) {
      // Alone in its process: the crash is this task's doing.
      for (const r of lost) this.agentFailure(r, why);
    } else {
      for (const r of lost) this.requeue(r, true);
    }
    this.poke();
  }
}

/** What the agent process gets of an env: its plain values, and the names of its functions (run here). */
function shapeOf(env: Record<string, unknown>): EnvShape {
  const values: Record<string, unknown> = {};
  const functions: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === "function") functions.push(name);
    else values[name] = value;
  }
  return { values: JSON.parse(JSON.stringify(values)) as Record<string, unknown>, functions };
}

function noteEvent(at: number, message: string, data: unknown): TraceEvent {
  let kept: unknown = data;
  if (data !== undefined) {
    const text = JSON.stringify(data) ?? "";
    if (text.length > NOTE_DATA_CHARS) kept = `${text.slice(0, NOTE_DATA_CHARS)}… (cut)`;
  }
  return {
    kind: "note",
    at,
    source: "agent",
    message: message.length > NOTE_CHARS ? `${message.slice(0, NOTE_CHARS)}… (cut)` : message,
    ...(data === undefined ? {} : { data: kept }),
  };
}
