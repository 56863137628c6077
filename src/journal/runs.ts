import type { Split } from "../domain.ts";
import { type Db, fromJson, toJson } from "./db.ts";

export type RunStatus = "running" | "paused" | "stopped" | "done" | "failed" | "abandoned";
export const FINISHED_STATUSES: readonly RunStatus[] = ["done", "failed", "abandoned"];

export type StepStatus = "started" | "done" | "failed";

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
  /** The score history the run belongs to; a rebaseline opens the next one. */
  generation: number;
}

/** A score history: the runs measured against one baseline, by one scorer. */
export interface GenerationRow {
  id: number;
  openedAt: number;
  reason: string;
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

export function stepKey(runId: string, iteration: number, step: string): string {
  return `${runId}:${iteration}:${step}`;
}

type Row = Record<string, unknown>;

const toRun = (r: Row): RunRow => ({
  id: r.id as string,
  status: r.status as RunStatus,
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
  config: fromJson(r.config),
  snapshot: fromJson(r.snapshot),
  state: r.state as string | null,
  iteration: r.iteration as number,
  bestValScore: r.best_val_score as number | null,
  accepted: r.accepted as number,
  rejected: r.rejected as number,
  stopReason: r.stop_reason as string | null,
  lastError: r.last_error as string | null,
  stopRequested: r.stop_requested === 1,
  pid: r.pid as number | null,
  // A read-only reader of a journal from before generations: all its runs are the first.
  generation: (r.generation as number | undefined) ?? 1,
});

const toStep = (r: Row): StepRow => ({
  key: r.key as string,
  runId: r.run_id as string,
  iteration: r.iteration as number,
  step: r.step as string,
  status: r.status as StepStatus,
  attempts: r.attempts as number,
  startedAt: r.started_at as number,
  finishedAt: r.finished_at as number | null,
  outcome: fromJson(r.outcome),
  error: r.error as string | null,
});

const LATEST = "ORDER BY created_at DESC, rowid DESC LIMIT 1";

/** Runs and their generations, steps and transitions (the machine's persisted state), iterations, progress. */
export class RunStore {
  constructor(private readonly db: Db) {}

  transaction<T>(fn: () => T): T {
    return this.db.write(fn);
  }

  // ---- runs

  /** A new run, in the current generation. */
  createRun(id: string, config: unknown, pid: number | null = process.pid): RunRow {
    const now = this.db.now();
    this.db.write(() => {
      this.db
        .prepare(
          `INSERT INTO runs (id, status, created_at, updated_at, config, iteration, accepted, rejected, pid, generation)
           VALUES (?, 'running', ?, ?, ?, 0, 0, 0, ?, ?)`,
        )
        .run(id, now, now, JSON.stringify(config), pid, this.currentGeneration());
    });
    return this.getRun(id)!;
  }

  getRun(id: string): RunRow | undefined {
    const r = this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as Row | undefined;
    return r ? toRun(r) : undefined;
  }

  /** The newest run, of any generation unless one is given. */
  latestRun(generation?: number): RunRow | undefined {
    if (generation !== undefined) return this.runs(generation).at(-1);
    const r = this.db.prepare(`SELECT * FROM runs ${LATEST}`).get() as Row | undefined;
    return r ? toRun(r) : undefined;
  }

  /** Every run, oldest first; only one generation's when given. */
  runs(generation?: number): RunRow[] {
    const all = (this.db.prepare("SELECT * FROM runs ORDER BY created_at, rowid").all() as Row[]).map(toRun);
    return generation === undefined ? all : all.filter((r) => r.generation === generation);
  }

  unfinishedRun(): RunRow | undefined {
    const r = this.db
      .prepare(`SELECT * FROM runs WHERE status NOT IN (${FINISHED_STATUSES.map(() => "?").join(",")}) ${LATEST}`)
      .get(...FINISHED_STATUSES) as Row | undefined;
    return r ? toRun(r) : undefined;
  }

  setRunStatus(
    id: string,
    status: RunStatus,
    fields: { lastError?: string | null; stopReason?: string | null; pid?: number | null } = {},
  ): void {
    const given = (v: unknown) => (v !== undefined ? 1 : 0);
    this.db.write(() => {
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
          this.db.now(),
          given(fields.lastError),
          fields.lastError ?? null,
          given(fields.stopReason),
          fields.stopReason ?? null,
          given(fields.pid),
          fields.pid ?? null,
          id,
        );
    });
  }

  requestStop(id: string): void {
    this.db.write(() => {
      this.db.prepare("UPDATE runs SET stop_requested = 1, updated_at = ? WHERE id = ?").run(this.db.now(), id);
    });
  }

  // ---- generations

