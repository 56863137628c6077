/**
 * The metered model gateway: every model call of the agent under test passes here, whatever its SDK. A request
 * is checked (path, headers, size, JSON), parsed and rebuilt from the format's allow-list, routed to a model the
 * config allows, and its worst-case cost reserved against the budget before it is forwarded with the harness's
 * key. The reply is passed back with every key removed, metered from what the provider sent (never from what
 * the agent says), and the call is reported as paid the moment its reply ends. Who failed is returned as data:
 * the caller scores the task from it.
 */
import { randomUUID } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { ProviderFormat } from "../config/schema.ts";
import type { Split } from "../domain.ts";
import { anthropicMessages } from "./formats/anthropic.ts";
import { openaiChat } from "./formats/openai-chat.ts";
import { openaiResponses } from "./formats/openai-responses.ts";
import type { ApiName, Metered, WireFormat } from "./formats/strict.ts";
import { costOf, worstCaseOf } from "./prices.ts";
import { route, type Target, upstreamHeaders } from "./providers.ts";
import { keyRemover, type ReplySink } from "./reply.ts";
import { type CallClass, describeFailure, forwardUpstream, isInfrastructure } from "./upstream.ts";

export type { ReplySink } from "./reply.ts";
export { type CallClass, isInfrastructure, statusClass } from "./upstream.ts";

/** A call the provider was paid for, reported as soon as its reply ends (or breaks off after usage was seen). */
export interface PaidCall {
  /** Unique per call: the caller's key when it gave one, so a ledger can record it once. */
  callId: string;
  split: Split | null;
  api: ApiName;
  /** `provider/model`. */
  model: string;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  costUsd: number;
  latencyMs: number;
  stopReason: string | null;
  /** False when the reply broke off after its usage was seen. */
  complete: boolean;
}

export interface CallBudget {
  /** Takes `usd` out of what is left, or returns false (taking nothing) when it does not fit. */
  reserve(usd: number): boolean | Promise<boolean>;
  /** Ends a reservation: what was reserved is given back and what the call was metered at is spent. */
  settle(reservedUsd: number, paidUsd: number): void | Promise<void>;
}

export interface GatewayRequest {
  method: string;
  /** Path and query, as the agent's client sent them. */
  path: string;
  /** Lower-case names. */
  headers: Readonly<Record<string, string>>;
  body: string | null;
}

export interface CallOptions {
  signal?: AbortSignal;
  split?: Split | null;
  callId?: string;
}

export interface GatewayResult {
  class: CallClass;
  infra: boolean;
  /** The status the caller's client saw; null when no reply began. */
  status: number | null;
  /** One line on what went wrong; null on success. */
  reason: string | null;
  api: ApiName | null;
  /** `provider/model`, once routed. */
  model: string | null;
  paid: PaidCall | null;
  /** The body sent upstream (or, refused, the body as parsed), for traces. */
  request: unknown;
  /** The reply, a stream reassembled, for traces. */
  response: unknown;
  latencyMs: number;
}

export interface GatewayOptions {
  targets: readonly Target[];
  clock: Clock;
  budget: CallBudget;
  onPaid?: (call: PaidCall) => void;
  /** Output cap set on a request that names none (the format's `max_tokens` or equivalent). */
  defaultMaxTokens?: number;
  maxRequestBytes?: number;
  maxReplyBytes?: number;
  log?: { warn(obj: object, msg: string): void };
}

export interface Gateway {
  /** Serves one call; never throws. */
  handle(req: GatewayRequest, sink: ReplySink, options?: CallOptions): Promise<GatewayResult>;
}

export const DEFAULT_MAX_TOKENS = 16_384;
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
// A conservative tokens-per-byte bound for reserving: real text runs nearer four bytes a token.
const BYTES_PER_TOKEN = 3;
/**
 * A large prompt, by today's context windows. A call that does not fit the budget while one this size would is
 * the agent's oversized request, refused to it; only when an ordinary call does not fit is the budget spent. Else
 * an agent could stop the night by asking for a call no budget holds.
 */
const ORDINARY_INPUT_TOKENS = 200_000;

const FORMATS: readonly WireFormat[] = [anthropicMessages, openaiChat, openaiResponses];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const BAD_HEADER_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

interface Admitted {
  format: WireFormat;
  target: Target;
  body: string;
  sent: Record<string, unknown>;
  headers: Record<string, string>;
  reservedUsd: number;
  /** The same call's worst case at an ordinary size (ORDINARY_INPUT_TOKENS in, the output cap out). */
  ordinaryUsd: number;
}

