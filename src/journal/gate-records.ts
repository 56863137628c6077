import type { Split } from "../domain.ts";
import { type Db, fromJson, toJson } from "./db.ts";

/** Pass/fail pseudo-counts of the incumbent lineage per task (the gate's memory of what the incumbent does). */
export type TaskHistory = Record<string, { s: number; f: number }>;

/**
 * One gate decision. The columns are what every rule has; what only one rule keeps (a look's probabilities,
 * an order seed, its set-up) lives in `details`, a JSON object the rule owns.
 */
export interface GateDecisionRow {
  runId: string;
  iteration: number;
  rule: string;
  candidateHash: string;
  incumbentHash: string;
  status: "running" | "decided";
  accept: boolean | null;
  stage: string | null;
  testRuns: number;
  infraErrors: number;
  valScore: number | null;
  /** The step's result as the rule returned it, so a resumed gate reuses a decision made. */
  output: unknown;
  details: Record<string, unknown>;
  createdAt: number;
  decidedAt: number | null;
}

export type GateDecisionStart = Pick<
  GateDecisionRow,
  "runId" | "iteration" | "rule" | "candidateHash" | "incumbentHash" | "details"
>;

export type GateDecisionEnd = Pick<GateDecisionRow, "testRuns" | "infraErrors" | "valScore" | "output" | "details"> & {
  accept: boolean;
  stage: string;
};

export interface GateResultRow {
  kind: "candidate" | "pair";
  taskId: string;
  /** Trial of a first-pass run, or the pair's index. */
  trial: number;
  reward: number | null;
  incumbentReward: number | null;
}

/** One held-out run of an arm (the incumbent or a candidate), as a rule asked for it. */
export interface GateRunRow {
  arm: string;
  taskId: string;
  trial: number;
  reward: number | null;
}

/** A journaled task result not yet counted in the incumbent's history. */
export interface UnfoldedResult {
  split: Split;
  taskId: string;
  trial: number;
  reward: number | null;
}

const toDecision = (r: Record<string, unknown>): GateDecisionRow => ({
  runId: r.run_id as string,
  iteration: r.iteration as number,
  rule: r.rule as string,
  candidateHash: r.candidate_hash as string,
  incumbentHash: r.incumbent_hash as string,
  status: r.status as GateDecisionRow["status"],
  accept: r.accept === null ? null : r.accept === 1,
  stage: r.stage as string | null,
  testRuns: r.test_runs as number,
  infraErrors: r.infra_errors as number,
  valScore: r.val_score as number | null,
  output: fromJson(r.output),
  details: (fromJson(r.details) as Record<string, unknown> | null) ?? {},
  createdAt: r.created_at as number,
  decidedAt: r.decided_at as number | null,
});

/** The gate's records: decisions, their held-out results, and the incumbent's per-task history. Rows only. */
export class GateRecordStore {
  constructor(private readonly db: Db) {}

  transaction<T>(fn: () => T): T {
    return this.db.write(fn);
  }

  // ---- the incumbent's history

