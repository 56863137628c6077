import type { Split } from "../domain.ts";
import { type Db, fromJson, toJson } from "./db.ts";

export type LlmRole = "coding" | "agent";

export interface LlmCallRow {
  runId: string | null;
  iteration: number | null;
  stepKey: string | null;
  role: LlmRole;
  model: string;
  promptHash: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  costUsd: number;
  latencyMs: number;
  stopReason: string | null;
  /** Stored so a resumed step can reuse a paid reply; never for test-split agent calls. */
  response: unknown | null;
  /**
   * The call's own id, given where it was paid (an execution of a task and the call's number in it): a call
   * reported twice is written once. Null for calls with no second report (the coding agent's).
   */
  callId?: string | null;
  /** Which split's run paid for it (an agent call); null for the coding agent's. */
  split?: Split | null;
}

export interface Spend {
  totalUsd: number;
  byRole: Record<LlmRole, number>;
  calls: number;
}

/** Every LLM call with its tokens and cost: the spend, and the replay of paid replies after a crash. */
export class LlmLedger {
  constructor(private readonly db: Db) {}

  transaction<T>(fn: () => T): T {
    return this.db.write(fn);
  }

  /** The row's id; 0 when a call of the same call id was recorded before (nothing is written). */
  recordLlmCall(row: LlmCallRow): number {
    return this.db.write(() => this.insert(row, this.db.now()));
  }

  /**
   * A call journaled the moment it is paid, before its task's outcome: safe from a killed process at once, and
   * from a power loss with the next full commit (the task's outcome, at the latest).
   */
  recordPaidCall(row: LlmCallRow): number {
    return this.db.writeSoon(() => this.insert(row, this.db.now()));
  }

  /** How many of the rows were new (a call id recorded before is skipped). */
  recordLlmCalls(rows: LlmCallRow[]): number {
    if (rows.length === 0) return 0;
    const now = this.db.now();
    return this.db.write(() => rows.filter((row) => this.insert(row, now) > 0).length);
  }

  private insert(row: LlmCallRow, now: number): number {
    const info = this.db
      .prepare(
        `INSERT OR IGNORE INTO llm_calls (run_id, iteration, step_key, role, model, prompt_hash, input_tokens,
           output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, latency_ms, stop_reason, response,
           created_at, call_id, split)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        row.runId,
        row.iteration,
        row.stepKey,
        row.role,
        row.model,
        row.promptHash,
        row.inputTokens,
        row.outputTokens,
        row.cacheCreationTokens,
        row.cacheReadTokens,
        row.costUsd,
        row.latencyMs,
        row.stopReason,
        toJson(row.response),
        now,
        row.callId ?? null,
        row.split ?? null,
      );
    return info.changes === 0 ? 0 : Number(info.lastInsertRowid);
  }

  /** A reply already paid for by this step with the same prompt, so a resumed step need not pay twice. */
  findLlmResponse(stepKeyValue: string, promptHash: string): unknown | undefined {
    const r = this.db
      .prepare(
        `SELECT response FROM llm_calls WHERE step_key = ? AND prompt_hash = ? AND response IS NOT NULL
         ORDER BY id DESC LIMIT 1`,
      )
      .get(stepKeyValue, promptHash) as { response: string } | undefined;
    return r ? fromJson(r.response) : undefined;
  }

  llmCalls(runId: string): (LlmCallRow & { id: number; createdAt: number })[] {
    return (
      this.db.prepare("SELECT * FROM llm_calls WHERE run_id = ? ORDER BY id").all(runId) as Record<string, unknown>[]
    ).map((r) => ({
      id: r.id as number,
      runId: r.run_id as string | null,
      iteration: r.iteration as number | null,
      stepKey: r.step_key as string | null,
      role: r.role as LlmRole,
      model: r.model as string,
      promptHash: r.prompt_hash as string | null,
      inputTokens: r.input_tokens as number,
      outputTokens: r.output_tokens as number,
      cacheCreationTokens: r.cache_creation_tokens as number,
      cacheReadTokens: r.cache_read_tokens as number,
      costUsd: r.cost_usd as number,
      latencyMs: r.latency_ms as number,
      stopReason: r.stop_reason as string | null,
      response: fromJson(r.response),
      callId: (r.call_id as string | null) ?? null,
      split: (r.split as Split | null) ?? null,
      createdAt: r.created_at as number,
    }));
  }

  spend(runId: string, iteration?: number): Spend {
    const rows = this.db
      .prepare(
        `SELECT role, SUM(cost_usd) AS usd, COUNT(*) AS n FROM llm_calls
         WHERE run_id = ? AND (? IS NULL OR iteration = ?) GROUP BY role`,
      )
      .all(runId, iteration ?? null, iteration ?? null) as { role: LlmRole; usd: number; n: number }[];
    const byRole: Record<LlmRole, number> = { coding: 0, agent: 0 };
    let calls = 0;
    for (const r of rows) {
      byRole[r.role] = r.usd;
      calls += r.n;
    }
    return { totalUsd: byRole.coding + byRole.agent, byRole, calls };
  }

  /** How many calls the journal holds, every run's and those outside any run. */
  callCount(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM llm_calls").get() as { n: number }).n;
  }

  /** Spend of LLM calls made outside any run (the baseline, the CLI's benchmark and gate commands). */
  spendOutsideRuns(): number {
    const r = this.db.prepare("SELECT SUM(cost_usd) AS usd FROM llm_calls WHERE run_id IS NULL").get() as {
      usd: number | null;
    };
    return r.usd ?? 0;
  }
}
