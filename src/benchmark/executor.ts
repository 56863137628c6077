/**
 * The seam between a benchmark run and whatever executes its tasks.
 *
 * The runner (runner.ts) owns the run: which tasks still need a result, the journal cache, train
 * traces, progress and the infrastructure-failure rule. An executor owns execution: it receives a
 * batch (the agent file and its hash, the split, the task ids, the trials) and yields one outcome per
 * (task, trial) as each finishes, so a reward reaches the journal along one path. Everything in a
 * batch and an outcome is plain JSON, so an executor may hand the batch to another process or machine
 * (a queue) and stream the outcomes back.
 *
 * Contract:
 * - Items come in groups: what finished together travels together, and the runner journals each group in
 *   one transaction (one fsync) before it asks for the next; an executor that acknowledges a delivery
 *   (a queue) does so only then.
 * - Every (taskId, trial) of the batch yields exactly one `task` item, unless the run stops early: the
 *   signal aborts (the iterator throws `AbortedError`), the budget runs out (`BUDGET_EXHAUSTED`) or
 *   the agent does not load (`AGENT_LOAD_FAILED`, thrown once for the whole batch before any task).
 * - Spend of tasks that never finished is still yielded, as a `spend` item, before the iterator throws.
 * - `reward` is 0..1 for an answer the scorer graded, 0 for a failure the agent caused (throw,
 *   timeout, crash, malformed output, a connection it broke), and `null` only for a failure of the
 *   harness's own side (the model endpoint, the benchmark's environment or scorer), already retried.
 * - Nothing of a test task's content travels in an outcome: `events` and `error` are null for test.
 */

import type { Split } from "../domain.ts";
import type { LlmCallRow } from "../journal/stores.ts";
import type { AgentTask } from "./agent-contract.ts";
import type { AgentFailure, InfraClass } from "./failure.ts";
import type { TraceEvent } from "./sealed/protocol.ts";
import type { Reward } from "./types.ts";

export interface TaskBatch {
  /** Absolute path of the agent file to run. */
  agentFile: string;
  /** sha256 of the agent file's content: the cache key, and what a remote executor verifies. */
  agentHash: string;
  split: Split;
  taskIds: string[];
  /** Trial numbers to run for each task (default [0]). */
  trials: number[];
  /** Tags for the LLM-call rows of the agent under test. */
  runId: string | null;
  iteration: number | null;
  /** Dollars the batch may still spend (null: no limit); no task starts once its metered spend reaches this. */
  budgetUsd: number | null;
}

/** One finished (task, trial). */
export interface TaskOutcome {
  kind: "task";
  taskId: string;
  trial: number;
  reward: Reward;
  /** From the task reaching a loaded agent to its result. */
  durationMs: number;
  /** Why it failed or could not run; train only. */
  error: string | null;
  /** For an infrastructure error (reward null): its class, "HTTP 401", "connection refused"… No content, so test too. */
  infraClass?: InfraClass | null;
  /** For a 0 the harness decided (the agent's failure): its class, set where it is known. No content, so test too. */
  agentFailure?: AgentFailure | null;
  /** The task's trace as the harness recorded it: train only; null when the executor writes no trace. */
  events: TraceEvent[] | null;
  /** What the agent was given, for the train trace (null for test). */
  task?: AgentTask | null;
  /** The agent's final answer, for the train trace (null for test). */
  answer: unknown;
  /** The agent under test's model calls during this task, metered by the harness. */
  llmCalls: LlmCallRow[];
  /** Set by an executor that may deliver an outcome twice (a queue): the journal writes each delivery once. */
  deliveryId?: string;
}

/** Model calls of tasks that did not finish (aborted, budget): spend all the same. */
export interface UnfinishedSpend {
  kind: "spend";
  llmCalls: LlmCallRow[];
}

export type ExecutorItem = TaskOutcome | UnfinishedSpend;

export interface TaskExecutor {
  /** Runs the batch; items arrive in groups as tasks finish. Stop iterating (or abort) to stop the batch. */
  run(batch: TaskBatch, signal?: AbortSignal): AsyncIterable<ExecutorItem[]>;
}

/**
 * A queue of items fed from callbacks and drained by a `for await`: the bridge between an
 * event-driven pool and the iterator the runner reads.
 */
export class ItemQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private failure: { error: unknown } | null = null;
  private ended = false;
  private wake: (() => void) | null = null;

  push(item: T): void {
    this.items.push(item);
    this.poke();
  }

  end(): void {
    this.ended = true;
    this.poke();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.failure) throw this.failure.error;
      if (this.ended) return;
      await this.arrival();
    }
  }

  /** The items in groups: whatever arrives in the same turn of the event loop is yielded together. */
  async *groups(): AsyncGenerator<T[]> {
    for (;;) {
      if (this.items.length > 0) {
        // The tasks that finished with this one are still being scored in this turn's callbacks.
        await new Promise<void>((resolve) => setImmediate(resolve));
        yield this.items.splice(0);
        continue;
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return;
      await this.arrival();
    }
  }

  private arrival(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }
}
