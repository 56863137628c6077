import { createHash } from "node:crypto";
import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Split } from "../domain.ts";
import { classifyFault, HarnessError, journalCorrupt } from "../errors.ts";
import { redact } from "../secrets.ts";
import { MIGRATIONS } from "./migrations.ts";

export type RunStatus = "running" | "paused" | "stopped" | "done" | "failed" | "abandoned";
export const FINISHED_STATUSES: readonly RunStatus[] = ["done", "failed", "abandoned"];

export type StepStatus = "started" | "done" | "failed";
export type LlmRole = "coding" | "agent";

export interface RunRow {
  id: string;
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  config: unknown;
  snapshot: unknown | null;
  state: string | null;
  iteration: number;
  bestValScore: number | null;
  accepted: number;
  rejected: number;
  stopReason: string | null;
  lastError: string | null;
  stopRequested: boolean;
  pid: number | null;
}

export interface StepRow {
  key: string;
  runId: string;
  iteration: number;
  step: string;
  status: StepStatus;
  attempts: number;
  startedAt: number;
  finishedAt: number | null;
  outcome: unknown | null;
  error: string | null;
}

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
}

export interface Spend {
  totalUsd: number;
  byRole: Record<LlmRole, number>;
  calls: number;
}

/** What a transition writes: the machine's new state, and the step that just ended, in one transaction. */
export interface Transition {
  runId: string;
  snapshot: unknown;
  state: string;
  iteration: number;
  bestValScore: number | null;
  accepted: number;
  rejected: number;
  status?: RunStatus;
  stopReason?: string | null;
  lastError?: string | null;
  ended?: { iteration: number; step: string; status: "done" | "failed"; outcome?: unknown; error?: string };
  /** The step the new state runs, marked started in the same transaction (one fsync per transition). */
  started?: { iteration: number; step: string };
}

export function stepKey(runId: string, iteration: number, step: string): string {
  return `${runId}:${iteration}:${step}`;
}

const json = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));
const parse = (text: unknown): unknown => (typeof text === "string" ? JSON.parse(text) : null);

interface RunRecord {
  id: string;
  status: RunStatus;
  created_at: number;
  updated_at: number;
  config: string;
  snapshot: string | null;
  state: string | null;
  iteration: number;
  best_val_score: number | null;
  accepted: number;
  rejected: number;
  stop_reason: string | null;
  last_error: string | null;
  stop_requested: number;
  pid: number | null;
}

function toRun(r: RunRecord): RunRow {
  return {
    id: r.id,
    status: r.status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    config: parse(r.config),
    snapshot: parse(r.snapshot),
    state: r.state,
    iteration: r.iteration,
    bestValScore: r.best_val_score,
    accepted: r.accepted,
    rejected: r.rejected,
    stopReason: r.stop_reason,
    lastError: r.last_error,
    stopRequested: r.stop_requested === 1,
    pid: r.pid,
  };
}

interface StepRecord {
  key: string;
  run_id: string;
  iteration: number;
  step: string;
  status: StepStatus;
  attempts: number;
  started_at: number;
  finished_at: number | null;
  outcome: string | null;
  error: string | null;
}

function toStep(r: StepRecord): StepRow {
  return {
    key: r.key,
    runId: r.run_id,
    iteration: r.iteration,
    step: r.step,
    status: r.status,
    attempts: r.attempts,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    outcome: parse(r.outcome),
    error: r.error,
  };
}

/**
 * The run's source of truth (DESIGN §4). Writes are short synchronous IMMEDIATE transactions:
 * better-sqlite3 transactions cannot span an await, so callers do async work first and write its outcome here.
 */
export class Journal {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly now: () => number;

  private constructor(path: string, db: Database.Database, now: () => number) {
    this.path = path;
    this.db = db;
    this.now = now;
  }

