import type { Split } from "../../domain.ts";
import type { LoopbackEndpoint } from "../../gateway/endpoint.ts";
import type { AgentTask } from "../agent-contract.ts";
import type { Reward } from "../types.ts";

/** One task as the runner holds it: what the agent sees, what its env is built from, and the rest for the scorer. */
export interface TaskSpec {
  id: string;
  agentTask: AgentTask;
  /** Handed to the env module's `createEnv` in the child (e.g. the task's copy of the database). */
  envData: unknown;
  /** The whole task record, for the scorer only; never sent to the agent. */
  record: unknown;
}

/** What the agent's run produced, as the scorer sees it. */
export interface TaskRunResult {
  answer: unknown;
  /** The env's final state (e.g. the database after the agent's tool calls). */
  state: unknown;
  /** Which run of the task this is (0, 1, …): a simulated benchmark seeds its noise with it. */
  trial?: number;
}

/** A reward, optionally with a one-line reason (shown in train results, helps the coding agent). */
export type Score = number | { reward: number; detail?: string };

/** Adapters whose tasks the runner drives itself, in the agent's child process. */
export interface AgentAdapter {
  kind: "agent";
  name: string;
  /** Every task id the benchmark has, in a stable order. */
  listTasks(): Promise<string[]>;
  /** The given tasks; an unknown id is an error. */
  loadTasks(ids: string[]): Promise<Map<string, TaskSpec>>;
  /** Absolute path of a module loaded in the child whose default export is `createEnv(envData) → { env, state() }`. */
  envModule: string | null;
  score(task: TaskSpec, result: TaskRunResult): Score | Promise<Score>;
}

export interface CommandRunRequest {
  split: Split;
  taskIds: string[];
  agentFile: string;
  /** Where the command may write `<dir>/<task_id>/…`; train only. */
  tracesDir: string | null;
  signal?: AbortSignal;
  /** The run's gateway on a loopback port: the command's model calls go there, metered. */
  gateway?: LoopbackEndpoint;
}

/** Adapters that hand whole runs to an external program. */
export interface CommandAdapter {
  kind: "command";
  name: string;
  listTasks(): Promise<string[]>;
  /** Rewards per task id; throws `HarnessError("INFRA_FAILURE")` when the command fails or its results are unreadable. */
  runTasks(request: CommandRunRequest): Promise<Record<string, Reward>>;
}

export type Adapter = AgentAdapter | CommandAdapter;

export function rewardOf(score: Score): { reward: number; detail: string | null } {
  const raw = typeof score === "number" ? score : score.reward;
  const detail = typeof score === "number" ? null : (score.detail ?? null);
  if (typeof raw !== "number" || Number.isNaN(raw))
    throw new Error(`scorer returned ${JSON.stringify(score)}, not a number`);
  return { reward: Math.min(1, Math.max(0, raw)), detail };
}

/** Where a command adapter reports the process groups it starts, so nothing outlives the daemon. */
export interface ProcessGroupTracker {
  /** Records a group just started; returns the function that forgets it once it has ended. */
  track(pgid: number, label: string): () => void;
}
