/**
 * The local pool for a queue worker: the same sandbox, timeouts, retries and scoring as a batch, but the
 * tasks arrive one by one and the agent process stays warm between them.
 */
import type { Split } from "../../domain.ts";
import { AbortedError } from "../../errors.ts";
import { type ExecutorItem, ItemQueue, type TaskBatch, type TaskOutcome } from "../executor.ts";
import { specOf } from "../sealed/sandbox.ts";
import { envLoader, type LocalExecutorOptions, runBatch } from "./executor.ts";

/** One agent pool kept open for tasks that arrive one at a time (a queue worker). */
export interface LocalSession {
  /** Runs one task; resolves with its outcome (rejects with AGENT_LOAD_FAILED if the agent does not load). */
  run(taskId: string, trial: number): Promise<TaskOutcome>;
  close(): void;
}

export function openLocalSession(
  o: LocalExecutorOptions,
  /** The batch its tasks belong to: its run and iteration tag the calls they pay for. */
  s: { agentFile: string; agentHash: string; split: Split; runId?: string | null; iteration?: number | null },
  /** Agent hashes already type-checked, shared by a worker's sessions: tsc once per agent version. */
  checked: Set<string> = new Set(),
): LocalSession {
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
    runId: s.runId ?? null,
    iteration: s.iteration ?? null,
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
  runBatch(o, specOf(o.sandbox), batch, q, abort.signal, envLoader(o), checked, session).then(
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