  static open(path: string, options: { readonly?: boolean; now?: () => number } = {}): Journal {
    const readonly = options.readonly ?? false;
    if (!readonly) mkdirSync(dirname(path), { recursive: true });
    refuseTruncatedWithWal(path);
    let db: Database.Database | null = null;
    try {
      db = new Database(path, { readonly, fileMustExist: readonly, timeout: 5000 });
      if (!readonly) {
        db.pragma("journal_mode = WAL");
        // WAL's default NORMAL can roll back the last commits on power loss.
        db.pragma("synchronous = FULL");
        const check = db.pragma("integrity_check", { simple: true });
        if (check !== "ok")
          throw journalCorrupt(path, `integrity_check: ${String(check)}`, "failed its integrity check");
        migrate(db);
      }
      db.pragma("foreign_keys = ON");
    } catch (cause) {
      db?.close();
      if (cause instanceof HarnessError) throw cause;
      // A truncated file or a bad header is damage, with recovery steps; a full disk pauses, never "a bug".
      const code = (cause as { code?: unknown }).code;
      const sqlite = typeof code === "string" && code.startsWith("SQLITE_") && !/^SQLITE_(BUSY|LOCKED)/.test(code);
      throw classifyFault(cause, path) ?? (sqlite ? journalCorrupt(path, cause, "cannot be opened") : cause);
    }
    redactWrites(db);
    return new Journal(path, db, options.now ?? Date.now);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  integrityCheck(): string {
    return String(this.db.pragma("integrity_check", { simple: true }));
  }

  schemaVersion(): number {
    return Number(this.db.pragma("user_version", { simple: true }));
  }

  /** Several writes in one transaction: one fsync for a group of task results that finished together. */
  transaction<T>(fn: () => T): T {
    return this.write(fn);
  }

  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (error) {
      // Disk full, read-only, I/O error or damage: typed where it happens, so the run pauses with the fix.
      throw classifyFault(error, this.path) ?? error;
    }
  }

  // ---- runs

