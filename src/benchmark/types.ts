import type { Split } from "../domain.ts";

/** One task's outcome: reward 0..1, or null for an infrastructure error (excluded from means). */
export type Reward = number | null;

export interface TaskOutcome {
  reward: Reward;
  durationMs: number;
  /** Why the task failed or could not run; kept for train only. */
  error?: string;
}

/** What the runner summarises for a step: small facts only, never traces. */
export interface RunSummary {
  split: Split;
  agentHash: string;
  results: Record<string, Reward>;
  /** Mean reward, nulls excluded. */
  score: number | null;
  passed: number;
  total: number;
  infraErrors: number;
  /** Tasks taken from the journal instead of being run again. */
  reused: number;
}

export interface RunRequest {
  split: Split;
  /** Default: every task of the split. */
  taskIds?: string[];
  runId: string | null;
  signal?: AbortSignal;
  /**
   * Absolute path of an agent file to run instead of the workspace's agent/agent.ts (e.g. the
   * incumbent); its content hash keys the journal cache. Such a run writes no train traces unless asked.
   */
  agentFile?: string;
  /** Run only this trial number (journal key `trial`). */
  trial?: number;
  /** Run trials 0..trials-1 of each task (default 1); a task's result is the mean of its trials. */
  trials?: number;
  /** Write train traces to workspace/traces/latest (and baseline once). Ignored for test. */
  writeTraces?: boolean;
  /** Reuse journaled results of the same agent hash (default from config). */
  reuse?: boolean;
  /** Tag the journal rows / LLM calls with this iteration. */
  iteration?: number | null;
  /**
   * Called as each (task, trial) finishes with its reward, before the run returns: the gate journals its
   * held-out runs as they land. Not called for results taken from the journal.
   */
  onResult?: (taskId: string, trial: number, reward: Reward) => void;
  /** Share of the tasks that may end in an infrastructure error before the run fails (default: the runner's). */
  infraErrorShare?: number;
  /** Called as each task finishes: counts only, so it is safe for the test split too. */
  onProgress?: (progress: Progress) => void;
}

export interface Progress {
  done: number;
  total: number;
  passRate: number;
  etaS: number;
}

/** The runner the loop, the gate and the coding agent's "run tasks" tool all go through. */
export interface BenchmarkRunner {
  /** All task ids the adapter knows (split "all"). */
  listTasks(): Promise<string[]>;
  run(request: RunRequest): Promise<RunSummary>;
}
