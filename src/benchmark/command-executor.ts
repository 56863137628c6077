/**
 * The executor for `command` benchmarks: the external program runs the whole batch; tasks it gave
 * no result for run once more, and stay `null` (an infrastructure error) after that.
 */
import type { Clock } from "../clock.ts";
import { AbortedError, errorMessage, HarnessError } from "../errors.ts";
import { LoopbackEndpoint } from "../gateway/endpoint.ts";
import type { CommandAdapter } from "./adapters/types.ts";
import { type ExecutorItem, ItemQueue, type TaskBatch, type TaskExecutor } from "./executor.ts";
import { InfraFailure } from "./failure.ts";
import { type AgentModels, callIds } from "./models.ts";
import { copyToBaselineOnce } from "./traces.ts";
import type { Reward } from "./types.ts";

export interface CommandExecutorOptions {
  adapter: CommandAdapter;
  clock: Clock;
  /** Train only: where the command writes `<dir>/<task_id>/…`, and where the baseline copy goes. */
  traces: { latest: string; baseline: string } | null;
  /** The run's models: each invocation gets a gateway of its own on a loopback port, metered and budgeted. */
  models?: AgentModels;
}

/**
 * The gateway one invocation calls: its calls are attributed to the batch's split and reserved against the
 * run's budget; `refused` holds why a call found no room, if one did.
 */
async function openGateway(
  models: AgentModels,
  batch: TaskBatch,
): Promise<{ endpoint: LoopbackEndpoint; refused: () => string | null }> {
  let refused: string | null = null;
  const endpoint = new LoopbackEndpoint({
    gateway: models.gateway(batch),
    split: batch.split,
    callId: callIds(),
    onCall: (result) => {
      if (result.class === "budget") refused ??= result.reason;
    },
  });
  await endpoint.start();
  return { endpoint, refused: () => refused };
}

export function createCommandExecutor(o: CommandExecutorOptions): TaskExecutor {
  return {
    run(batch, signal) {
      const q = new ItemQueue<ExecutorItem>();
      runBatch(o, batch, q, signal).then(
        () => q.end(),
        (error: unknown) => q.fail(error),
      );
      return q.groups();
    },
  };
}

async function runBatch(
  o: CommandExecutorOptions,
  batch: TaskBatch,
  q: ItemQueue<ExecutorItem>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const traces = batch.split === "train" ? o.traces : null;
  // An external benchmark has no notion of trials: each trial is one more invocation.
  for (const trial of batch.trials) {
    let pending = batch.taskIds;
    let lastError: { message: string; infraClass: string } | null = null;
    const got: Record<string, Reward> = {};
    for (let attempt = 1; attempt <= 2 && pending.length > 0; attempt++) {
      const t0 = o.clock.monotonic();
      const gateway = o.models ? await openGateway(o.models, batch) : null;
      try {
        const out = await o.adapter.runTasks({
          split: batch.split,
          taskIds: pending,
          agentFile: batch.agentFile,
          tracesDir: traces ? traces.latest : null,
          ...(signal ? { signal } : {}),
          ...(gateway ? { gateway: gateway.endpoint } : {}),
        });
        for (const id of pending) got[id] = typeof out[id] === "number" ? Math.min(1, Math.max(0, out[id])) : null;
      } catch (error) {
        if (signal?.aborted) throw new AbortedError("benchmark run aborted", error);
        lastError = {
          message: errorMessage(error),
          infraClass: error instanceof InfraFailure ? error.infraClass : "command failed",
        };
        for (const id of pending) got[id] = null;
      } finally {
        await gateway?.endpoint.close();
      }
      // A call found no room in the budget: what the command made of the refused calls is not the agent's
      // score, so this invocation's results are dropped (its paid calls are in the ledger) and the run stops.
      const refused = gateway?.refused();
      if (refused) throw new HarnessError("BUDGET_EXHAUSTED", refused);
      const durationMs = Math.round((o.clock.monotonic() - t0) / Math.max(1, pending.length));
      const retry = pending.filter((id) => got[id] === null);
      for (const id of pending) {
        if (got[id] === null && attempt < 2) continue;
        if (traces) copyToBaselineOnce(traces.latest, traces.baseline, id);
        q.push({
          kind: "task",
          taskId: id,
          trial,
          reward: got[id] ?? null,
          durationMs,
          error: got[id] === null ? (lastError?.message ?? "no result for this task") : null,
          infraClass: got[id] === null ? (lastError?.infraClass ?? "no result for the task") : null,
          events: null,
          answer: null,
          llmCalls: [],
        });
      }
      pending = retry;
    }
  }
}
