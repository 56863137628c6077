/**
 * Whose fault a scorer's throw is. An answer that makes the scorer throw is the agent's 0: counted as
 * infrastructure, a hostile answer paused the run on every resume and its candidate was never rejected.
 * Unless the scorer throws on the incumbent's answer for that task too: then the benchmark is broken, and
 * the run pauses naming the task (BENCHMARK_BUG) for the operator to fix the scorer.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { HarnessError } from "../errors.ts";
import type { LlmCallRow } from "../journal/stores.ts";
import type { TaskBatch, TaskExecutor } from "./executor.ts";

export interface ScorerFaultCheck {
  /** The incumbent's agent file content (the last accepted version), or null when there is none. */
  incumbent(): Promise<string | null>;
  hashOf(content: string): string;
  executor: TaskExecutor;
  /** The incumbent's model calls are the run's spend. */
  recordSpend(calls: LlmCallRow[]): void;
}

/** The batch that ran: its agent, split, run tags and what it may still spend. */
export type RanBatch = Omit<TaskBatch, "taskIds" | "trials">;

export function benchmarkBug(taskId: string): HarnessError {
  return new HarnessError(
    "BENCHMARK_BUG",
    `the benchmark's scorer throws on task ${taskId} for the incumbent agent's answer as well: a bug in the benchmark, not the agent's failure; fix the scorer, then \`auto-harness resume\``,
    { exitCode: 2 },
  );
}

/**
 * The check for tasks whose scorer threw on the agent's answer: throws BENCHMARK_BUG when the incumbent's
 * answer breaks the scorer too; otherwise the agent's zeros stand.
 */
export function scorerFaultCheck(c: ScorerFaultCheck) {
  return async (taskIds: string[], ran: RanBatch, signal?: AbortSignal): Promise<void> => {
    if (taskIds.length === 0) return;
    const incumbent = await c.incumbent();
    if (incumbent === null) return;
    // The agent is the incumbent (the loop's train run, the baseline): the scorer fails the agent everyone has.
    if (c.hashOf(incumbent) === ran.agentHash) throw benchmarkBug(taskIds[0]!);
    const dir = mkdtempSync(join(tmpdir(), "auto-harness-incumbent-"));
    try {
      const file = join(dir, `agent${extname(ran.agentFile) || ".ts"}`);
      writeFileSync(file, incumbent);
      const batch = { ...ran, agentFile: file, agentHash: c.hashOf(incumbent), taskIds, trials: [0] };
      for await (const group of c.executor.run(batch, signal)) {
        for (const item of group) {
          c.recordSpend(item.llmCalls);
          if (item.kind === "task" && item.agentFailure === "scorer threw") throw benchmarkBug(item.taskId);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}
