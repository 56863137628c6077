/**
 * What a running task asks of the harness: model calls (forwarded by the gateway, metered, recorded, and
 * bounded by the bytes the harness keeps for them) and the benchmark's tools (run here, on the harness's own
 * copy of the task's env).
 */
import { errorMessage } from "../../errors.ts";
import type { TaskBatch } from "../executor.ts";
import { forwardLlmCall } from "../sealed/gateway.ts";
import type { FromChild, ToChild, TraceEvent } from "../sealed/protocol.ts";
import type { LocalExecutorOptions } from "./executor.ts";
import type { PoolProcess } from "./pool-process.ts";
import { MAX_NOTES_PER_TASK, noteEvent, type Running } from "./task.ts";

export interface CallContext {
  o: LocalExecutorOptions;
  batch: TaskBatch;
  isTrain: boolean;
  requestBytesPerTask: number;
  addSpend(usd: number): void;
  /** Ends the task as the agent's failure for a limit it hit, with a line in its trace. */
  hitLimit(p: PoolProcess, r: Running, limit: string, message: string): void;
  /** A message for no task in flight. */
  stray(p: PoolProcess): void;
}

type LlmMessage = Extract<FromChild, { type: "llm" }>;
type EnvMessage = Extract<FromChild, { type: "env" }>;
type NoteMessage = Extract<FromChild, { type: "note" }>;

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
  const forward = forwardLlmCall(
    { upstream: c.o.upstream, clock: c.o.clock, agentModel: c.o.model },
    m,
    {
      head: (status, headers) => reply({ type: "llm-head", callId: m.callId, status, headers }),
      chunk: (data) => reply({ type: "llm-chunk", callId: m.callId, data }),
      end: () => reply({ type: "llm-end", callId: m.callId }),
      fail: (message) => reply({ type: "llm-fail", callId: m.callId, message }),
    },
    controller.signal,
  ).then((result) => {
    p.calls.delete(m.callId);
    r.open.delete(m.callId);
    if (result.usage) {
      r.calls.push({ ...result.usage, runId: c.batch.runId, iteration: c.batch.iteration });
      c.addSpend(result.usage.costUsd);
    }
    if (c.isTrain) r.events.push(result.event);
    if (result.infra) r.upstreamInfra = result.infra;
    else if (!result.cancelled && result.event.status !== null && result.event.status < 300) r.upstreamInfra = null;
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
  const event: TraceEvent = { kind: "tool", at: c.o.clock.now(), name: String(tool), input: toolInput };
  if (c.isTrain) r.events.push(event);
  try {
    const output = await (fn as (...a: unknown[]) => unknown).apply(r.env!.env, m.args);
    event.output = output;
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
