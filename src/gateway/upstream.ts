/**
 * The provider's side of a call: the request sent with the harness's key, the reply relayed as it arrives,
 * and, when it fails, whose failure it is.
 */
import { ReplyRelay, type ReplySink, replyHeaders } from "./reply.ts";

/**
 * Who a call's outcome is on. `agent-request` (refused here) and `upstream-refused` (a 4xx the request earned)
 * are the agent's; `budget` is the run's limit; `upstream-*` are infrastructure: the provider failed, not the agent,
 * and so is `budget-unknown` (the store holding the run's budget could not be reached).
 */
export type CallClass =
  | "ok"
  | "agent-request"
  | "upstream-refused"
  | "budget"
  | "budget-unknown"
  | "cancelled"
  | "upstream-auth"
  | "upstream-http"
  | "upstream-connection"
  | "upstream-stream";

const INFRASTRUCTURE = new Set<CallClass>([
  "upstream-auth",
  "upstream-http",
  "upstream-connection",
  "upstream-stream",
  "budget-unknown",
]);

export function isInfrastructure(c: CallClass): boolean {
  return INFRASTRUCTURE.has(c);
}

/** How an upstream status is classed: the account (key, billing), a transient failure, or the request's fault. */
export function statusClass(status: number): CallClass {
  if (status < 300) return "ok";
  if (status === 401 || status === 402 || status === 403) return "upstream-auth";
  if (status === 408 || status === 409 || status === 429 || status >= 500) return "upstream-http";
  return "upstream-refused";
}

export interface UpstreamCall {
  url: string;
  /** The provider's name, for the reason line. */
  provider: string;
  headers: Record<string, string>;
  body: string;
}

export interface Relay {
  sink: ReplySink;
  signal: AbortSignal;
  clean: (text: string) => string;
  maxReplyBytes: number;
}

export interface Sent {
  cls: CallClass;
  /** null when no reply began. */
  status: number | null;
  /** The reply as it came, for metering. */
  text: string;
  streamed: boolean;
  reason: string | null;
}

class ReplyTooLarge extends Error {
  constructor(limit: number) {
    super(`the reply is larger than ${limit} bytes`);
  }
}

/** The network error's code, which fetch hides under its causes ("fetch failed (ECONNREFUSED)"). */
export function describeFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  let e = error as { code?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string") return `${message} (${e.code})`;
    e = e.cause as typeof e;
  }
  return message;
}

/** Sends one call and relays its reply; never throws. */
export async function forwardUpstream(call: UpstreamCall, r: Relay): Promise<Sent> {
  let res: Response;
  try {
    res = await fetch(call.url, { method: "POST", headers: call.headers, body: call.body, signal: r.signal });
  } catch (error) {
    r.sink.fail("the model provider could not be reached");
    const cls: CallClass = r.signal.aborted ? "cancelled" : "upstream-connection";
    return { cls, status: null, text: "", streamed: false, reason: `${call.provider}: ${describeFailure(error)}` };
  }
  const streamed = (res.headers.get("content-type") ?? "").includes("text/event-stream");
  r.sink.head(res.status, replyHeaders(res.headers, r.clean));
  const relay = new ReplyRelay(r.sink, r.clean, streamed);
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const bytes of res.body ?? []) {
      const piece = decoder.decode(bytes as Uint8Array, { stream: true });
      text += piece;
      if (text.length > r.maxReplyBytes) throw new ReplyTooLarge(r.maxReplyBytes);
      relay.push(piece);
    }
    relay.push(decoder.decode());
    relay.end();
  } catch (error) {
    r.sink.fail("the reply broke off");
    const cls: CallClass = r.signal.aborted && !(error instanceof ReplyTooLarge) ? "cancelled" : "upstream-stream";
    const reason = `${call.provider}: the reply broke off (${describeFailure(error)})`;
    return { cls, status: res.status, text, streamed, reason };
  }
  const cls = statusClass(res.status);
  const reason = cls === "ok" ? null : `${call.provider} answered ${res.status}: ${r.clean(text).slice(0, 300)}`;
  return { cls, status: res.status, text, streamed, reason };
}