  currentGeneration(): number {
    if (!this.db.hasTable("generations")) return 1;
    const r = this.db.prepare("SELECT MAX(id) AS id FROM generations").get() as { id: number | null };
    return r.id ?? 1;
  }

  /** Starts the score history over (a rebaseline): runs from now on belong to the new generation. */
  openGeneration(reason: string): number {
    return this.db.write(() => {
      const id = this.currentGeneration() + 1;
      this.db
        .prepare("INSERT INTO generations (id, opened_at, reason) VALUES (?, ?, ?)")
        .run(id, this.db.now(), reason);
      return id;
    });
  }

  generations(): GenerationRow[] {
    if (!this.db.hasTable("generations")) return [{ id: 1, openedAt: 0, reason: "the first baseline" }];
    return (this.db.prepare("SELECT * FROM generations ORDER BY id").all() as Row[]).map((r) => ({
      id: r.id as number,
      openedAt: r.opened_at as number,
      reason: r.reason as string,
    }));
  }

  // ---- steps and transitions

  /** Marks a step started (or started again on resume/retry); returns its attempt number. */
  stepStarted(runId: string, iteration: number, step: string): number {
    return this.db.write(() => this.markStarted(runId, iteration, step, this.db.now()));
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
    const now = this.db.now();
    const given = (v: unknown) => (v !== undefined ? 1 : 0);
    this.db.write(() => {
      if (t.ended) {
        const { iteration, step, status, outcome, error } = t.ended;
        this.db
          .prepare(
            `INSERT INTO steps (key, run_id, iteration, step, status, attempts, started_at, finished_at, outcome, error)
             VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
             ON CONFLICT(key) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at,
               outcome = excluded.outcome, error = excluded.error`,
          )
          .run(
            stepKey(t.runId, iteration, step),
            t.runId,
            iteration,
            step,
            status,
            now,
            now,
            toJson(outcome),
            error ?? null,
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
          given(t.stopReason),
          t.stopReason ?? null,
          given(t.lastError),
          t.lastError ?? null,
          t.runId,
        );
    });
  }

  getStep(runId: string, iteration: number, step: string): StepRow | undefined {
    const r = this.db.prepare("SELECT * FROM steps WHERE key = ?").get(stepKey(runId, iteration, step)) as
      | Row
      | undefined;
    return r ? toStep(r) : undefined;
  }

  steps(runId: string): StepRow[] {
    return (this.db.prepare("SELECT * FROM steps WHERE run_id = ? ORDER BY started_at, rowid").all(runId) as Row[]).map(
      toStep,
    );
  }

  currentStep(runId: string): StepRow | undefined {
    const r = this.db
      .prepare("SELECT * FROM steps WHERE run_id = ? ORDER BY started_at DESC, rowid DESC LIMIT 1")
      .get(runId) as Row | undefined;
    return r ? toStep(r) : undefined;
  }

  // ---- iterations (one row per finished iteration, for status and the report)

  putIteration(row: IterationRow): void {
    this.db.write(() => {
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
          toJson(row.summary),
          row.finishedAt ?? this.db.now(),
        );
    });
  }

  /** Iteration numbers any run has reached, so a new run numbers on from them. */
  iterationNumbers(): number[] {
    return (this.db.prepare("SELECT DISTINCT iteration FROM steps").all() as { iteration: number }[]).map(
      (r) => r.iteration,
    );
  }

  iterations(runId: string): IterationRow[] {
    return (this.db.prepare("SELECT * FROM iterations WHERE run_id = ? ORDER BY iteration").all(runId) as Row[]).map(
      (r) => ({
        runId: r.run_id as string,
        iteration: r.iteration as number,
        outcome: r.outcome as IterationOutcome,
        valScore: r.val_score as number | null,
        bestBefore: r.best_before as number | null,
        summary: fromJson(r.summary),
        finishedAt: r.finished_at as number,
      }),
    );
  }

  // ---- progress of the benchmark or gate run in flight (counts only)

  putProgress(row: ProgressRow): void {
    this.db.write(() => {
      this.db
        .prepare(
          `INSERT INTO run_progress (run_id, iteration, split, done, total, eta_s, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(run_id) DO UPDATE SET iteration = excluded.iteration, split = excluded.split,
             done = excluded.done, total = excluded.total, eta_s = excluded.eta_s, updated_at = excluded.updated_at`,
        )
        .run(row.runId, row.iteration, row.split, row.done, row.total, row.etaS, row.updatedAt ?? this.db.now());
    });
  }

  progress(runId: string): ProgressRow | undefined {
    if (!this.db.hasTable("run_progress")) return undefined;
    const r = this.db.prepare("SELECT * FROM run_progress WHERE run_id = ?").get(runId) as Row | undefined;
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
}
