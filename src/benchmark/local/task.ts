/** A task in the local pool: what is queued, what runs, and the pieces of its record the harness keeps. */
import type { LlmCallRow } from "../../journal/stores.ts";
import type { TaskSpec } from "../adapters/types.ts";
import type { AgentFailure, InfraClass } from "../failure.ts";
import { callIds } from "../models.ts";
import type { EnvShape, TraceEvent } from "../sealed/protocol.ts";
import type { Reward } from "../types.ts";

export interface EnvHandle {
  env: Record<string, unknown>;
  state(): unknown;
}
export type EnvFactory = (envData: unknown) => EnvHandle | Promise<EnvHandle>;

export interface Job {
  id: string;
  spec: TaskSpec;
  trial: number;
  /** Infrastructure attempts so far. */
  attempt: number;
  /** Run alone: it was in flight when its process froze or crashed, and only one of those was the culprit. */
  isolate: boolean;
}

export interface Running {
  job: Job;
  startedAt: number;
  timer: AbortController;
  env: EnvHandle | null;
  events: TraceEvent[];
  calls: LlmCallRow[];
  /** The endpoint's last failure on this task, cleared by its next whole answer. */
  upstreamInfra: { class: InfraClass; message: string } | null;
  open: Map<string, AbortController>;
  forwards: Set<Promise<void>>;
  /** Bytes of model request bodies sent so far (sandbox_limits.request_mb_per_task). */
  requestBytes: number;
  notes: number;
  /** One of its calls found no room in the run's budget. */
  budgetRefused: boolean;
  /** The next model call's id: this execution's own, so a task that runs again pays (and is journaled) anew. */
  nextCallId: () => string;
}

export interface Settled {
  reward: Reward;
  error: string | null;
  answer: unknown;
  infraClass?: InfraClass;
  agentFailure?: AgentFailure;
}

const NOTE_CHARS = 2000;
const NOTE_DATA_CHARS = 8000;
/** More notes than this on one task is a flood: the harness would keep them all for the trace. */
export const MAX_NOTES_PER_TASK = 1000;

export function newRunning(job: Job, now: number): Running {
  return {
    job,
    startedAt: now,
    timer: new AbortController(),
    env: null,
    events: [],
    calls: [],
    upstreamInfra: null,
    open: new Map(),
    forwards: new Set(),
    requestBytes: 0,
    notes: 0,
    budgetRefused: false,
    nextCallId: callIds(),
  };
}

/** What the agent process gets of an env: its plain values, and the names of its functions (run here). */
export function shapeOf(env: Record<string, unknown>): EnvShape {
  const values: Record<string, unknown> = {};
  const functions: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (typeof value === "function") functions.push(name);
    else values[name] = value;
  }
  return { values: JSON.parse(JSON.stringify(values)) as Record<string, unknown>, functions };
}

export function noteEvent(at: number, message: string, data: unknown): TraceEvent {
  let kept: unknown = data;
  if (data !== undefined) {
    const text = JSON.stringify(data) ?? "";
    if (text.length > NOTE_DATA_CHARS) kept = `${text.slice(0, NOTE_DATA_CHARS)}… (cut)`;
  }
  return {
    kind: "note",
    at,
    source: "agent",
    message: message.length > NOTE_CHARS ? `${message.slice(0, NOTE_CHARS)}… (cut)` : message,
    ...(data === undefined ? {} : { data: kept }),
  };
}
