/**
 * The protocol between the harness and an agent process. Language-neutral: every message is one
 * JSON object with a `type`.
 *
 * Transport: the channel (channel.ts), a socket on the agent process's fd 3 carrying frames of a 4-byte
 * big-endian length and that many bytes of UTF-8 JSON, in both directions. The TypeScript runtime
 * (child.ts) and the Python runtime (python/harness_runtime.py) speak it; nothing else of the harness's
 * reaches the agent process. stdout is never read; stderr is kept (bounded) for train runs only.
 *
 * The agent process has no network and no secrets. Its model calls (ctx.client's, and an SDK's made to the
 * endpoint the runtime serves on the sandbox's loopback) go to the harness as `llm` messages carrying an HTTP
 * request in any format the gateway knows (the Messages API, Chat Completions, Responses; streaming or not);
 * the harness's gateway checks it, adds the key, forwards it, meters the usage from the reply itself and the
 * reply streams back as `llm-head`, `llm-chunk`…, then `llm-end` or `llm-fail`. Benchmark tools run in the harness
 * (`env` → `env-result`). The scorer and the task's answers never reach the agent process.
 *
 * Order of a session: harness → `init`; child → `ready` (or `load-failed`); then any number of
 * `run` (several may be in flight), each ended by the child's `done`; `abort` cancels one. The child
 * sends `hb` every `heartbeatMs` so the harness can tell a frozen event loop from a slow task.
 * Everything the child sends is checked by the harness (fromChildSchema) and may be hostile.
 */
import { z } from "zod";
import type { AgentTask } from "../agent-contract.ts";

// ------------------------------------------------------------------ harness → child

export interface ChildInit {
  type: "init";
  /** Path of the agent file inside the agent's view. */
  agentFile: string;
  /** The config's agent_model, handed to the agent as ctx.model. */
  model: string;
  /** Retries of the agent's SDK client (the same for train and test). */
  maxRetries: number;
  heartbeatMs: number;
}

/** The env a task's agent sees: plain values, and names of functions that run in the harness. */
export interface EnvShape {
  values: Record<string, unknown>;
  functions: string[];
}

export interface ChildRun {
  type: "run";
  /** Opaque id of this run of a task (one task may run more than once). */
  jobId: string;
  task: AgentTask;
  env: EnvShape;
}

export interface ChildAbort {
  type: "abort";
  jobId: string;
}

export interface LlmHead {
  type: "llm-head";
  callId: string;
  status: number;
  headers: Record<string, string>;
}

export interface LlmChunk {
  type: "llm-chunk";
  callId: string;
  /** UTF-8 text of the response body, in order. */
  data: string;
}

export interface LlmEnd {
  type: "llm-end";
  callId: string;
}

/** The request could not be completed (no head yet, or the body broke off). */
export interface LlmFail {
  type: "llm-fail";
  callId: string;
  message: string;
}

export type EnvResult =
  | { type: "env-result"; callId: string; ok: true; value: unknown }
  | { type: "env-result"; callId: string; ok: false; error: string };

export type ToChild = ChildInit | ChildRun | ChildAbort | LlmHead | LlmChunk | LlmEnd | LlmFail | EnvResult;

// ------------------------------------------------------------------ child → harness

const id = z.string().min(1).max(200);

export const fromChildSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready") }),
  z.object({ type: z.literal("load-failed"), message: z.string() }),
  z.object({ type: z.literal("hb") }),
  /** An HTTP request to the model API, for the gateway (which refuses what it does not forward). */
  z.object({
    type: z.literal("llm"),
    jobId: id,
    callId: id,
    method: z.string(),
    path: z.string(),
    headers: z.record(z.string(), z.string()),
    body: z.string().nullable(),
  }),
  /** The agent gave up on a request (its abort signal): not the harness's failure. */
  z.object({ type: z.literal("llm-cancel"), callId: id }),
  z.object({ type: z.literal("env"), jobId: id, callId: id, name: z.string(), args: z.array(z.unknown()) }),
  z.object({ type: z.literal("note"), jobId: id, message: z.string(), data: z.unknown().optional() }),
  z.object({
    type: z.literal("done"),
    jobId: id,
    outcome: z.union([
      z.object({ ok: z.literal(true), answer: z.unknown() }),
      z.object({ ok: z.literal(false), error: z.string() }),
    ]),
  }),
]);

export type FromChild = z.infer<typeof fromChildSchema>;

// ------------------------------------------------------------------ the harness's record of a task

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
  /** Text the agent supplied itself (size-capped). */
  | { kind: "note"; at: number; source: "agent"; message: string; data?: unknown }
  /** A limit of the harness's that the task hit, which ended it as the agent's failure (the harness's words). */
  | { kind: "limit"; at: number; limit: string; message: string };
