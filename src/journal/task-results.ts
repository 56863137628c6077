import type { Split } from "../domain.ts";
import type { Db } from "./db.ts";
import type { LlmCallRow, LlmLedger } from "./ledger.ts";

export interface TaskResultRow {
  agentHash: string;
  split: Split;
  taskId: string;
  trial: number;
  reward: number | null;
  durationMs: number | null;
  /** Kept for train only: a test task's error text could carry its content. */
  error: string | null;
  runId: string | null;
}

const toTaskResult = (r: Record<string, unknown>): TaskResultRow => ({
  agentHash: r.agent_hash as string,
  split: r.split as Split,
  taskId: r.task_id as string,
  trial: r.trial as number,
  reward: r.reward as number | null,
  durationMs: r.duration_ms as number | null,
  error: r.error as string | null,
  runId: r.run_id as string | null,
});

/** Task results keyed by (agent hash, split, task, trial): what lets a re-run step reuse finished tasks. */
export class TaskResultStore {
  constructor(
    private readonly db: Db,
    private readonly ledger: LlmLedger,
  ) {}

  transaction<T>(fn: () => T): T {
    return this.db.write(fn);
  }

  getTaskResult(agentHash: string, split: Split, taskId: string, trial = 0): TaskResultRow | undefined {
    const r = this.db
      .prepare("SELECT * FROM task_results WHERE agent_hash = ? AND split = ? AND task_id = ? AND trial = ?")
      .get(agentHash, split, taskId, trial) as Record<string, unknown> | undefined;
    return r ? toTaskResult(r) : undefined;
  }

  taskResults(agentHash: string, split: Split): TaskResultRow[] {
    return (
      this.db
        .prepare("SELECT * FROM task_results WHERE agent_hash = ? AND split = ? ORDER BY task_id, trial")
        .all(agentHash, split) as Record<string, unknown>[]
    ).map(toTaskResult);
  }

  /**
   * One task's result, with the agent's LLM calls made since the last one, in one transaction. A result that
   * came through a queue carries its delivery id: a second delivery of it writes nothing and returns false.
   */
  putTaskResult(row: TaskResultRow, calls: LlmCallRow[] = [], deliveryId?: string): boolean {
    const now = this.db.now();
    return this.db.write(() => {
      if (deliveryId !== undefined) {
        const fresh = this.db
          .prepare("INSERT OR IGNORE INTO task_deliveries (id, created_at) VALUES (?, ?)")
          .run(deliveryId, now);
        if (fresh.changes === 0) return false;
      }
      this.ledger.recordLlmCalls(calls);
      this.db
        .prepare(
          `INSERT INTO task_results (agent_hash, split, task_id, trial, reward, duration_ms, error, run_id, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(agent_hash, split, task_id, trial) DO UPDATE SET reward = excluded.reward,
             duration_ms = excluded.duration_ms, error = excluded.error, run_id = excluded.run_id,
             created_at = excluded.created_at`,
        )
        .run(
          row.agentHash,
          row.split,
          row.taskId,
          row.trial,
          row.reward,
          row.durationMs,
          row.split === "test" ? null : row.error,
          row.runId,
          now,
        );
      return true;
    });
  }

  /** Forgets every result (a rebaseline: the old scorer scored them); returns how many went. */
  clearTaskResults(): number {
    return this.db.write(() => this.db.prepare("DELETE FROM task_results").run().changes);
  }
}
