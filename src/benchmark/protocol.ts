/**
 * Messages between the runner and the agent's child process, over Node's IPC channel
 * (never stdout: an agent that prints cannot break the protocol).
 */
import type { AgentTask } from "./agent-contract.ts";

export interface ChildInit {
  type: "init";
  agentFile: string;
  /** Module whose default export `createEnv(envData)` builds a task's env; null: env is `{}`. */
  envModule: string | null;
  model: string;
  baseURL: string | null;
  apiKey: string | null;
  /** The SDK's own retries for the agent's client. */
  maxRetries: number;
  /** Keep requests, responses, tool calls and notes (train only). */
  recordTrace: boolean;
  heartbeatMs: number;
}

export interface ChildRun {
  type: "run";
  taskId: string;
  task: AgentTask;
  envData: unknown;
}

export interface ChildAbort {
  type: "abort";
  taskId: string;
}

export type ToChild = ChildInit | ChildRun | ChildAbort;

export interface LlmUsageReport {
  type: "llm";
  taskId: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  latencyMs: number;
  stopReason: string | null;
}

export type TraceEvent =
  | {
      kind: "llm";
      at: number;
      latency_ms: number;
      status: number | null;
      request: unknown;
      response?: unknown;
      error?: string;
    }
  | { kind: "tool"; at: number; name: string; input: unknown; output?: unknown; error?: string }
  | { kind: "note"; at: number; message: string; data?: unknown };

export type ChildOutcome =
  | { ok: true; answer: unknown; state: unknown; events: TraceEvent[] }
  | { ok: false; error: string; infra: boolean; events: TraceEvent[] };

export type FromChild =
  | { type: "ready" }
  | { type: "load-failed"; message: string }
  | { type: "hb" }
  | LlmUsageReport
  | { type: "done"; taskId: string; outcome: ChildOutcome };
