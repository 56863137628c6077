/**
 * The agent's child process: loads the agent file fresh (through tsx), then runs the tasks the
 * runner sends over IPC, several at a time. Forked by runner.ts; never imported by the harness.
 */
import { pathToFileURL } from "node:url";
import Anthropic, { APIError } from "@anthropic-ai/sdk";
import type { Agent, AgentContext } from "./agent-contract.ts";
import type { ChildInit, ChildOutcome, ChildRun, FromChild, ToChild, TraceEvent } from "./protocol.ts";

interface EnvHandle {
  env: Record<string, unknown>;
  state(): unknown;
}
type EnvFactory = (envData: unknown) => EnvHandle | Promise<EnvHandle>;

interface TaskRecord {
  taskId: string;
  events: TraceEvent[];
  pending: Promise<void>[];
  /** The latest LLM attempt failed for a reason that is not the agent's (5xx, 429, auth, network). */
  lastAttemptInfra: string | null;
  cancelled: boolean;
  abort: AbortController;
}

const send = (message: FromChild): void => {
  try {
    process.send?.(message);
  } catch (error) {
    process.stderr.write(`child: cannot send ${message.type}: ${(error as Error).message}\n`);
  }
};

let init: ChildInit | null = null;
let agent: Agent | null = null;
let createEnv: EnvFactory | null = null;
const running = new Map<string, TaskRecord>();

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

async function load(message: ChildInit): Promise<void> {
  init = message;
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(message.agentFile).href)) as { default?: unknown };
  } catch (error) {
    send({ type: "load-failed", message: `cannot load ${message.agentFile}: ${describe(error)}` });
    return;
  }
  let d: unknown = mod.default;
  // An agent outside any "type": "module" package is compiled to CommonJS: its default export sits one level down.
  if (d && typeof d === "object" && !("run" in d) && "default" in d) d = (d as { default: unknown }).default;
  try {
    if (typeof d === "function" && typeof (d as { prototype?: { run?: unknown } }).prototype?.run === "function") {
      agent = new (d as new () => Agent)();
    } else if (d && typeof d === "object" && typeof (d as { run?: unknown }).run === "function") {
      agent = d as Agent;
    } else {
      send({
        type: "load-failed",
        message: `${message.agentFile}: the default export must be an object with a run(task, ctx) method or a class with one`,
      });
      return;
    }
  } catch (error) {
    send({ type: "load-failed", message: `${message.agentFile}: constructing the agent failed: ${describe(error)}` });
    return;
  }
  if (message.envModule) {
    try {
      const envMod = (await import(pathToFileURL(message.envModule).href)) as { default?: unknown };
      if (typeof envMod.default !== "function") throw new Error("default export must be createEnv(envData)");
      createEnv = envMod.default as EnvFactory;
    } catch (error) {
      // The benchmark's own module, not the agent: the runner treats this as an infrastructure failure.
      send({ type: "load-failed", message: `benchmark env ${message.envModule}: ${describe(error)}` });
      return;
    }
  }
  setInterval(() => send({ type: "hb" }), message.heartbeatMs).unref();
  send({ type: "ready" });
}