  createRun(id: string, config: unknown, pid: number | null = process.pid): RunRow {
    const now = this.now();
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO runs (id, status, created_at, updated_at, config, iteration, accepted, rejected, pid)
           VALUES (?, 'running', ?, ?, ?, 0, 0, 0, ?)`,
        )
        .run(id, now, now, JSON.stringify(config), pid);
    });
    return this.getRun(id)!;
  }

  getRun(id: string): RunRow | undefined {
    const r = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as RunRecord | undefined;
    return r ? toRun(r) : undefined;
  }

  latestRun(): RunRow | undefined {
    const r = this.db.prepare("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1").get() as
      | RunRecord
      | undefined;
    return r ? toRun(r) : undefined;
  }

  // ---- process groups (benchmark commands), reaped on the next start if the daemon died

  addProcessGroup(row: ProcessGroupRow): void {
    this.write(() => {
      this.db
        .prepare(
          `INSERT OR REPLACE INTO process_groups (pgid, start_ticks, owner_pid, label, created_at)
           VALUES (?, ?, ?, ?, ?)`,
        )
        .run(row.pgid, row.startTicks, row.ownerPid, row.label, this.now());
    });
  }

  removeProcessGroup(pgid: number): void {
    this.write(() => {
      this.db.prepare("DELETE FROM process_groups WHERE pgid = ?").run(pgid);
    });
  }

  processGroups(): ProcessGroupRow[] {
    return (
      this.db.prepare("SELECT * FROM process_groups ORDER BY created_at").all() as {
        pgid: number;
        start_ticks: number | null;
        owner_pid: number;
        label: string;
      }[]
    ).map((r) => ({ pgid: r.pgid, startTicks: r.start_ticks, ownerPid: r.owner_pid, label: r.label }));
  }

  /** Every run, oldest first. */
  runs(): RunRow[] {
    return (this.db.prepare("SELECT * FROM runs ORDER BY created_at, rowid").all() as RunRecord[]).map(toRun);
  }

  unfinishedRun(): RunRow | undefined {
    const r = this.db
      .prepare(
        `SELECT * FROM runs WHERE status NOT IN (${FINISHED_STATUSES.map(() => "?").join(",")})
         ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      )
      .get(...FINISHED_STATUSES) as RunRecord | undefined;
    return r ? toRun(r) : undefined;
  }

  setRunStatus(
    id: string,
    status: RunStatus,
    fields: { lastError?: string | null; stopReason?: string | null; pid?: number | null } = {},
  ): void {
    this.write(() => {
      this.db
        .prepare(
          `UPDATE runs SET status = ?, updated_at = ?,
             last_error = CASE WHEN ? THEN ? ELSE last_error END,
             stop_reason = CASE WHEN ? THEN ? ELSE stop_reason END,
             pid = CASE WHEN ? THEN ? ELSE pid END
           WHERE id = ?`,
        )
        .run(
          status,
          this.now(),
          fields.lastError !== undefined ? 1 : 0,
          fields.lastError ?? null,
          fields.stopReason !== undefined ? 1 : 0,
          fields.stopReason ?? null,
          fields.pid !== undefined ? 1 : 0,
          fields.pid ?? null,
          id,
        );
    });
  }

  requestStop(id: string): void {
    this.write(() => {
      this.db.prepare("UPDATE runs SET stop_requested = 1, updated_at = ? WHERE id = ?").run(this.now(), id);
    });
  }

  // ---- steps and transitions

  /** Marks a step started (or started again on resume/retry); returns its attempt number. */
  stepStarted(runId: string, iteration: number, step: string): number {
    return this.write(() => this.markStarted(runId, iteration, step, this.now()));
  }

  // The last error is kept on a re-start so a retry can say what it is retrying.
  private markStarted(runId: string, iteration: number, step: string, now: number): number {
    const key = stepKey(runId, iteration, step);
    this.db
      .prepare(
        `INSERT INTO steps (key, run_id, iteration, step, status, attempts, started_at)
         VALUES (?, ?, ?, ?, 'started', 1, ?)
         ON CONFLICT(key) DO UPDATE SET status = 'started', attempts = attempts + 1, started_at = excluded.started_at,
           finished_at = NULL, outcome = NULL`,
      )
      .run(key, runId, iteration, step, now);
    const row = this.db.prepare("SELECT attempts FROM steps WHERE key = ?").get(key) as { attempts: number };
    return row.attempts;
  }

  /** The step's outcome, its status and the machine's new state, in one transaction. */
  commitTransition(t: Transition): void {
    const now = this.now();
    this.write(() => {
      if (t.ended) {
        const key = stepKey(t.runId, t.ended.iteration, t.ended.step);
        this.db
          .prepare(
            `INSERT INTO steps (key, run_id, iteration, step, status, attempts, started_at, finished_at, outcome, error)
             VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
             ON CONFLICT(key) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
               outcome = excluded.outcome, error = excluded.error`,
          )
          .run(
            key,
            t.runId,
            t.ended.iteration,
            t.ended.step,
            t.ended.status,
            now,
            now,
            json(t.ended.outcome),
            t.ended.error ?? null,
          );
      }
      if (t.started) this.markStarted(t.runId, t.started.iteration, t.started.step, now);
      this.db
        .prepare(
          `UPDATE runs SET snapshot = ?, state = ?, iteration = ?, best_val_score = ?, accepted = ?, rejected = ?,
             status = COALESCE(?, status), updated_at = ?,
             stop_reason = CASE WHEN ? THEN ? ELSE stop_reason END,
             last_error = CASE WHEN ? THEN ? ELSE last_error END
           WHERE id = ?`,
        )
        .run(
          JSON.stringify(t.snapshot),
          t.state,
          t.iteration,
          t.bestValScore,
          t.accepted,
          t.rejected,
          t.status ?? null,
          now,
          t.stopReason !== undefined ? 1 : 0,
          t.stopReason ?? null,
          t.lastError !== undefined ? 1 : 0,
          t.lastError ?? null,
          t.runId,
        );
    });
  }

  getStep(runId: string, iteration: number, step: string): StepRow | undefined {
    const r = this.db.prepare("SELECT * FROM steps WHERE key = ?").get(stepKey(runId, iteration, step)) as
      | StepRecord
      | undefined;
    return r ? toStep(r) : undefined;
  }

  steps(runId: string): StepRow[] {
    return (
      this.db.prepare("SELECT * FROM steps WHERE run_id = ? ORDER BY started_at, rowid").all(runId) as StepRecord[]
    ).map(toStep);
  }

  currentStep(runId: string): StepRow | undefined {
    const r = this.db
      .prepare("SELECT * FROM steps WHERE run_id = ? ORDER BY started_at DESC, rowid DESC LIMIT 1")
      .get(runId) as StepRecord | undefined;
    return r ? toStep(r) : undefined;
  }

  // ---- task results

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
    const now = this.now();
    return this.write(() => {
      if (deliveryId !== undefined) {
        const fresh = this.db
          .prepare("INSERT OR IGNORE INTO task_deliveries (id, created_at) VALUES (?, ?)")
          .run(deliveryId, now);
        if (fresh.changes === 0) return false;
      }
      for (const call of calls) this.insertLlmCall(call, now);
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

  // ---- LLM calls

  recordLlmCall(row: LlmCallRow): number {
    return this.write(() => this.insertLlmCall(row, this.now()));
  }

  recordLlmCalls(rows: LlmCallRow[]): void {
    if (rows.length === 0) return;
    const now = this.now();
    this.write(() => {
      for (const row of rows) this.insertLlmCall(row, now);
    });
  }

  private insertLlmCall(row: LlmCallRow, now: number): number {
    const info = this.db
      .prepare(
        `INSERT INTO llm_calls (run_id, iteration, step_key, role, model, prompt_hash, input_tokens, output_tokens,
           cache_creation_tokens, cache_read_tokens, cost_usd, latency_ms, stop_reason, response, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
        json(row.response),
        now,
      );
    return Number(info.lastInsertRowid);
  }

  /** A reply already paid for by this step with the same prompt, so a resumed step need not pay twice. */
  findLlmResponse(stepKeyValue: string, promptHash: string): unknown | undefined {
    const r = this.db
      .prepare(
        `SELECT response FROM llm_calls WHERE step_key = ? AND prompt_hash = ? AND response IS NOT NULL
         ORDER BY id DESC LIMIT 1`,
      )
      .get(stepKeyValue, promptHash) as { response: string } | undefined;
    return r ? parse(r.response) : undefined;
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
      response: parse(r.response),
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

  // ---- steering versions

  /** The latest accepted version of a steering file, or undefined before the first is pinned. */
  acceptedSteering(path: string): SteeringVersion | undefined {
    const r = this.db
      .prepare("SELECT * FROM steering_versions WHERE path = ? AND status = 'accepted' ORDER BY id DESC LIMIT 1")
      .get(path) as SteeringRecord | undefined;
    return r ? toSteering(r) : undefined;
  }

  steeringVersions(path: string): SteeringVersion[] {
    const rows = this.db.prepare("SELECT * FROM steering_versions WHERE path = ? ORDER BY id").all(path);
    return (rows as SteeringRecord[]).map(toSteering);
  }

  recordSteering(row: Omit<SteeringVersion, "createdAt">): void {
    this.write(() => {
      this.db
        .prepare("INSERT INTO steering_versions (path, sha256, status, commit_sha, created_at) VALUES (?, ?, ?, ?, ?)")
        .run(row.path, row.sha256, row.status, row.commit, this.now());
    });
  }

  // ---- iterations (one row per finished iteration, for status and the report)

  putIteration(row: IterationRow): void {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO iterations (run_id, iteration, outcome, val_score, best_before, summary, finished_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(run_id, iteration) DO UPDATE SET outcome = excluded.outcome, val_score = excluded.val_score,
             best_before = excluded.best_before, summary = excluded.summary, finished_at = excluded.finished_at`,
        )
        .run(
          row.runId,
          row.iteration,
          row.outcome,
          row.valScore,
          row.bestBefore,
          json(row.summary),
          row.finishedAt ?? this.now(),
        );
    });
  }

  /**
   * Forgets every score the old scorer produced (a rebaseline): the task results and the gate's per-task
   * history of the incumbent. Returns how many task results went.
   */
  clearScores(): number {
    return this.write(() => {
      this.db.prepare("DELETE FROM gate_history").run();
      this.db.prepare("DELETE FROM gate_history_runs").run();
      return this.db.prepare("DELETE FROM task_results").run().changes;
    });
  }

  // ---- facts about the experiment outside any run (the baseline's spend)

  putFact(key: string, value: unknown): void {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO experiment_facts (key, value, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        )
        .run(key, JSON.stringify(value), this.now());
    });
  }

  fact(key: string): unknown {
    // A read-only reader of a journal not yet migrated this far (status during an upgrade) finds no table.
    if (!this.hasTable("experiment_facts")) return undefined;
    const r = this.db.prepare("SELECT value FROM experiment_facts WHERE key = ?").get(key) as
      | { value: string }
      | undefined;
    return r ? JSON.parse(r.value) : undefined;
  }

  private hasTable(name: string): boolean {
    return this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  /** Spend of LLM calls made outside any run (the baseline, the CLI's benchmark and gate commands). */
  spendOutsideRuns(): number {
    const r = this.db.prepare("SELECT SUM(cost_usd) AS usd FROM llm_calls WHERE run_id IS NULL").get() as {
      usd: number | null;
    };
    return r.usd ?? 0;
  }

  // ---- progress of the benchmark or gate run in flight (counts only)

  putProgress(row: ProgressRow): void {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO run_progress (run_id, iteration, split, done, total, eta_s, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(run_id) DO UPDATE SET iteration = excluded.iteration, split = excluded.split,
             done = excluded.done, total = excluded.total, eta_s = excluded.eta_s, updated_at = excluded.updated_at`,
        )
        .run(row.runId, row.iteration, row.split, row.done, row.total, row.etaS, row.updatedAt ?? this.now());
    });
  }

  progress(runId: string): ProgressRow | undefined {
    if (!this.hasTable("run_progress")) return undefined;
    const r = this.db.prepare("SELECT * FROM run_progress WHERE run_id = ?").get(runId) as
      | Record<string, unknown>
      | undefined;
    if (!r) return undefined;
    return {
      runId: r.run_id as string,
      iteration: r.iteration as number | null,
      split: r.split as Split,
      done: r.done as number,
      total: r.total as number,
      etaS: r.eta_s as number | null,
      updatedAt: r.updated_at as number,
    };
  }

  /** Iteration numbers any run has reached, so a new run numbers on from them. */
  iterationNumbers(): number[] {
    return (this.db.prepare("SELECT DISTINCT iteration FROM steps").all() as { iteration: number }[]).map(
      (r) => r.iteration,
    );
  }

  iterations(runId: string): IterationRow[] {
    return (
      this.db.prepare("SELECT * FROM iterations WHERE run_id = ? ORDER BY iteration").all(runId) as Record<
        string,
        unknown
      >[]
    ).map((r) => ({
      runId: r.run_id as string,
      iteration: r.iteration as number,
      outcome: r.outcome as IterationOutcome,
      valScore: r.val_score as number | null,
      bestBefore: r.best_before as number | null,
      summary: parse(r.summary),
      finishedAt: r.finished_at as number,
    }));
  }

  // ---- the gate's records

  gateHistory(split: Split): TaskHistory {
    const rows = this.db.prepare("SELECT task_id, s, f FROM gate_history WHERE split = ?").all(split) as {
      task_id: string;
      s: number;
      f: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.task_id, { s: r.s, f: r.f }]));
  }

  /**
   * Adds every journaled result of `agentHash` not counted yet to the incumbent history (each run once,
   * however often the runner reused it). `splitOf` maps a task to its gate split; null leaves it out.
   */
  foldIntoHistory(agentHash: string, splitOf: (taskId: string) => Split | null): number {
    return this.write(() => {
      const rows = this.db
        .prepare(
          `SELECT r.split, r.task_id, r.trial, r.reward FROM task_results r
           LEFT JOIN gate_history_runs h ON h.agent_hash = r.agent_hash AND h.split = r.split
             AND h.task_id = r.task_id AND h.trial = r.trial
           WHERE r.agent_hash = ? AND h.agent_hash IS NULL`,
        )
        .all(agentHash) as { split: Split; task_id: string; trial: number; reward: number | null }[];
      const mark = this.db.prepare(
        "INSERT OR IGNORE INTO gate_history_runs (agent_hash, split, task_id, trial) VALUES (?, ?, ?, ?)",
      );
      const add = this.db.prepare(
        `INSERT INTO gate_history (split, task_id, s, f) VALUES (?, ?, ?, ?)
         ON CONFLICT(split, task_id) DO UPDATE SET s = s + excluded.s, f = f + excluded.f`,
      );
      let added = 0;
      for (const r of rows) {
        mark.run(agentHash, r.split, r.task_id, r.trial);
        const split = splitOf(r.task_id);
        if (r.reward === null || split === null) continue;
        add.run(split, r.task_id, r.reward, 1 - r.reward);
        added += 1;
      }
      return added;
    });
  }

  gateDecision(runId: string, iteration: number): GateDecisionRow | undefined {
    const r = this.db
      .prepare("SELECT * FROM gate_decisions WHERE run_id = ? AND iteration = ?")
      .get(runId, iteration) as Record<string, unknown> | undefined;
    return r ? toGateDecision(r) : undefined;
  }

  gateDecisions(runId?: string): GateDecisionRow[] {
    const rows = (
      runId === undefined
        ? this.db.prepare("SELECT * FROM gate_decisions ORDER BY created_at, iteration").all()
        : this.db.prepare("SELECT * FROM gate_decisions WHERE run_id = ? ORDER BY iteration").all(runId)
    ) as Record<string, unknown>[];
    return rows.map(toGateDecision);
  }

  /** Starts a gate's record; a resumed gate finds the one it started. */
  startGateDecision(
    row: Pick<
      GateDecisionRow,
      "runId" | "iteration" | "rule" | "orderSeed" | "candidateHash" | "incumbentHash" | "setup"
    >,
  ): GateDecisionRow {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO gate_decisions (run_id, iteration, rule, order_seed, candidate_hash, incumbent_hash, setup, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?) ON CONFLICT(run_id, iteration) DO NOTHING`,
        )
        .run(
          row.runId,
          row.iteration,
          row.rule,
          row.orderSeed,
          row.candidateHash,
          row.incumbentHash,
          JSON.stringify(row.setup),
          this.now(),
        );
    });
    return this.gateDecision(row.runId, row.iteration)!;
  }

  /** A different candidate at the same iteration (the step re-ran the edit): start its gate afresh. */
  resetGateDecision(runId: string, iteration: number): void {
    this.write(() => {
      this.db.prepare("DELETE FROM gate_results WHERE run_id = ? AND iteration = ?").run(runId, iteration);
      this.db.prepare("DELETE FROM gate_decisions WHERE run_id = ? AND iteration = ?").run(runId, iteration);
    });
  }

  gateResults(runId: string, iteration: number): GateResultRow[] {
    return (
      this.db
        .prepare("SELECT * FROM gate_results WHERE run_id = ? AND iteration = ? ORDER BY seq")
        .all(runId, iteration) as Record<string, unknown>[]
    ).map((r) => ({
      kind: r.kind as GateResultRow["kind"],
      taskId: r.task_id as string,
      trial: r.trial as number,
      reward: r.reward as number | null,
      incumbentReward: r.incumbent_reward as number | null,
    }));
  }

  appendGateResults(runId: string, iteration: number, rows: GateResultRow[]): void {
    if (rows.length === 0) return;
    this.write(() => {
      const next = this.db
        .prepare("SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM gate_results WHERE run_id = ? AND iteration = ?")
        .get(runId, iteration) as { n: number };
      const insert = this.db.prepare(
        `INSERT INTO gate_results (run_id, iteration, seq, kind, task_id, trial, reward, incumbent_reward)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      rows.forEach((r, i) => {
        insert.run(runId, iteration, next.n + i, r.kind, r.taskId, r.trial, r.reward, r.incumbentReward);
      });
    });
  }

  /** The decision, and (accepted) the incumbent histories it leaves, in one transaction. */
  finishGateDecision(
    runId: string,
    iteration: number,
    // The decided row's fields, stated once in GateDecisionRow.
    d: Pick<
      GateDecisionRow,
      "pGood" | "pBad" | "expectedGain" | "testRuns" | "infraErrors" | "valScore" | "looks" | "output"
    > & {
      accept: boolean;
      stage: string;
    },
    history?: { test: TaskHistory; train: TaskHistory; fold: string[] },
  ): void {
    const now = this.now();
    this.write(() => {
      this.db
        .prepare(
          `UPDATE gate_decisions SET status = 'decided', accept = ?, stage = ?, p_good = ?, p_bad = ?, expected_gain = ?,
             test_runs = ?, infra_errors = ?, val_score = ?, looks = ?, output = ?, decided_at = ?
           WHERE run_id = ? AND iteration = ?`,
        )
        .run(
          d.accept ? 1 : 0,
          d.stage,
          d.pGood,
          d.pBad,
          d.expectedGain,
          d.testRuns,
          d.infraErrors,
          d.valScore,
          json(d.looks),
          json(d.output),
          now,
          runId,
          iteration,
        );
      if (!history) return;
      const put = this.db.prepare(
        `INSERT INTO gate_history (split, task_id, s, f) VALUES (?, ?, ?, ?)
         ON CONFLICT(split, task_id) DO UPDATE SET s = excluded.s, f = excluded.f`,
      );
      for (const [split, h] of [
        ["test", history.test],
        ["train", history.train],
      ] as const)
        for (const [id, c] of Object.entries(h)) put.run(split, id, c.s, c.f);
      // Everything these agents ran is in the history now: never count it twice.
      const mark = this.db.prepare(
        `INSERT OR IGNORE INTO gate_history_runs (agent_hash, split, task_id, trial)
         SELECT agent_hash, split, task_id, trial FROM task_results WHERE agent_hash = ?`,
      );
      for (const hash of history.fold) mark.run(hash);
    });
  }

  /** Held-out task runs the gates of a run have spent. */
  gateTestRuns(runId: string): number {
    const r = this.db
      .prepare(
        "SELECT COALESCE(SUM(test_runs), 0) AS n, COUNT(*) AS k FROM gate_decisions WHERE run_id = ? AND status = 'decided'",
      )
      .get(runId) as { n: number; k: number };
    return r.n;
  }

  // ---- pinned records: the journal's copy is the truth, the workspace file a view of it

  pin(name: string, content: string): void {
    this.write(() => {
      this.db
        .prepare(
          `INSERT INTO pinned (name, content, sha256, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT(name) DO UPDATE SET content = excluded.content, sha256 = excluded.sha256, updated_at = excluded.updated_at`,
        )
        .run(name, content, sha256(content), this.now());
    });
  }

  pinned(name: string): { content: string; sha256: string } | undefined {
    return this.db.prepare("SELECT content, sha256 FROM pinned WHERE name = ?").get(name) as
      | { content: string; sha256: string }
      | undefined;
  }
}

export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

function toGateDecision(r: Record<string, unknown>): GateDecisionRow {
  return {
    runId: r.run_id as string,
    iteration: r.iteration as number,
    rule: r.rule as string,
    orderSeed: r.order_seed as number,
    candidateHash: r.candidate_hash as string,
    incumbentHash: r.incumbent_hash as string,
    setup: parse(r.setup),
    status: r.status as GateDecisionRow["status"],
    accept: r.accept === null ? null : r.accept === 1,
    stage: r.stage as string | null,
    pGood: r.p_good as number | null,
    pBad: r.p_bad as number | null,
    expectedGain: r.expected_gain as number | null,
    testRuns: r.test_runs as number,
    infraErrors: r.infra_errors as number,
    valScore: r.val_score as number | null,
    looks: parse(r.looks),
    output: parse(r.output),
    createdAt: r.created_at as number,
    decidedAt: r.decided_at as number | null,
  };
}

/** Pass/fail pseudo-counts of the incumbent lineage per task (the gate's memory of what the incumbent does). */
export type TaskHistory = Record<string, { s: number; f: number }>;

export interface GateDecisionRow {
  runId: string;
  iteration: number;
  rule: string;
  orderSeed: number;
  candidateHash: string;
  incumbentHash: string;
  setup: unknown;
  status: "running" | "decided";
  accept: boolean | null;
  stage: string | null;
  pGood: number | null;
  pBad: number | null;
  expectedGain: number | null;
  testRuns: number;
  infraErrors: number;
  valScore: number | null;
  looks: unknown;
  output: unknown;
  createdAt: number;
  decidedAt: number | null;
}

export interface GateResultRow {
  kind: "candidate" | "pair";
  taskId: string;
  /** Trial of a first-pass run, or the pair's index. */
  trial: number;
  reward: number | null;
  incumbentReward: number | null;
}

/** The experiment fact holding a rejected candidate's diff (kept for the report; the file itself is restored). */
export const rejectedDiffKey = (runId: string, iteration: number): string => `rejected_diff:${runId}:${iteration}`;

/** Tasks done of a benchmark or gate run in flight; no ids, so a test split's stays private. */
export interface ProgressRow {
  runId: string;
  iteration: number | null;
  split: Split;
  done: number;
  total: number;
  etaS: number | null;
  updatedAt?: number;
}

/** A process group the daemon started; the leader's start time tells a reused number apart. */
export interface ProcessGroupRow {
  pgid: number;
  startTicks: number | null;
  ownerPid: number;
  label: string;
}

export type IterationOutcome = "accepted" | "rejected" | "no_change";

export interface IterationRow {
  runId: string;
  iteration: number;
  outcome: IterationOutcome;
  valScore: number | null;
  bestBefore: number | null;
  summary: unknown;
  finishedAt?: number;
}

function toTaskResult(r: Record<string, unknown>): TaskResultRow {
  return {
    agentHash: r.agent_hash as string,
    split: r.split as Split,
    taskId: r.task_id as string,
    trial: r.trial as number,
    reward: r.reward as number | null,
    durationMs: r.duration_ms as number | null,
    error: r.error as string | null,
    runId: r.run_id as string | null,
  };
}

function sizeOf(file: string): number | null {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}

/**
 * A zero-length journal with a WAL beside it lost its main file: opening it would start an empty journal and
 * truncate the WAL, the last copy of what it held. Refused, and the WAL left untouched.
 */
function refuseTruncatedWithWal(path: string): void {
  const wal = sizeOf(`${path}-wal`);
  if (sizeOf(path) === 0 && wal !== null && wal > 0) {
    throw journalCorrupt(
      path,
      `the file is empty (0 bytes) while ${path}-wal holds ${wal} bytes`,
      "lost its contents; it was not re-created and its WAL was left untouched",
    );
  }
}

export interface SteeringVersion {
  path: string;
  sha256: string;
  status: "accepted" | "refused";
  commit: string | null;
  createdAt: number;
}

interface SteeringRecord {
  path: string;
  sha256: string;
  status: "accepted" | "refused";
  commit_sha: string | null;
  created_at: number;
}

const toSteering = (r: SteeringRecord): SteeringVersion => ({
  path: r.path,
  sha256: r.sha256,
  status: r.status,
  commit: r.commit_sha,
  createdAt: r.created_at,
});

function migrate(db: Database.Database): void {
  const current = Number(db.pragma("user_version", { simple: true }));
  if (current > MIGRATIONS.length) {
    throw new HarnessError(
      "JOURNAL_CORRUPT",
      `journal schema version ${current} is newer than this auto-harness knows (${MIGRATIONS.length}); upgrade auto-harness`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

const redactParam = (p: unknown): unknown =>
  typeof p === "string"
    ? redact(p)
    : p !== null && typeof p === "object" && !Buffer.isBuffer(p)
      ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k, typeof v === "string" ? redact(v) : v]))
      : p;

/**
 * Every string bound into a statement passes through the secrets filter: error texts, LLM replies and
 * snapshots come from outside (an endpoint echoing the Authorization header), so the journal file never holds the key.
 */
function redactWrites(db: Database.Database): void {
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const statement = prepare(sql);
    if (statement.reader) return statement;
    const run = statement.run.bind(statement);
    statement.run = ((...params: unknown[]) => run(...params.map(redactParam))) as typeof statement.run;
    return statement;
  }) as typeof db.prepare;
}