type Refusal = { status: number; type: string; class: CallClass; reason: string; format: WireFormat; request: unknown };

function formatFor(pathname: string): WireFormat | undefined {
  return FORMATS.find((f) => f.path === pathname);
}

function badHeader(headers: Readonly<Record<string, string>>): string | null {
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) return `header ${JSON.stringify(name)}: not a valid header name`;
    if (typeof value !== "string" || BAD_HEADER_VALUE.test(value)) {
      return `header ${name}: its value has a control character (CR, LF or NUL)`;
    }
  }
  return null;
}

function wrongPath(method: string, pathname: string): string {
  const known = FORMATS.map((f) => `POST ${f.path}`).join(", ");
  const bare = FORMATS.find((f) => f.path === `/v1${pathname}`);
  const hint = bare ? `; an OpenAI client's base URL ends in /v1, an Anthropic client's does not` : "";
  return `${method} ${pathname}: the gateway serves only ${known}${hint}`;
}

export function createGateway(o: GatewayOptions): Gateway {
  return new MeteredGateway(o);
}

class MeteredGateway implements Gateway {
  private readonly cap: number;
  private readonly maxRequestBytes: number;
  private readonly maxReplyBytes: number;
  private readonly clean: (text: string) => string;

  constructor(private readonly o: GatewayOptions) {
    this.cap = o.defaultMaxTokens ?? DEFAULT_MAX_TOKENS;
    this.maxRequestBytes = o.maxRequestBytes ?? MAX_REQUEST_BYTES;
    this.maxReplyBytes = o.maxReplyBytes ?? MAX_REPLY_BYTES;
    this.clean = keyRemover([...new Set(o.targets.map((t) => t.provider.apiKey))]);
  }

  async handle(req: GatewayRequest, sink: ReplySink, options: CallOptions = {}): Promise<GatewayResult> {
    const started = this.o.clock.monotonic();
    const admitted = this.admit(req);
    if (!("target" in admitted)) return this.refusal(admitted, sink, started);
    const call = admitted;
    const unaffordable = await this.reserve(call);
    if (unaffordable) return this.refusal(unaffordable, sink, started);
    let paid: PaidCall | null = null;
    try {
      const signal = options.signal ?? new AbortController().signal;
      const { provider } = call.target;
      const upstream = { url: `${provider.baseUrl}${call.format.upstreamPath}`, provider: provider.name };
      const sent = await forwardUpstream(
        { ...upstream, headers: call.headers, body: call.body },
        { sink, signal, clean: this.clean, maxReplyBytes: this.maxReplyBytes },
      );
      // A reply that carried usage was paid for, whole or not; an error body carries none.
      const metered = sent.status === null ? null : call.format.meter(this.clean(sent.text), sent.streamed);
      const latencyMs = this.o.clock.monotonic() - started;
      paid = metered ? this.paidCall(call, metered, options, latencyMs) : null;
      let cls = sent.cls;
      let reason = sent.reason;
      if (cls === "ok" && !metered?.complete) {
        cls = "upstream-stream";
        reason = `${call.target.provider.name}: the reply ended before the format's end (no final event or whole body)`;
      }
      if (paid) this.report(paid);
      return {
        class: cls,
        infra: isInfrastructure(cls),
        status: sent.status,
        reason,
        api: call.format.api,
        model: call.target.ref,
        paid,
        request: call.sent,
        response: metered?.response ?? null,
        latencyMs,
      };
    } finally {
      this.settle(call.reservedUsd, paid?.costUsd ?? 0);
    }
  }

  /** The call's worst case held against the budget, or the refusal when it does not fit. */
  private async reserve(call: Admitted): Promise<Refusal | null> {
    let fits: boolean;
    try {
      fits = await this.o.budget.reserve(call.reservedUsd);
    } catch (error) {
      // The budget's store (a worker's Redis) is the harness's side: the call cannot be made, through no fault of the agent.
      const reason = `the run's budget could not be checked (${describeFailure(error)})`;
      return {
        status: 503,
        type: "overloaded_error",
        class: "budget-unknown",
        reason,
        format: call.format,
        request: call.sent,
      };
    }
    if (fits) return null;
    if (call.ordinaryUsd < call.reservedUsd && (await this.fitsAlone(call.ordinaryUsd))) {
      const why = `(body): this call may cost up to $${call.reservedUsd.toFixed(4)}, more than the run's budget_usd has left; send a shorter request or ask for fewer output tokens (at most ${this.cap})`;
      return {
        status: 400,
        type: "invalid_request_error",
        class: "agent-request",
        reason: why,
        format: call.format,
        request: call.sent,
      };
    }
    const why = `the run's budget_usd has no room for this call (up to $${call.reservedUsd.toFixed(4)}); lower its max tokens or raise budget_usd`;
    return {
      status: 402,
      type: "budget_exhausted",
      class: "budget",
      reason: why,
      format: call.format,
      request: call.sent,
    };
  }

