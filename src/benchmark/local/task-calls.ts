/**
 * What a running task asks of the harness: model calls (forwarded by the gateway, metered, recorded, and
 * bounded by the bytes the harness keeps for them) and the benchmark's tools (run here, on the harness's own
 * copy of the task's env).
 */
import { errorMessage } from "../../errors.ts";
import type { Gateway, GatewayResult } from "../../gateway/gateway.ts";
import type { TaskBatch } from "../executor.ts";
import { infraClassOf, paidRow } from "../models.ts";
import type { FromChild, ToChild, TraceEvent } from "../sealed/protocol.ts";
import { keptBody, TRACE_BODY_MAX_CHARS } from "../traces.ts";
import type { LocalExecutorOptions } from "./executor.ts";
import type { PoolProcess } from "./pool-process.ts";
import { MAX_NOTES_PER_TASK, noteEvent, type Running } from "./task.ts";

export interface CallContext {
  o: LocalExecutorOptions;
  batch: TaskBatch;
  isTrain: boolean;
  requestBytesPerTask: number;
  /** The batch's gateway: strict, metered, each call reserved against the run's budget and journaled when paid. */
  gateway: Gateway;
  addSpend(usd: number): void;
  /** A call found no room in the run's budget: the batch stops there (no task is charged for it). */
  budgetReached(reason: string): void;
  /** Ends the task as the agent's failure for a limit it hit, with a line in its trace. */
  hitLimit(p: PoolProcess, r: Running, limit: string, message: string): void;
  /** A message for no task in flight. */
  stray(p: PoolProcess): void;
}

type LlmMessage = Extract<FromChild, { type: "llm" }>;
type EnvMessage = Extract<FromChild, { type: "env" }>;
type NoteMessage = Extract<FromChild, { type: "note" }>;

function parseBody(body: string | null): unknown {
  if (body === null) return null;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/**
 * The call as the train trace keeps it: what was sent, what came back (the key already taken out), and why it
 * failed. Bodies past the cap keep their head and length, so a night of huge replies does not grow the heap.
 */
export function llmEvent(body: string | null, at: number, result: GatewayResult): Extract<TraceEvent, { kind: "llm" }> {
  return {
    kind: "llm",
    at,
    latency_ms: result.latencyMs,
    status: result.status,
    request: body !== null && body.length > TRACE_BODY_MAX_CHARS ? keptBody(body) : (result.request ?? parseBody(body)),
    ...(result.response === null ? {} : { response: keptBody(result.response) }),
    ...(result.reason === null ? {} : { error: result.reason }),
  };
}

/** What a call's outcome says of its task: the endpoint's failure (null, unless a later answer clears it), or nothing. */
function takeResult(c: CallContext, r: Running, m: LlmMessage, at: number, result: GatewayResult): void {
  if (result.paid) {
    r.calls.push(paidRow(result.paid, c.batch));
    c.addSpend(result.paid.costUsd);
  }
  if (c.isTrain) r.events.push(llmEvent(m.body, at, result));
  if (result.infra)
    r.upstreamInfra = { class: infraClassOf(result), message: result.reason ?? "the model call failed" };
  else if (result.class === "ok") r.upstreamInfra = null;
  else if (result.class === "budget") {
    r.budgetRefused = true;
    c.budgetReached(result.reason ?? "budget_usd reached");
  }
}

export function forwardModelCall(c: CallContext, p: PoolProcess, m: LlmMessage): void {
  const r = p.running.get(m.jobId);
  const reply = (message: ToChild) => p.send(message);
  if (!r || p.calls.has(m.callId)) {
    reply({ type: "llm-fail", callId: m.callId, message: "no such task in flight" });
    c.stray(p);
    return;
  }
  r.requestBytes += m.body === null ? 0 : Buffer.byteLength(m.body);
  if (r.requestBytes > c.requestBytesPerTask) {
    const mib = Math.round(c.requestBytesPerTask / 1024 / 1024);
    reply({ type: "llm-fail", callId: m.callId, message: `the task's model requests passed ${mib} MiB` });
    c.hitLimit(
      p,
      r,
      "request_mb_per_task",
      `the task's model requests passed ${mib} MiB (sandbox_limits.request_mb_per_task): stopped`,
    );
    return;
  }
  const controller = new AbortController();
  p.calls.set(m.callId, m.jobId);
  r.open.set(m.callId, controller);
  const at = c.o.clock.now();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(m.headers)) headers[name.toLowerCase()] = value;
  const forward = c.gateway
    .handle(
      { method: m.method, path: m.path, headers, body: m.body },
      {
        head: (status, h) => reply({ type: "llm-head", callId: m.callId, status, headers: h }),
        chunk: (data) => reply({ type: "llm-chunk", callId: m.callId, data }),
        end: (last) => {
          if (last) reply({ type: "llm-chunk", callId: m.callId, data: last });
          reply({ type: "llm-end", callId: m.callId });
        },
        fail: (message) => reply({ type: "llm-fail", callId: m.callId, message }),
      },
      { signal: controller.signal, split: c.batch.split, callId: r.nextCallId() },
    )
    .then((result) => {
      p.calls.delete(m.callId);
      r.open.delete(m.callId);
      takeResult(c, r, m, at, result);
    });
  r.forwards.add(forward);
  void forward.finally(() => r.forwards.delete(forward));
}

export async function runTool(c: CallContext, p: PoolProcess, m: EnvMessage): Promise<void> {
  const r = p.running.get(m.jobId);
  const fn = r?.env?.env[m.name];
  if (!r || typeof fn !== "function") {
    p.send({ type: "env-result", callId: m.callId, ok: false, error: `no tool ${JSON.stringify(m.name)}` });
    return;
  }
  const [tool, toolInput] = m.name === "execute" ? m.args : [m.name, m.args];
  const event: TraceEvent = { kind: "tool", at: c.o.clock.now(), name: String(tool), input: keptBody(toolInput) };
  if (c.isTrain) r.events.push(event);
  try {
    const output = await (fn as (...a: unknown[]) => unknown).apply(r.env!.env, m.args);
    event.output = keptBody(output);
    if (!p.send({ type: "env-result", callId: m.callId, ok: true, value: output ?? null })) {
      // A result the channel cannot carry is the tool's failure, told to the agent like any other.
      p.send({ type: "env-result", callId: m.callId, ok: false, error: "the tool's result is too large to hand over" });
    }
  } catch (error) {
    event.error = errorMessage(error);
    p.send({ type: "env-result", callId: m.callId, ok: false, error: errorMessage(error) });
  }
}

/** The agent's own note, for the train trace; past the cap per task, a flood that stops the task. */
export function recordNote(c: CallContext, p: PoolProcess, m: NoteMessage): void {
  const r = p.running.get(m.jobId);
  if (!r) {
    c.stray(p);
    return;
  }
  if (++r.notes > MAX_NOTES_PER_TASK) {
    c.hitLimit(p, r, "notes per task", `more than ${MAX_NOTES_PER_TASK} notes in one task: a flood, stopped`);
    return;
  }
  // Test runs send notes too (the agent cannot tell), and they are dropped here.
  if (c.isTrain) r.events.push(noteEvent(c.o.clock.now(), m.message, m.data));
}