function infraStatus(status: number): boolean {
  return status === 401 || status === 403 || status === 408 || status === 429 || status >= 500;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

interface Reassembled {
  model: string;
  usage: Record<string, number>;
  stopReason: string | null;
  message: unknown;
}

/** Rebuilds the final message from a streamed response, so traces look the same either way. */
function reassembleStream(text: string): Reassembled | null {
  let message: Record<string, unknown> | null = null;
  const blocks: Record<string, unknown>[] = [];
  const partialJson: string[] = [];
  for (const chunk of text.split("\n\n")) {
    const dataLine = chunk.split("\n").find((l) => l.startsWith("data: "));
    if (!dataLine) continue;
    // biome-ignore lint/suspicious/noExplicitAny: SSE events are untyped JSON
    const event = parseJson(dataLine.slice(6)) as Record<string, any>;
    if (!event || typeof event !== "object") continue;
    if (event.type === "message_start") message = { ...event.message };
    else if (event.type === "content_block_start") {
      blocks[event.index] = { ...event.content_block };
      partialJson[event.index] = "";
    } else if (event.type === "content_block_delta") {
      const block = blocks[event.index];
      if (!block) continue;
      if (event.delta?.type === "text_delta") block.text = `${block.text ?? ""}${event.delta.text}`;
      if (event.delta?.type === "input_json_delta") partialJson[event.index] += event.delta.partial_json;
    } else if (event.type === "content_block_stop") {
      const block = blocks[event.index];
      if (block && block.type === "tool_use" && partialJson[event.index])
        block.input = parseJson(partialJson[event.index]!);
    } else if (event.type === "message_delta" && message) {
      message.stop_reason = event.delta?.stop_reason ?? null;
      message.usage = { ...(message.usage as object), ...event.usage };
    }
  }
  if (!message) return null;
  message.content = blocks;
  return {
    model: String(message.model ?? ""),
    usage: (message.usage ?? {}) as Record<string, number>,
    stopReason: (message.stop_reason as string | null) ?? null,
    message,
  };
}

function instrumentedFetch(record: TaskRecord, cfg: ChildInit): typeof fetch {
  return async (input, initReq) => {
    const started = Date.now();
    const body = typeof initReq?.body === "string" ? initReq.body : null;
    const request = cfg.recordTrace && body !== null ? parseJson(body) : undefined;
    let res: Response;
    try {
      res = await fetch(input, initReq);
    } catch (error) {
      if (!record.abort.signal.aborted) {
        record.lastAttemptInfra = `LLM request failed: ${(error as Error).message}${causeCode(error)}`;
      }
      if (cfg.recordTrace) {
        record.events.push({
          kind: "llm",
          at: started,
          latency_ms: Date.now() - started,
          status: null,
          request,
          error: (error as Error).message,
        });
      }
      throw error;
    }
    record.lastAttemptInfra = infraStatus(res.status) ? `LLM API answered ${res.status}` : null;
    const clone = res.clone();
    record.pending.push(
      (async () => {
        let text: string;
        try {
          text = await clone.text();
        } catch (error) {
          record.lastAttemptInfra = `LLM response broke off: ${(error as Error).message}`;
          return;
        }
        const latency = Date.now() - started;
        const streamed = (res.headers.get("content-type") ?? "").includes("text/event-stream");
        const parsed = streamed ? reassembleStream(text) : null;
        const response = streamed ? (parsed?.message ?? text) : parseJson(text);
        if (cfg.recordTrace) {
          record.events.push({ kind: "llm", at: started, latency_ms: latency, status: res.status, request, response });
        }
        if (!res.ok) return;
        // biome-ignore lint/suspicious/noExplicitAny: the response body is untyped JSON
        const msg = (streamed ? parsed?.message : response) as Record<string, any> | undefined;
        const usage = (msg?.usage ?? {}) as Record<string, number>;
        send({
          type: "llm",
          taskId: record.taskId,
          model: String(msg?.model ?? cfg.model),
          inputTokens: usage.input_tokens ?? 0,
          outputTokens: usage.output_tokens ?? 0,
          cacheCreationTokens: usage.cache_creation_input_tokens ?? 0,
          cacheReadTokens: usage.cache_read_input_tokens ?? 0,
          latencyMs: latency,
          stopReason: (msg?.stop_reason as string | undefined) ?? null,
        });
      })(),
    );
    return res;
  };
}

/** Wraps the env's functions so every tool call lands in the trace. */
function recordedEnv(env: Record<string, unknown>, record: TaskRecord, recordTrace: boolean): Record<string, unknown> {
  if (!recordTrace) return env;
  const out: Record<string, unknown> = { ...env };
  for (const [name, value] of Object.entries(env)) {
    if (typeof value !== "function") continue;
    out[name] = async (...args: unknown[]) => {
      const [tool, toolInput] = name === "execute" ? args : [name, args];
      const event: TraceEvent = { kind: "tool", at: Date.now(), name: String(tool), input: toolInput };
      record.events.push(event);
      try {
        const output = await (value as (...a: unknown[]) => unknown).apply(env, args);
        event.output = output;
        return output;
      } catch (error) {
        event.error = (error as Error).message;
        throw error;
      }
    };
  }
  return out;
}

/** " (ECONNREFUSED)": the network error's code, which fetch hides under its causes. */
function causeCode(error: unknown): string {
  let e = error as { code?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string") return ` (${e.code})`;
    e = e.cause as typeof e;
  }
  return "";
}

function isInfraError(error: unknown): string | null {
  if (error instanceof APIError && (error.status === undefined || infraStatus(error.status))) {
    return `LLM API error: ${error.message}${causeCode(error)}`;
  }
  return null;
}

async function runTask(message: ChildRun): Promise<void> {
  const cfg = init!;
  const record: TaskRecord = {
    taskId: message.taskId,
    events: [],
    pending: [],
    lastAttemptInfra: null,
    cancelled: false,
    abort: new AbortController(),
  };
  running.set(message.taskId, record);
  const finish = async (outcome: ChildOutcome): Promise<void> => {
    await Promise.allSettled(record.pending);
    running.delete(message.taskId);
    if (record.cancelled) return;
    send({ type: "done", taskId: message.taskId, outcome });
  };
  let handle: EnvHandle;
  try {
    handle = createEnv ? await createEnv(message.envData) : { env: {}, state: () => null };
  } catch (error) {
    await finish({ ok: false, infra: true, error: `benchmark env failed: ${describe(error)}`, events: record.events });
    return;
  }
  const client = new Anthropic({
    ...(cfg.baseURL ? { baseURL: cfg.baseURL } : {}),
    apiKey: cfg.apiKey ?? "missing-api-key",
    maxRetries: cfg.maxRetries,
    fetch: instrumentedFetch(record, cfg),
  });
  const ctx: AgentContext = {
    model: cfg.model,
    client,
    signal: record.abort.signal,
    env: recordedEnv(handle.env, record, cfg.recordTrace),
    trace: {
      note: (note, data) => {
        if (cfg.recordTrace) record.events.push({ kind: "note", at: Date.now(), message: String(note), data });
      },
    },
  };
  try {
    const answer = await agent!.run(message.task, ctx);
    await Promise.allSettled(record.pending);
    // An agent that swallowed an API failure and answered anyway must not be charged for it.
    if (record.lastAttemptInfra) {
      await finish({ ok: false, infra: true, error: record.lastAttemptInfra, events: record.events });
      return;
    }
    await finish({ ok: true, answer: answer ?? null, state: handle.state(), events: record.events });
  } catch (error) {
    await Promise.allSettled(record.pending);
    const infra = isInfraError(error) ?? (record.abort.signal.aborted ? null : record.lastAttemptInfra);
    await finish({
      ok: false,
      infra: infra !== null,
      error: infra ?? `agent threw: ${describe(error)}`,
      events: record.events,
    });
  }
}

// An agent's stray rejection or callback error must not take the other tasks down with it.
process.on("unhandledRejection", (reason) =>
  process.stderr.write(`unhandled rejection in agent: ${describe(reason)}\n`),
);
process.on("uncaughtException", (error) => process.stderr.write(`uncaught exception in agent: ${describe(error)}\n`));

process.on("message", (message: ToChild) => {
  if (message.type === "init") void load(message);
  else if (message.type === "run") void runTask(message);
  else if (message.type === "abort") {
    const record = running.get(message.taskId);
    if (record) {
      record.cancelled = true;
      record.abort.abort(new Error("task timed out"));
    }
  }
});
// The parent went away: nothing left to do.
process.on("disconnect", () => process.exit(0));