  /** Whether a call of this worst case would fit now (the reservation is taken and given back at once). */
  private async fitsAlone(usd: number): Promise<boolean> {
    try {
      if (!(await this.o.budget.reserve(usd))) return false;
    } catch {
      return false;
    }
    this.settle(usd, 0);
    return true;
  }

  private settle(reservedUsd: number, paidUsd: number): void {
    const failed = (error: unknown) =>
      this.o.log?.warn({ err: describeFailure(error) }, "settling a model call's reservation failed");
    try {
      void Promise.resolve(this.o.budget.settle(reservedUsd, paidUsd)).catch(failed);
    } catch (error) {
      failed(error);
    }
  }

  private admit(req: GatewayRequest): Admitted | Refusal {
    const pathname = new URL(req.path, "http://gateway.invalid").pathname;
    const format = formatFor(pathname);
    const refuse = (
      status: number,
      type: string,
      reason: string,
      cls: CallClass = "agent-request",
      request: unknown = null,
    ) => ({ status, type, class: cls, reason, format: format ?? openaiChat, request }) satisfies Refusal;
    if (req.method.toUpperCase() !== "POST" || !format) {
      return refuse(404, "not_found_error", wrongPath(req.method.toUpperCase(), pathname));
    }
    const header = badHeader(req.headers);
    if (header) return refuse(400, "invalid_request_error", header);
    if (req.body !== null && Buffer.byteLength(req.body) > this.maxRequestBytes) {
      return refuse(413, "request_too_large", `(body): larger than ${this.maxRequestBytes} bytes`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(req.body ?? "");
    } catch {
      return refuse(400, "invalid_request_error", "(body): not JSON");
    }
    const parsed = format.parse(raw);
    if (!parsed.ok) return refuse(400, "invalid_request_error", parsed.reason, "agent-request", raw);
    const routed = route(this.o.targets, format.provider as ProviderFormat, parsed.request.model);
    if (!routed.ok) return refuse(400, "invalid_request_error", routed.reason, "agent-request", raw);
    const { target } = routed;
    const headers = upstreamHeaders(target.provider, req.headers);
    if (!headers.ok) return refuse(400, "invalid_request_error", headers.reason, "agent-request", raw);
    const sent = format.finalize(parsed.request, target.model, this.cap);
    const body = JSON.stringify(sent);
    const inputTokens = Math.ceil(Buffer.byteLength(body) / BYTES_PER_TOKEN);
    const outputTokens = parsed.request.maxOutputTokens ?? this.cap;
    return {
      format,
      target,
      body,
      sent,
      headers: headers.headers,
      reservedUsd: worstCaseOf(target.price, inputTokens, outputTokens),
      ordinaryUsd: worstCaseOf(
        target.price,
        Math.min(inputTokens, ORDINARY_INPUT_TOKENS),
        Math.min(outputTokens, this.cap),
      ),
    };
  }

  private refusal(r: Refusal, sink: ReplySink, started: number): GatewayResult {
    sink.head(r.status, { "content-type": "application/json" });
    sink.end(r.format.errorBody(r.type, r.reason));
    return {
      class: r.class,
      infra: isInfrastructure(r.class),
      status: r.status,
      reason: r.reason,
      api: r.format.api,
      model: null,
      paid: null,
      request: r.request,
      response: null,
      latencyMs: this.o.clock.monotonic() - started,
    };
  }

  private paidCall(call: Admitted, metered: Metered, options: CallOptions, latencyMs: number): PaidCall | null {
    if (!metered.usage) return null;
    const u = metered.usage;
    return {
      callId: options.callId ?? randomUUID(),
      split: options.split ?? null,
      api: call.format.api,
      model: call.target.ref,
      inputTokens: u.input_tokens,
      outputTokens: u.output_tokens,
      cacheCreationTokens: u.cache_creation_input_tokens ?? 0,
      cacheReadTokens: u.cache_read_input_tokens ?? 0,
      costUsd: costOf(call.target.price, u),
      latencyMs,
      stopReason: metered.stopReason,
      complete: metered.complete,
    };
  }

  private report(paid: PaidCall): void {
    try {
      this.o.onPaid?.(paid);
    } catch (error) {
      this.o.log?.warn({ callId: paid.callId, err: describeFailure(error) }, "recording a paid model call failed");
    }
  }
}
