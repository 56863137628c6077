/**
 * What crosses Redis between the daemon and its workers, and the pure rules around it: the job id (one job
 * per run, agent version, split, task and trial, so a second add of the same task is a no-op), the version
 * handshake, and the held-out rule (a test job carries a hashed task reference, and its result only the reward).
 */
import { createHash } from "node:crypto";
import type { Split } from "../domain.ts";
import type { LlmCallRow } from "../journal/stores.ts";

/** Queue name and Redis key prefix: everything the harness keeps in Redis starts with `auto-harness:`. */
export const QUEUE_NAME = "tasks";
export const KEY_PREFIX = "auto-harness";

export interface Versions {
  /** The harness that runs and scores the task (package version + a hash of its source). */
  harness: string;
  /** The benchmark's tasks and scorer, hashed. */
  benchmark: string;
}

export interface TaskJobData {
  run: string;
  agentHash: string;
  /** The agent file's extension (".ts", ".py"): which runtime the worker's sandbox starts. */
  agentExt?: string;
  /** The agent file's path on the daemon's machine: what a worker's messages call it. */
  agentName?: string;
  split: Split;
  /** The task: its id for train; for test a hash, so no held-out id is stored in Redis. */
  taskRef: string;
  trial: number;
  versions: Versions;
  /** The daemon's agent model and per-task timeout: a worker runs with these, not its own config's. */
  model: string;
  timeoutMs: number;
  /** The iteration the batch belongs to: the calls a worker reports carry it. */
  iteration?: number | null;
}

/** The run a job's calls are reported and budgeted under (`run` is "adhoc" outside any run). */
export const runIdOf = (run: string): string | null => (run === ADHOC_RUN ? null : run);
export const ADHOC_RUN = "adhoc";

/** What a worker returns. For test jobs only the reward, the time, the token counts, the worker's name and an error class. */
export interface TaskJobResult {
  reward: number | null;
  durationMs: number;
  /** The agent's model calls: tokens and cost, never a prompt or a reply. */
  llmCalls: LlmCallRow[];
  worker: string;
  /** For an infrastructure error: its class ("HTTP 401", "timeout"…), no content, so test too. */
  infraClass?: string | null;
  /** The agent file does not load on the worker: the batch fails with this reason, as a local one would. */
  loadError?: string;
  /** Train only: the scorer's detail or the failure, the trace events, the task as the agent saw it, the answer. */
  error?: string | null;
  events?: unknown[] | null;
  task?: unknown;
  answer?: unknown;
}

/** Hash of a test task id: the worker finds the task by hashing its own benchmark's ids the same way. */
export function hashTaskId(taskId: string): string {
  return `h${createHash("sha256").update(`auto-harness-task\0${taskId}`).digest("hex").slice(0, 32)}`;
}

export function taskRefOf(split: Split, taskId: string): string {
  return split === "test" ? hashTaskId(taskId) : taskId;
}

/** BullMQ refuses ':' in custom ids; each part is URI-encoded and the parts joined with '|'. */
export function jobIdOf(key: { run: string; agentHash: string; split: Split; taskRef: string; trial: number }): string {
  return [key.run, key.agentHash, key.split, key.taskRef, String(key.trial)].map(encodeURIComponent).join("|");
}

export function parseJobId(
  id: string,
): { run: string; agentHash: string; split: Split; taskRef: string; trial: number } | null {
  const parts = id.split("|").map(decodeURIComponent);
  if (parts.length !== 5) return null;
  const [run, agentHash, split, taskRef, trial] = parts as [string, string, string, string, string];
  if (split !== "train" && split !== "test") return null;
  const n = Number(trial);
  if (!Number.isInteger(n) || n < 0) return null;
  return { run, agentHash, split, taskRef, trial: n };
}

/** Why a worker must not run a job built for other versions, or null when they agree. */
export function versionMismatch(job: Versions, worker: Versions): string | null {
  const problems: string[] = [];
  if (job.harness !== worker.harness)
    problems.push(`harness version differs (daemon ${job.harness}, this worker ${worker.harness})`);
  if (job.benchmark !== worker.benchmark)
    problems.push(`benchmark version differs (daemon ${job.benchmark}, this worker ${worker.benchmark})`);
  if (problems.length === 0) return null;
  return `refused: ${problems.join("; ")}; install the daemon's versions of auto-harness and the benchmark on this machine`;
}

/** The held-out rule at the edge: a test result keeps the reward, the time and the token counts, nothing else. */
export function resultForSplit(split: Split, full: TaskJobResult): TaskJobResult {
  if (split === "train") return full;
  return {
    reward: full.reward,
    durationMs: full.durationMs,
    llmCalls: full.llmCalls.map((c) => ({ ...c, response: null })),
    worker: full.worker,
    ...(full.infraClass ? { infraClass: full.infraClass } : {}),
    ...(full.loadError ? { loadError: full.loadError } : {}),
  };
}

/** Reads a job's return value defensively: it came over the network from another process. */
export function parseResult(value: unknown): TaskJobResult | null {
  if (!value || typeof value !== "object") return null;
  const v = value as Record<string, unknown>;
  const reward = v.reward;
  if (!(reward === null || (typeof reward === "number" && reward >= 0 && reward <= 1))) return null;
  if (typeof v.durationMs !== "number" || !Array.isArray(v.llmCalls) || typeof v.worker !== "string") return null;
  return v as unknown as TaskJobResult;
}
