/**
 * The journal as the stores it holds in one SQLite file, each owning its tables and queries. A consumer takes
 * the store(s) it uses (`Pick<Stores, "runs" | "ledger">`), never the whole journal; one `Journal` holds them
 * all on one connection, so a transition, its step outcome and the ledger rows can still commit together.
 */
import type { GateRecordStore } from "./gate-records.ts";
import type { LlmLedger } from "./ledger.ts";
import type { PinStore } from "./pins.ts";
import type { ProcessGroupStore } from "./process-groups.ts";
import type { RunStore } from "./runs.ts";
import type { TaskResultStore } from "./task-results.ts";

export interface Stores {
  /** Runs and their generations, steps and transitions, finished iterations, progress. */
  runs: RunStore;
  /** Task results keyed by (agent hash, split, task, trial): what lets a re-run step reuse finished tasks. */
  taskResults: TaskResultStore;
  /** Every LLM call with its tokens and cost: the spend, and the replay of paid replies after a crash. */
  ledger: LlmLedger;
  /** Gate decisions, their held-out results, and the incumbent's per-task history. */
  gateRecords: GateRecordStore;
  /** Pinned records (split, suite, baseline), steering versions, experiment facts. */
  pins: PinStore;
  /** Process groups of benchmark commands, reaped after a killed daemon. */
  processGroups: ProcessGroupStore;
  /** Writes of several stores in one transaction. */
  transaction<T>(fn: () => T): T;
}

export type { GateDecisionRow, GateRecordStore, GateResultRow, GateRunRow, TaskHistory } from "./gate-records.ts";
export type { LlmCallRow, LlmLedger, LlmRole, Spend } from "./ledger.ts";
export type { PinStore, SteeringVersion } from "./pins.ts";
export type { ProcessGroupRow, ProcessGroupStore } from "./process-groups.ts";
export type {
  GenerationRow,
  IterationOutcome,
  IterationRow,
  ProgressRow,
  RunRow,
  RunStatus,
  RunStore,
  StepRow,
  Transition,
} from "./runs.ts";
export type { TaskResultRow, TaskResultStore } from "./task-results.ts";
