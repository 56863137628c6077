/**
 * The harness's side of the agent's model calls: the agent process has no network and no key, so it
 * hands each HTTP request to the harness, which forwards only the Messages API (`POST /v1/messages`,
 * streaming or not) to the configured endpoint with the real key, streams the reply back with the key
 * taken out, and keeps its own record: the usage it meters from the reply (never what the agent reports),
 * the trace event, and whose failure it was.
 *
 * The harness decides what infrastructure is: only the endpoint's own failures (no connection, 408, 429,
 * 5xx, a broken stream, and a refusal of the harness's key) leave a task without a result. A request the
 * agent malformed (a header value HTTP does not allow, a body that is not JSON, another path) is refused
 * here with an error to the agent, and counts against its task: it once made the harness's own fetch
 * throw, which was counted as the endpoint's failure and paused the run on every resume.
 */
import type { Clock } from "../../clock.ts";
import { failureClass } from "../../llm/client.ts";
import type { InfraClass } from "../failure.ts";
import type { TraceEvent } from "./protocol.ts";
import { KeyScrubber, type MeteredCall, meter, parseJson, reassembleStream } from "./reply.ts";

export { reassembleStream } from "./reply.ts";

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
  /** The endpoint failed: the harness's failure, with its class. */
  infra: { class: InfraClass; message: string } | null;
  /** The agent gave up on the request (its abort signal): nothing to hold against the endpoint. */
  cancelled: boolean;
  /** Metered from the reply, when it carried usage. */
  usage: MeteredCall | null;
  event: Extract<TraceEvent, { kind: "llm" }>;
}

export interface GatewayOptions {
  upstream: Upstream;
  clock: Clock;
  /** The config's agent_model: a 403 for it is the key's refusal, for another model the agent's choice. */
  agentModel: string;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Request headers the agent may choose; everything else (the key above all) is the harness's. */
const PASSED_REQUEST_HEADERS = ["anthropic-version", "anthropic-beta", "accept"];
/** Reply headers the SDK reads for its retries and errors. */
const PASSED_REPLY_HEADERS = ["content-type", "request-id", "retry-after", "retry-after-ms", "x-should-retry"];

/** Whether an HTTP status is the endpoint's failure rather than an answer to what the agent asked. */
export function infraStatus(status: number, forAgentModel = true): boolean {
  if (status === 403) return forAgentModel;
  return status === 401 || status === 408 || status === 429 || status >= 500;
}

type Checked =
  | { ok: true; request: Request; model: string }
  | { ok: false; status: number; type: string; why: string; infra?: true };

/** The request as the harness will send it, or why the agent's request is refused (its own fault). */
function checkRequest(upstream: Upstream, req: ForwardRequest, signal: AbortSignal): Checked {
  const url = new URL(req.path, "http://agent.invalid");
  if (req.method.toUpperCase() !== "POST" || url.pathname !== "/v1/messages") {
    const why = `the harness forwards only POST /v1/messages, not ${req.method} ${url.pathname}`;
    return { ok: false, status: 404, type: "not_found_error", why };
  }
  if (req.body !== null && Buffer.byteLength(req.body) > MAX_BODY_BYTES) {
    return { ok: false, status: 413, type: "request_too_large", why: "request body too large" };
  }
  const body = parseJson(req.body);
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { ok: false, status: 400, type: "invalid_request_error", why: "the request body is not a JSON object" };
  }
  const headers = new Headers({ "content-type": "application/json", "anthropic-version": "2023-06-01" });
  for (const name of PASSED_REQUEST_HEADERS) {
    const value = req.headers[name];
    if (value === undefined) continue;
    try {
      headers.set(name, value);
    } catch {
      return {
        ok: false,
        status: 400,
        type: "invalid_request_error",
        why: `header ${name}: a value HTTP does not allow`,
      };
    }
  }
  if (upstream.apiKey) headers.set("x-api-key", upstream.apiKey);
  const base = (upstream.baseURL ?? "https://api.anthropic.com").replace(/\/+$/, "");
  let target: URL;
  try {
    target = new URL(`${base}/v1/messages${url.search}`);
  } catch {
    // The operator's base URL, not the agent's request: every call would fail the same way.
    return { ok: false, status: 502, type: "api_error", why: "the harness's endpoint URL is not a URL", infra: true };
  }
  let request: Request;
  try {
    request = new Request(target, { method: "POST", headers, body: req.body, signal });
  } catch {
    return { ok: false, status: 400, type: "invalid_request_error", why: "the request cannot be sent as it is" };
  }
  const model = (body as { model?: unknown }).model;
  return { ok: true, request, model: typeof model === "string" ? model : "" };
}

