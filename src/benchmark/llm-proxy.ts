/**
 * The harness's side of the agent's model calls: the agent process has no network and no key, so
 * it hands each HTTP request to the harness, which forwards only the Messages API
 * (`POST /v1/messages`, streaming or not) to the configured endpoint with the real key, streams the
 * reply back, and keeps its own record: the usage it meters from the reply (never what the agent
 * reports), the trace event, and whether the endpoint — not the agent — failed.
 */
import type { Clock } from "../clock.ts";
import type { LlmCallRow } from "../journal/stores.ts";
import { costUsd } from "../llm/client.ts";
import type { TraceEvent } from "./protocol.ts";
import { keptBody, TRACE_BODY_MAX_CHARS } from "./traces.ts";

export interface Upstream {
  /** Default https://api.anthropic.com. */
  baseURL: string | null;
  apiKey: string | null;
}

export interface ForwardRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
}

/** Where the reply goes (the agent process). */
export interface ReplySink {
  head(status: number, headers: Record<string, string>): void;
  chunk(data: string): void;
  end(): void;
  fail(message: string): void;
}

export interface ForwardResult {
  /** The endpoint failed (no answer, 401/403/408/429/5xx, or the reply broke off): the harness's failure. */
  infra: string | null;
  /** The agent gave up on the request (its abort signal): nothing to hold against the endpoint. */
  cancelled: boolean;
  /** Metered from the reply, when it carried usage. */
  usage: Omit<LlmCallRow, "runId" | "iteration"> | null;
  event: Extract<TraceEvent, { kind: "llm" }>;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Request headers the agent may choose; everything else (the key above all) is the harness's. */
const PASSED_REQUEST_HEADERS = ["anthropic-version", "anthropic-beta", "accept"];
/** Reply headers the SDK reads for its retries and errors. */
const PASSED_REPLY_HEADERS = ["content-type", "request-id", "retry-after", "retry-after-ms", "x-should-retry"];

export function infraStatus(status: number): boolean {
  return status === 401 || status === 403 || status === 408 || status === 429 || status >= 500;
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Rebuilds the final message from a streamed reply, so usage and traces read the same either way. */
export function reassembleStream(text: string): Record<string, unknown> | null {
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
  return message;
}

function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

function meter(
  message: Record<string, unknown> | null,
  requestedModel: string,
  latencyMs: number,
): ForwardResult["usage"] {
  const usage = message?.usage as Record<string, unknown> | undefined;
  if (!usage || typeof usage !== "object") return null;
  const model = typeof message?.model === "string" && message.model ? message.model : requestedModel;
  const counts = {
    input_tokens: count(usage.input_tokens),
    output_tokens: count(usage.output_tokens),
    cache_creation_input_tokens: count(usage.cache_creation_input_tokens),
    cache_read_input_tokens: count(usage.cache_read_input_tokens),
  };
  return {
    stepKey: null,
    role: "agent",
    model,
    promptHash: null,
    inputTokens: counts.input_tokens,
    outputTokens: counts.output_tokens,
    cacheCreationTokens: counts.cache_creation_input_tokens,
    cacheReadTokens: counts.cache_read_input_tokens,
    costUsd: costUsd(model, counts),
    latencyMs,
    stopReason: typeof message?.stop_reason === "string" ? message.stop_reason : null,
    // Never a test response; train responses live in the trace files.
    response: null,
  };
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

function refuse(sink: ReplySink, status: number, type: string, message: string): void {
  sink.head(status, { "content-type": "application/json" });
  sink.chunk(JSON.stringify({ type: "error", error: { type, message } }));
  sink.end();
}

/** Forwards one request of the agent; never throws. */
export async function forwardLlmCall(
  upstream: Upstream,
  clock: Clock,
  req: ForwardRequest,
  sink: ReplySink,
  signal: AbortSignal,
): Promise<ForwardResult> {
  const at = clock.now();
  const started = clock.monotonic();
  const request = parseJson(req.body);
  const event: Extract<TraceEvent, { kind: "llm" }> = {
    kind: "llm",
    at,
    latency_ms: 0,
    status: null,
    // The trace keeps a capped copy; the whole body is forwarded and then let go.
    request: req.body !== null && req.body.length > TRACE_BODY_MAX_CHARS ? keptBody(req.body) : request,
  };
  const result = (r: Omit<ForwardResult, "event">): ForwardResult => {
    event.latency_ms = clock.monotonic() - started;
    return { ...r, event };
  };
  const url = new URL(req.path, "http://agent.invalid");
  if (req.method.toUpperCase() !== "POST" || url.pathname !== "/v1/messages") {
    const why = `the harness forwards only POST /v1/messages, not ${req.method} ${url.pathname}`;
    refuse(sink, 404, "not_found_error", why);
    event.status = 404;
    event.error = why;
    return result({ infra: null, cancelled: false, usage: null });
  }
  if (req.body !== null && Buffer.byteLength(req.body) > MAX_BODY_BYTES) {
    refuse(sink, 413, "request_too_large", "request body too large");
    event.status = 413;
    return result({ infra: null, cancelled: false, usage: null });
  }
  const headers: Record<string, string> = { "content-type": "application/json", "anthropic-version": "2023-06-01" };
  for (const name of PASSED_REQUEST_HEADERS) if (req.headers[name]) headers[name] = req.headers[name];
  if (upstream.apiKey) headers["x-api-key"] = upstream.apiKey;
  const base = (upstream.baseURL ?? "https://api.anthropic.com").replace(/\/+$/, "");
  const requestedModel =
    typeof (request as { model?: unknown })?.model === "string" ? (request as { model: string }).model : "";

  let res: Response;
  try {
    res = await fetch(`${base}/v1/messages${url.search}`, { method: "POST", headers, body: req.body, signal });
  } catch (error) {
    const message = (error as Error).message;
    sink.fail(message);
    event.error = message;
    if (signal.aborted) return result({ infra: null, cancelled: true, usage: null });
    return result({ infra: `LLM request failed: ${message}${causeCode(error)}`, cancelled: false, usage: null });
  }
  event.status = res.status;
  const replyHeaders: Record<string, string> = {};
  for (const name of PASSED_REPLY_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) replyHeaders[name] = value;
  }
  sink.head(res.status, replyHeaders);
  let infra = infraStatus(res.status) ? `LLM API answered ${res.status}` : null;
  let cancelled = false;
  let text = "";
  const decoder = new TextDecoder();
  try {
    if (res.body) {
      for await (const chunk of res.body) {
        const piece = decoder.decode(chunk as Uint8Array, { stream: true });
        if (piece) {
          text += piece;
          sink.chunk(piece);
        }
      }
    }
    const tail = decoder.decode();
    if (tail) {
      text += tail;
      sink.chunk(tail);
    }
    sink.end();
  } catch (error) {
    const message = (error as Error).message;
    sink.fail(message);
    event.error = message;
    if (signal.aborted) cancelled = true;
    else infra = `LLM response broke off: ${message}`;
  }
  const streamed = (res.headers.get("content-type") ?? "").includes("text/event-stream");
  const message = streamed ? reassembleStream(text) : (parseJson(text) as Record<string, unknown> | null);
  // Past the cap the trace keeps the reply's head as it came, without building a second copy of it.
  event.response = text.length > TRACE_BODY_MAX_CHARS ? keptBody(text) : streamed ? (message ?? text) : parseJson(text);
  const latency = clock.monotonic() - started;
  // A reply that carried usage was paid for, whole or not.
  const usage =
    res.ok || message?.usage
      ? meter(message && typeof message === "object" ? message : null, requestedModel, latency)
      : null;
  return result({ infra, cancelled, usage });
}
