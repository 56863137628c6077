/**
 * The journal seen as the few small stores it holds in one SQLite file. A consumer depends on the store
 * it uses, not on the whole journal; one `Journal` satisfies them all, so a transition, its step outcome
 * and an LLM call can still commit together.
 */
import type { Journal } from "./journal.ts";

/** Runs, their steps and transitions (the machine's persisted state), and finished iterations. */
export type RunStore = Pick<
  Journal,
  | "createRun"
  | "getRun"
  | "latestRun"
  | "unfinishedRun"
  | "setRunStatus"
  | "requestStop"
  | "stepStarted"
  | "commitTransition"
  | "getStep"
  | "steps"
  | "currentStep"
  | "putIteration"
  | "iterationNumbers"
  | "iterations"
  | "putProgress"
  | "progress"
>;

/** Task results keyed by (agent hash, split, task, trial): what lets a re-run step reuse finished tasks. */
export type TaskResultCache = Pick<Journal, "getTaskResult" | "taskResults" | "putTaskResult" | "transaction">;

/** Every LLM call with its tokens and cost: the spend, and the replay of paid replies after a crash. */
export type LlmLedger = Pick<Journal, "recordLlmCall" | "recordLlmCalls" | "findLlmResponse" | "llmCalls" | "spend">;