/** Forwards one request of the agent; never throws. */
export async function forwardLlmCall(
  g: GatewayOptions,
  req: ForwardRequest,
  sink: ReplySink,
  signal: AbortSignal,
): Promise<ForwardResult> {
  const { clock } = g;
  const started = clock.now();
  const event: Extract<TraceEvent, { kind: "llm" }> = {
    kind: "llm",
    at: started,
    latency_ms: 0,
    status: null,
    request: parseJson(req.body),
  };
  const result = (r: Omit<ForwardResult, "event">): ForwardResult => {
    event.latency_ms = clock.now() - started;
    return { ...r, event };
  };
  const checked = checkRequest(g.upstream, req, signal);
  if (!checked.ok) {
    sink.head(checked.status, { "content-type": "application/json" });
    sink.chunk(JSON.stringify({ type: "error", error: { type: checked.type, message: checked.why } }));
    sink.end();
    event.status = checked.status;
    event.error = checked.why;
    const infra = checked.infra ? { class: "bad endpoint URL", message: checked.why } : null;
    return result({ infra, cancelled: false, usage: null });
  }
  const scrubber = new KeyScrubber(g.upstream.apiKey);
  let res: Response;
  try {
    res = await fetch(checked.request);
  } catch (error) {
    const message = scrubber.scrub((error as Error).message);
    sink.fail(message);
    event.error = message;
    if (signal.aborted) return result({ infra: null, cancelled: true, usage: null });
    const cls = failureClass(error);
    // A fetch failure with no code of its own is the connection's all the same.
    const infra = {
      class: cls === "TypeError" ? "connection error" : cls,
      message: `LLM request failed: ${message} (${cls})`,
    };
    return result({ infra, cancelled: false, usage: null });
  }
  event.status = res.status;
  const replyHeaders: Record<string, string> = {};
  for (const name of PASSED_REPLY_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) replyHeaders[name] = scrubber.scrub(value);
  }
  sink.head(res.status, replyHeaders);
  const failed = infraStatus(res.status, checked.model === g.agentModel);
  let infra = failed ? { class: `HTTP ${res.status}`, message: `LLM API answered ${res.status}` } : null;
  let cancelled = false;
  const streamed = (res.headers.get("content-type") ?? "").includes("text/event-stream");
  const read = await relayBody(res, scrubber, sink, streamed);
  if (read.error !== null) {
    event.error = read.error;
    if (signal.aborted) cancelled = true;
    else infra = { class: "stream broke off", message: `LLM response broke off: ${read.error}` };
  }
  const message = streamed ? reassembleStream(read.text) : (parseJson(read.text) as Record<string, unknown> | null);
  event.response = streamed ? (message ?? read.text) : parseJson(read.text);
  const latency = clock.now() - started;
  // A reply that carried usage was paid for, whole or not.
  const usage =
    res.ok || message?.usage
      ? meter(message && typeof message === "object" ? message : null, checked.model, latency)
      : null;
  return result({ infra, cancelled, usage });
}

/**
 * Passes the body to the agent with the key taken out: a stream piece by piece, anything else whole (one
 * message, not a piece and then the tail the scrubber held back). Returns what was passed on, and how it
 * broke off.
 */
async function relayBody(
  res: Response,
  scrubber: KeyScrubber,
  sink: ReplySink,
  streamed: boolean,
): Promise<{ text: string; error: string | null }> {
  let text = "";
  let held = "";
  const pass = (piece: string) => {
    if (!piece) return;
    text += piece;
    sink.chunk(piece);
  };
  const take = (piece: string) => {
    if (streamed) pass(scrubber.push(piece));
    else held += piece;
  };
  const rest = () => (streamed ? scrubber.end() : scrubber.scrub(held));
  const decoder = new TextDecoder();
  try {
    if (res.body) for await (const chunk of res.body) take(decoder.decode(chunk as Uint8Array, { stream: true }));
    take(decoder.decode());
    pass(rest());
    sink.end();
    return { text, error: null };
  } catch (error) {
    pass(rest());
    const message = scrubber.scrub((error as Error).message);
    sink.fail(message);
    return { text, error: message };
  }
}
