/**
 * The batch's agent processes: one holding up to `concurrency` tasks (agents are I/O bound, and one
 * process keeps start-up and memory low), and one for running suspects alone. A task that hangs while its
 * process stays responsive is aborted in place; a process whose event loop froze, that crashed, or that
 * broke its channel is killed, and the tasks it held run again one at a time so that only the culprit is
 * charged.
 */
import { AbortedError, errorMessage, HarnessError } from "../../errors.ts";
import { rewardOf } from "../adapters/types.ts";
import type { ExecutorItem, ItemQueue, TaskBatch } from "../executor.ts";
import type { AgentFailure } from "../failure.ts";
import type { AgentProcess } from "../sealed/agent-process.ts";
import { ChannelError } from "../sealed/channel.ts";
import type { FromChild } from "../sealed/protocol.ts";
import { BatchBudget } from "./batch-budget.ts";
import type { LocalExecutorOptions } from "./executor.ts";
import { PoolProcess } from "./pool-process.ts";
import { type EnvFactory, type EnvHandle, type Job, newRunning, type Running, type Settled, shapeOf } from "./task.ts";
import { type CallContext, forwardModelCall, recordNote, runTool } from "./task-calls.ts";

export class AgentPool {
  private main: PoolProcess | null = null;
  private isolated: PoolProcess | null = null;
  private readonly queue: Job[] = [];
  private inflightTotal = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private createEnv: EnvFactory | null = null;
  private readonly budget: BatchBudget;
  private settling = 0;
  private held = false;
  private readonly isTrain: boolean;
  private readonly calls: CallContext;

  constructor(
    private readonly o: LocalExecutorOptions,
    private readonly batch: TaskBatch,
    private readonly content: Buffer,
    private readonly out: ItemQueue<ExecutorItem>,
    /** The main process (the spare when there is one), and a fresh one for a suspect. */
    private readonly processes: { main(): AgentProcess; fresh(): AgentProcess },
    requestBytesPerTask: number,
  ) {
    this.isTrain = batch.split === "train";
    this.budget = new BatchBudget(batch.budgetUsd);
    this.calls = {
      o,
      batch,
      isTrain: this.isTrain,
      requestBytesPerTask,
      gateway: o.models.gateway(batch),
      addSpend: (usd) => this.budget.add(usd),
      budgetReached: (reason) => {
        this.budget.refused(reason);
        this.poke();
      },
      hitLimit: (p, r, limit, message) => this.hitLimit(p, r, limit, message),
      stray: (p) => this.stray(p),
    };
  }