  gateHistory(split: Split): TaskHistory {
    const rows = this.db.prepare("SELECT task_id, s, f FROM gate_history WHERE split = ?").all(split) as {
      task_id: string;
      s: number;
      f: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.task_id, { s: r.s, f: r.f }]));
  }

  /** Journaled results of `agentHash` the history has not counted yet (each run once, however often reused). */
  unfoldedResults(agentHash: string): UnfoldedResult[] {
    return (
      this.db
        .prepare(
          `SELECT r.split, r.task_id, r.trial, r.reward FROM task_results r
           LEFT JOIN gate_history_runs h ON h.agent_hash = r.agent_hash AND h.split = r.split
             AND h.task_id = r.task_id AND h.trial = r.trial
           WHERE r.agent_hash = ? AND h.agent_hash IS NULL`,
        )
        .all(agentHash) as { split: Split; task_id: string; trial: number; reward: number | null }[]
    ).map((r) => ({ split: r.split, taskId: r.task_id, trial: r.trial, reward: r.reward }));
  }

  /** Marks a result counted, so it never joins the history twice. */
  markFolded(agentHash: string, r: Pick<UnfoldedResult, "split" | "taskId" | "trial">): void {
    this.db
      .prepare("INSERT OR IGNORE INTO gate_history_runs (agent_hash, split, task_id, trial) VALUES (?, ?, ?, ?)")
      .run(agentHash, r.split, r.taskId, r.trial);
  }

  /** Adds pass/fail counts to a task's history. */
  addToHistory(split: Split, taskId: string, s: number, f: number): void {
    this.db
      .prepare(
        `INSERT INTO gate_history (split, task_id, s, f) VALUES (?, ?, ?, ?)
         ON CONFLICT(split, task_id) DO UPDATE SET s = s + excluded.s, f = f + excluded.f`,
      )
      .run(split, taskId, s, f);
  }

  /** Forgets the incumbent's history (a rebaseline: the old scorer's counts). */
  clearHistory(): void {
    this.db.write(() => {
      this.db.prepare("DELETE FROM gate_history").run();
      this.db.prepare("DELETE FROM gate_history_runs").run();
    });
  }

  // ---- decisions

  gateDecision(runId: string, iteration: number): GateDecisionRow | undefined {
    const r = this.db
      .prepare("SELECT * FROM gate_decisions WHERE run_id = ? AND iteration = ?")
      .get(runId, iteration) as Record<string, unknown> | undefined;
    return r ? toDecision(r) : undefined;
  }

  gateDecisions(runId?: string): GateDecisionRow[] {
    const rows = (
      runId === undefined
        ? this.db.prepare("SELECT * FROM gate_decisions ORDER BY created_at, iteration").all()
        : this.db.prepare("SELECT * FROM gate_decisions WHERE run_id = ? ORDER BY iteration").all(runId)
    ) as Record<string, unknown>[];
    return rows.map(toDecision);
  }

  /** Decisions made in one generation (one with no run row counts as the first generation's). */
  generationDecisions(generation: number): GateDecisionRow[] {
    // A read-only reader of a journal from before generations (status during an upgrade): one generation.
    if (!this.db.hasColumn("runs", "generation")) return generation === 1 ? this.gateDecisions() : [];
    return (
      this.db
        .prepare(
          `SELECT d.* FROM gate_decisions d LEFT JOIN runs r ON r.id = d.run_id
           WHERE COALESCE(r.generation, 1) = ? ORDER BY d.created_at, d.iteration`,
        )
        .all(generation) as Record<string, unknown>[]
    ).map(toDecision);
  }

  /** Starts a gate's record; a resumed gate finds the one it started. */
  startGateDecision(row: GateDecisionStart): GateDecisionRow {
    this.db.write(() => {
      this.db
        .prepare(
          `INSERT INTO gate_decisions (run_id, iteration, rule, candidate_hash, incumbent_hash, details, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?, 'running', ?) ON CONFLICT(run_id, iteration) DO NOTHING`,
        )
        .run(
          row.runId,
          row.iteration,
          row.rule,
          row.candidateHash,
          row.incumbentHash,
          JSON.stringify(row.details),
          this.db.now(),
        );
    });
    return this.gateDecision(row.runId, row.iteration)!;
  }

  /** A different candidate at the same iteration (the step re-ran the edit): start its gate afresh. */
  resetGateDecision(runId: string, iteration: number): void {
    this.db.write(() => {
      this.db.prepare("DELETE FROM gate_results WHERE run_id = ? AND iteration = ?").run(runId, iteration);
      if (this.db.hasTable("gate_runs"))
        this.db.prepare("DELETE FROM gate_runs WHERE run_id = ? AND iteration = ?").run(runId, iteration);
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
    this.db.write(() => {
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

  /** A round's held-out runs in the order they landed (none for a journal from before arms). */
  gateRuns(runId: string, iteration: number): GateRunRow[] {
    if (!this.db.hasTable("gate_runs")) return [];
    return (
      this.db
        .prepare("SELECT arm, task_id, trial, reward FROM gate_runs WHERE run_id = ? AND iteration = ? ORDER BY seq")
        .all(runId, iteration) as Record<string, unknown>[]
    ).map((r) => ({
      arm: r.arm as string,
      taskId: r.task_id as string,
      trial: r.trial as number,
      reward: r.reward as number | null,
    }));
  }

  /** Journals runs as they land; a run journaled already (the same arm, task and trial) is kept as it was. */
  appendGateRuns(runId: string, iteration: number, rows: readonly GateRunRow[]): void {
    if (rows.length === 0) return;
    this.db.write(() => {
      const next = this.db
        .prepare("SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM gate_runs WHERE run_id = ? AND iteration = ?")
        .get(runId, iteration) as { n: number };
      const insert = this.db.prepare(
        `INSERT OR IGNORE INTO gate_runs (run_id, iteration, seq, arm, task_id, trial, reward)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      let seq = next.n;
      for (const r of rows) seq += insert.run(runId, iteration, seq, r.arm, r.taskId, r.trial, r.reward).changes;
    });
  }

  /**
   * The decision (its details merged into those it started with) and, when accepted, the incumbent histories
   * it leaves, in one transaction.
   */
  finishGateDecision(
    runId: string,
    iteration: number,
    d: GateDecisionEnd,
    history?: { test: TaskHistory; train: TaskHistory; fold: string[] },
  ): void {
    const now = this.db.now();
    this.db.write(() => {
      const started = this.gateDecision(runId, iteration)?.details ?? {};
      this.db
        .prepare(
          `UPDATE gate_decisions SET status = 'decided', accept = ?, stage = ?, test_runs = ?, infra_errors = ?,
             val_score = ?, output = ?, details = ?, decided_at = ?
           WHERE run_id = ? AND iteration = ?`,
        )
        .run(
          d.accept ? 1 : 0,
          d.stage,
          d.testRuns,
          d.infraErrors,
          d.valScore,
          toJson(d.output),
          JSON.stringify({ ...started, ...d.details }),
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
      .prepare("SELECT COALESCE(SUM(test_runs), 0) AS n FROM gate_decisions WHERE run_id = ? AND status = 'decided'")
      .get(runId) as { n: number };
    return r.n;
  }
}