  warm(): void {
    this.process(false);
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
    for (const p of [this.main, this.isolated]) {
      if (!p) continue;
      for (const r of p.running.values()) this.abandon(r);
      p.kill();
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
        await this.nap();
      }
      // The last task in flight was the one refused: the batch still stops for the budget.
      this.failure ??= this.budget.stop;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      const unfinished = [this.main, this.isolated].flatMap((p) => [...(p?.running.values() ?? [])]);
      this.close();
      await Promise.allSettled(unfinished.flatMap((r) => [...r.forwards]));
      while (this.settling > 0) await this.nap();
      // Calls of tasks that never finished (aborted, budget) are still spend.
      const calls = unfinished.flatMap((r) => r.calls);
      if (calls.length > 0) this.out.push({ kind: "spend", llmCalls: calls });
    }
    if (this.failure) throw this.failure;
  }

  private nap(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
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

  private process(isolate: boolean): PoolProcess {
    const current = isolate ? this.isolated : this.main;
    if (current && !current.exited && !current.killed) return current;
    const p = new PoolProcess(
      isolate ? this.processes.fresh() : this.processes.main(),
      isolate ? 1 : Math.max(1, this.o.concurrency),
      this.batch.agentFile,
      this.content,
      this.o,
      {
        message: (proc, m) => this.onMessage(proc, m),
        exit: (proc, code, sig) => this.onExit(proc, code, sig),
        broken: (proc, error) => this.onBroken(proc, error),
      },
    );
    // A load failure surfaces once, for the whole run.
    p.ready.catch((error: unknown) => {
      if (error instanceof HarnessError && !p.killed) this.fail(error);
    });
    if (isolate) this.isolated = p;
    else this.main = p;
    return p;
  }

  private dispatch(): void {
    // The calls already paid for finish, then the batch stops for the budget.
    if (this.budget.stop) {
      if (this.inflightTotal === 0 && this.settling === 0) this.fail(this.budget.stop);
      return;
    }
    const concurrency = Math.max(1, this.o.concurrency);
    for (let i = 0; i < this.queue.length && this.inflightTotal < concurrency; ) {
      const job = this.queue[i]!;
      const p = this.process(job.isolate);
      if (p.room <= 0) {
        i++;
        continue;
      }
      const refusal = this.budget.refusal();
      if (refusal) {
        this.fail(refusal);
        return;
      }
      this.queue.splice(i, 1);
      this.start(p, job);
    }
  }

  private start(p: PoolProcess, job: Job): void {
    const r = newRunning(job, this.o.clock.monotonic());
    p.running.set(job.id, r);
    this.inflightTotal += 1;
    void Promise.all([p.ready, this.buildEnv(job)]).then(
      ([, env]) => {
        if (p.running.get(job.id) !== r) return;
        if (env instanceof Error) {
          this.take(p, job.id);
          return this.infra(r, `benchmark env failed: ${env.message}`, "benchmark env failed");
        }
        r.env = env;
        // The clock starts when the task reaches a loaded agent: start-up is not the task's time.
        r.startedAt = this.o.clock.monotonic();
        p.lastHeartbeat = this.o.clock.monotonic();
        this.o.clock.sleep(this.o.timeoutMs, r.timer.signal).then(
          () => this.onTimeout(p, job.id),
          () => {},
        );
        if (!this.handOver(p, job, env)) {
          this.take(p, job.id);
          this.infra(
            r,
            "the task and its env cannot be handed to the agent process (not JSON, or too large)",
            "task not sendable",
          );
        }
      },
      () => {},
    );
  }

  /** Sends the task; false when the benchmark's task or env cannot cross the channel. */
  private handOver(p: PoolProcess, job: Job, env: EnvHandle): boolean {
    try {
      return p.send({ type: "run", jobId: job.id, task: job.spec.agentTask, env: shapeOf(env.env) });
    } catch {
      return false;
    }
  }

  private async buildEnv(job: Job): Promise<EnvHandle | Error> {
    try {
      return this.createEnv ? await this.createEnv(job.spec.envData) : { env: {}, state: () => null };
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  private take(p: PoolProcess, jobId: string): Running | null {
    const r = p.running.get(jobId);
    if (!r) return null;
    r.timer.abort();
    p.running.delete(jobId);
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
    // A task whose call found no room in the budget has no outcome: it runs again when the run goes on.
    if (r.budgetRefused) {
      this.keepSpend(r);
      return;
    }
    const durationMs = this.o.clock.monotonic() - r.startedAt;
    this.track(
      Promise.allSettled([...r.forwards]).then(() => {
        this.out.push({
          kind: "task",
          taskId: r.job.spec.id,
          trial: r.job.trial,
          reward: s.reward,
          durationMs,
          error: this.isTrain ? s.error : null,
          infraClass: s.reward === null ? (s.infraClass ?? "unknown") : null,
          agentFailure: s.reward === 0 ? (s.agentFailure ?? null) : null,
          events: this.isTrain ? r.events : null,
          task: this.isTrain ? r.job.spec.agentTask : null,
          answer: this.isTrain ? s.answer : null,
          llmCalls: r.calls,
        });
      }),
    );
  }

  /** The harness's own failure: run again once, then null. */
  private infra(r: Running, error: string, infraClass: string): void {
    if (r.job.attempt < 1) {
      this.abandon(r);
      this.o.warn(
        this.isTrain ? { kind: "infra", taskId: r.job.spec.id, error } : { reason: "infra", infraClass },
        "task hit an infrastructure error; retrying once",
      );
      // Its spend so far stays spend.
      this.keepSpend(r);
      this.queue.push({ ...r.job, attempt: r.job.attempt + 1 });
      this.poke();
      return;
    }
    this.settle(r, { reward: null, error, answer: null, infraClass });
  }

  /** A failure the agent caused scores 0, unless the endpoint had failed it first. */
  private agentFailure(r: Running, error: string, why: AgentFailure): void {
    if (r.upstreamInfra) this.infra(r, r.upstreamInfra.message, r.upstreamInfra.class);
    else this.settle(r, { reward: 0, error, answer: null, agentFailure: why });
  }

  /** A limit the task hit: it stops now, the agent's 0, with the limit as a line in its train trace. */
  private hitLimit(p: PoolProcess, r: Running, limit: string, message: string): void {
    if (p.running.get(r.job.id) !== r) return;
    this.take(p, r.job.id);
    p.send({ type: "abort", jobId: r.job.id });
    if (this.isTrain) r.events.push({ kind: "limit", at: this.o.clock.now(), limit, message });
    this.settle(r, { reward: 0, error: `limit: ${message}`, answer: null, agentFailure: "limit" });
  }

  /** A message for no task or call in flight: harmless alone, a flood in numbers. */
  private stray(p: PoolProcess): void {
    if (p.flooded("stray", this.o.clock.monotonic(), this.o.heartbeatMs)) this.onBroken(p, new ChannelError("flood"));
  }

  private onMessage(p: PoolProcess, m: FromChild): void {
    switch (m.type) {
      case "hb":
        p.lastHeartbeat = this.o.clock.monotonic();
        if (p.flooded("heartbeat", this.o.clock.monotonic(), this.o.heartbeatMs))
          this.onBroken(p, new ChannelError("flood"));
        return;
      case "llm":
        forwardModelCall(this.calls, p, m);
        return;
      case "llm-cancel": {
        const call = p.running.get(p.calls.get(m.callId) ?? "")?.open.get(m.callId);
        if (call) call.abort();
        else this.stray(p);
        return;
      }
      case "env":
        if (!p.running.has(m.jobId)) this.stray(p);
        void runTool(this.calls, p, m);
        return;
      case "note":
        recordNote(this.calls, p, m);
        return;
      case "done":
        this.onDone(p, m);
        return;
    }
  }

  private onDone(p: PoolProcess, m: Extract<FromChild, { type: "done" }>): void {
    p.lastHeartbeat = this.o.clock.monotonic();
    const r = this.take(p, m.jobId);
    if (!r) {
      this.stray(p);
      return;
    }
    const outcome = m.outcome;
    // Calls still open are abandoned; their records (and whether the endpoint failed) come first.
    this.abandon(r);
    this.track(
      Promise.allSettled([...r.forwards]).then(async () => {
        if (!outcome.ok) return this.agentFailure(r, outcome.error.slice(0, 20_000), "agent threw");
        if (r.upstreamInfra) return this.infra(r, r.upstreamInfra.message, r.upstreamInfra.class);
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
          // The answer broke the scorer: the agent's 0, unless the runner finds the incumbent's answer breaks it too.
          const why = `the scorer threw on the agent's answer: ${errorMessage(error)}`;
          return this.settle(r, { reward: 0, error: why, answer: outcome.answer, agentFailure: "scorer threw" });
        }
        this.settle(r, { reward: scored.reward, error: scored.detail, answer: outcome.answer });
      }),
    );
  }

  private onTimeout(p: PoolProcess, jobId: string): void {
    const r = p.running.get(jobId);
    if (!r) return;
    const seconds = this.o.timeoutMs / 1000;
    const timeout = `timeout: the task ran longer than ${seconds}s and was stopped`;
    const frozen = this.o.clock.monotonic() - p.lastHeartbeat > Math.max(1000, this.o.heartbeatMs * 4);
    if (!frozen) {
      // The process still answers: only this task hangs. Abort it in place.
      this.take(p, jobId);
      p.send({ type: "abort", jobId });
      this.settle(r, { reward: 0, error: timeout, answer: null, agentFailure: "timeout" });
      return;
    }
    const suspects = [...p.running.keys()].map((id) => this.take(p, id)!);
    p.kill();
    this.o.warn(
      this.isTrain ? { kind: "frozen", taskId: r.job.spec.id, inFlight: suspects.length } : { reason: "frozen" },
      "agent process froze; killed it",
    );
    if (suspects.length === 1 || p.capacity === 1) {
      // Alone in its process: this task is the culprit.
      const error = `${timeout} (its process was busy and had to be killed)`;
      this.settle(r, { reward: 0, error, answer: null, agentFailure: "timeout" });
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

  /** The process is gone through the agent's doing: alone, its task is charged; else each runs again alone. */
  private lose(p: PoolProcess, why: string, failure: AgentFailure): void {
    const lost = [...p.running.keys()].map((id) => this.take(p, id)!);
    if (lost.length === 1 || p.capacity === 1) {
      for (const r of lost) this.agentFailure(r, why, failure);
    } else {
      for (const r of lost) this.requeue(r, true);
    }
    this.poke();
  }

  private onExit(p: PoolProcess, code: number | null, sig: NodeJS.Signals | null): void {
    p.exited = true;
    if (p.killed) return;
    const tail = this.isTrain && p.stderrTail ? `: ${p.stderrTail.slice(-500)}` : "";
    this.lose(p, `the agent process crashed (code ${code}, signal ${sig})${tail}`, "agent process crashed");
  }

  private onBroken(p: PoolProcess, error: ChannelError): void {
    p.kill();
    this.lose(p, `${error.message}: its tasks in flight end there`, "channel broken");
  }
}
