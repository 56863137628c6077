/**
 * The one module that talks to `@anthropic-ai/sdk`: client construction, a retrying call that
 * survives outages without multiplying retries; per-model prices come from the gateway's table.
 */
import Anthropic, { AnthropicError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "@anthropic-ai/sdk";
import pRetry, { AbortError as StopRetrying } from "p-retry";
import type { Clock } from "../clock.ts";
import { AbortedError, errorMessage, HarnessError } from "../errors.ts";
import { redact, registerSecret } from "../secrets.ts";

export type AnthropicClient = Anthropic;
export type Message = Anthropic.Messages.Message;
export type MessageParams = Anthropic.Messages.MessageStreamParams;
export type MessageParam = Anthropic.Messages.MessageParam;
export type Tool = Anthropic.Messages.ToolUnion;
export type ApiUsage = Anthropic.Messages.Usage;

export interface CreateAnthropicOptions {
  baseURL?: string;
  apiKey?: string;
  maxRetries?: number;
  timeoutMs?: number;
}

/** Used only against a local endpoint (tests, demos) so the SDK has a key to send. */
export const LOCAL_TEST_KEY = "test-key-local";

/** A local endpoint (the test server, a demo) needs no real key. */
export function isLocalUrl(url: string | undefined): boolean {
  if (!url) return false;
  try {
    const host = new URL(url).hostname;
    return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host === "::1";
  } catch {
    return false;
  }
}

export function createAnthropic(opts: CreateAnthropicOptions = {}): Anthropic {
  const baseURL = opts.baseURL ?? process.env.ANTHROPIC_BASE_URL ?? undefined;
  let apiKey = opts.apiKey ?? process.env.ANTHROPIC_API_KEY ?? undefined;
  if (!apiKey && isLocalUrl(baseURL)) apiKey = LOCAL_TEST_KEY;
  // Whatever its format, the key never leaves in anything the harness writes.
  if (apiKey !== LOCAL_TEST_KEY) registerSecret(apiKey);
  return new Anthropic({
    ...(baseURL ? { baseURL } : {}),
    ...(apiKey ? { apiKey } : {}),
    // The SDK's own retries cover HTTP-level failures; callMessages adds the outer layer.
    maxRetries: opts.maxRetries ?? 2,
    ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
  });
}

export interface LlmLog {
  warn(obj: object, msg: string): void;
}

export interface AttemptInfo {
  /** Outer attempt number, from 1. */
  attempt: number;
  ok: boolean;
  error?: unknown;
  /** Backoff before the next attempt; absent when no further attempt follows. */
  waitMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  clock: Clock;
  log?: LlmLog;
  /** Continuous failure for this long ends the call with LLM_UNAVAILABLE. */
  outageMs?: number;
  maxBackoffMs?: number;
  minBackoffMs?: number;
  onAttempt?: (info: AttemptInfo) => void;
  /**
   * A request in flight when `signal` aborts gets this long to land its reply before it is cut: the provider
   * bills a reply it has sent, so a graceful stop journals it instead of losing it. Retries stop at once.
   */
  drainMs?: number;
}

export interface CallResult {
  message: Message;
  latencyMs: number;
  attempts: number;
}

type Verdict = { kind: "retry" } | { kind: "reject"; error: HarnessError } | { kind: "abort" };

const SPEND_LIMIT = /spend|credit|billing|quota|usage limit/i;
const REJECTED_STREAM_ERRORS = new Set([
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "billing_error",
]);

/** The SDK refuses to send a request without a key; no retry can fix that. */
const NO_CREDENTIALS = /Could not resolve authentication method/;

/** The first `code` (ECONNREFUSED, ENOTFOUND…) along an error's cause chain. */
function causeCode(error: unknown): string | null {
  let e = error as { code?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string") return e.code;
    e = e.cause as typeof e;
  }
  return null;
}

/** A network error's code as its class: "connection refused", "DNS lookup failed"… */
export function connectionClass(code: string): string {
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "DNS lookup failed";
  if (code === "ETIMEDOUT" || code === "UND_ERR_CONNECT_TIMEOUT") return "timeout";
  if (code === "ECONNRESET") return "connection reset";
  if (code === "ENETUNREACH" || code === "EHOSTUNREACH") return "network unreachable";
  return code;
}

/**
 * The class of a failed call, with no request or task content: "HTTP 401", "connection refused",
 * "DNS lookup failed", "timeout"… What an operator needs to see to fix the cause.
 */
export function failureClass(error: unknown): string {
  if (error instanceof APIError && typeof error.status === "number") return `HTTP ${error.status}`;
  if (error instanceof APIConnectionTimeoutError) return "timeout";
  const code = causeCode(error);
  if (code) return connectionClass(code);
  if (error instanceof AnthropicError && NO_CREDENTIALS.test(error.message)) return "no API key";
  if (error instanceof AnthropicError) return "connection error";
  return (error as Error)?.name ?? "error";
}

/** The provider's own message from an API error body, with secrets removed. */
export function providerMessage(error: unknown): string {
  const body = (error as { error?: { error?: { message?: unknown }; message?: unknown } }).error;
  const inner = body?.error?.message ?? body?.message;
  return redact(typeof inner === "string" ? inner : errorMessage(error));
}

/**
 * One line about a failed check call: `fatal` when waiting cannot help (bad key, unknown model,
 * unreachable endpoint); a rate limit or an overloaded server means the endpoint is there.
 */
export function describeLlmFailure(
  error: unknown,
  at: { model: string; where: string },
): { fatal: boolean; message: string } {
  const cls = failureClass(error);
  const status = error instanceof APIError ? error.status : undefined;
  if (typeof status === "number") {
    const said = providerMessage(error);
    if (status === 401 || status === 403) {
      return { fatal: true, message: `${at.where} refused the API key (${cls}: ${said}); check ANTHROPIC_API_KEY` };
    }
    if (status === 404) {
      return {
        fatal: true,
        message: `${at.where} does not know model \`${at.model}\` (${cls}: ${said}); check coding_model/agent_model in experiment_config.yaml and ANTHROPIC_BASE_URL`,
      };
    }
    if (status === 429 && SPEND_LIMIT.test(said)) {
      return {
        fatal: true,
        message: `${at.where} refused for a spend limit (${cls}: ${said}); raise the limit or wait`,
      };
    }
    if (status === 408 || status === 409 || status === 429 || status >= 500) return { fatal: false, message: said };
    return { fatal: true, message: `${at.where} refused a minimal request to \`${at.model}\` (${cls}: ${said})` };
  }
  if (cls === "no API key") {
    return {
      fatal: true,
      message: "ANTHROPIC_API_KEY is not set; export it (or set ANTHROPIC_BASE_URL to a local endpoint)",
    };
  }
  return {
    fatal: true,
    message: `cannot reach ${at.where} (${cls}); check ANTHROPIC_BASE_URL and the network`,
  };
}

function rejected(message: string, cause: unknown): Verdict {
  return { kind: "reject", error: new HarnessError("LLM_REJECTED", message, { cause }) };
}

/** Decides what the outer layer does with an error the SDK gave up on. */
export function classifyLlmError(error: unknown, signal?: AbortSignal): Verdict {
  if (signal?.aborted || error instanceof APIUserAbortError) return { kind: "abort" };
  if (error instanceof APIError && typeof error.status === "number") {
    const status = error.status;
    const detail = providerMessage(error);
    if (status === 429) {
      return SPEND_LIMIT.test(detail)
        ? rejected(`the API refused for a spend/billing limit; raise the limit or wait: ${detail}`, error)
        : { kind: "retry" };
    }
    if (status === 408 || status === 409 || status >= 500) return { kind: "retry" };
    if (status === 401 || status === 403)
      return rejected(`authentication failed (${status}: ${providerMessage(error)}); check ANTHROPIC_API_KEY`, error);
    if (status === 404)
      return rejected(`not found (404); check the model name and ANTHROPIC_BASE_URL: ${providerMessage(error)}`, error);
    if (status === 402) return rejected(`payment required (402); check the account's billing: ${detail}`, error);
    return rejected(`the request was refused (${status}): ${detail}`, error);
  }
  if (error instanceof APIError && error.type && REJECTED_STREAM_ERRORS.has(error.type)) {
    return rejected(`the request was refused mid-stream (${error.type}): ${providerMessage(error)}`, error);
  }
  if (error instanceof AnthropicError && NO_CREDENTIALS.test(error.message)) {
    return rejected("ANTHROPIC_API_KEY is not set; export it (or point ANTHROPIC_BASE_URL at a local endpoint)", error);
  }
  // Mid-stream failures (dropped connection, SSE error event) and exhausted connection retries.
  if (error instanceof AnthropicError) return { kind: "retry" };
  // undici reports a body cut short as a bare TypeError("terminated") when nothing wraps it.
  if (error instanceof TypeError && /terminated|fetch failed|other side closed/i.test(errorMessage(error))) {
    return { kind: "retry" };
  }
  return rejected(`unexpected error from the LLM client: ${errorMessage(error)}`, error);
}

/** Resolves after `ms` of injected time, or rejects as soon as the signal aborts. */
function sleepUnlessAborted(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return clock.sleep(ms);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    clock.sleep(ms, signal).then(
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Streams one Messages call to its final message. The SDK retries HTTP-level failures itself;
 * this layer retries only what it cannot (mid-stream errors, its exhausted retries) with capped
 * backoff on the injected clock, until `outageMs` of continuous failure.
 */
export async function callMessages(client: Anthropic, params: MessageParams, opts: CallOptions): Promise<CallResult> {
  const { signal, clock, log, onAttempt } = opts;
  const outageMs = opts.outageMs ?? 30 * 60_000;
  const maxBackoffMs = opts.maxBackoffMs ?? 60_000;
  const minBackoffMs = Math.min(opts.minBackoffMs ?? 1_000, maxBackoffMs);
  // The outage window is a duration: on the monotonic clock, so an NTP step neither hides nor fakes one.
  const startedAt = clock.monotonic();
  let attempts = 0;
  let latencyMs = 0;

  const attempt = async (): Promise<Message> => {
    attempts += 1;
    const attemptStart = clock.monotonic();
    // Only a request already on its way drains: one started after the stop is not sent at all.
    const request = signal && opts.drainMs && !signal.aborted ? drained(signal, opts.drainMs, clock) : null;
    const requestSignal = request?.signal ?? signal;
    try {
      const message = await client.messages
        .stream(params, requestSignal ? { signal: requestSignal } : {})
        .finalMessage();
      latencyMs = clock.monotonic() - attemptStart;
      onAttempt?.({ attempt: attempts, ok: true });
      return message;
    } catch (error) {
      const verdict = classifyLlmError(error, signal);
      if (verdict.kind === "abort") throw new StopRetrying(new AbortedError("LLM call aborted", error));
      if (verdict.kind === "reject") {
        onAttempt?.({ attempt: attempts, ok: false, error });
        throw new StopRetrying(verdict.error);
      }
      // p-retry refuses to retry most TypeErrors, so hand it an SDK error instead.
      throw error instanceof AnthropicError ? error : new AnthropicError(errorMessage(error), { cause: error });
    } finally {
      request?.done();
    }
  };

  try {
    const message = await pRetry(attempt, {
      retries: Number.POSITIVE_INFINITY,
      // Backoff is slept on the injected clock in onFailedAttempt, so p-retry itself never waits.
      minTimeout: 0,
      maxTimeout: 0,
      onFailedAttempt: async ({ error, attemptNumber }) => {
        const elapsed = clock.monotonic() - startedAt;
        const left = outageMs - elapsed;
        if (left <= 0) {
          onAttempt?.({ attempt: attemptNumber, ok: false, error });
          throw new HarnessError(
            "LLM_UNAVAILABLE",
            `the LLM API kept failing for ${Math.round(elapsed / 1000)}s over ${attemptNumber} attempts: ${error.message}`,
            { cause: error },
          );
        }
        const waitMs = Math.min(maxBackoffMs, minBackoffMs * 2 ** (attemptNumber - 1), left);
        onAttempt?.({ attempt: attemptNumber, ok: false, error, waitMs });
        log?.warn({ attempt: attemptNumber, waitMs, err: error.message }, "LLM call failed; retrying");
        await sleepUnlessAborted(clock, waitMs, signal);
      },
    });
    return { message, latencyMs, attempts };
  } catch (error) {
    if (error instanceof HarnessError) throw error;
    if (signal?.aborted) throw new AbortedError("LLM call aborted", error);
    throw error;
  }
}

/** `signal`, `ms` later; `done` detaches it once the request is over (the step's signal outlives many calls). */
function drained(signal: AbortSignal, ms: number, clock: Clock): { signal: AbortSignal; done: () => void } {
  const late = new AbortController();
  const over = new AbortController();
  const cut = () => {
    clock.sleep(ms, over.signal).then(
      () => late.abort(signal.reason),
      () => {},
    );
  };
  signal.addEventListener("abort", cut, { once: true });
  return {
    signal: late.signal,
    done: () => {
      signal.removeEventListener("abort", cut);
      over.abort();
    },
  };
}

// Prices live in the gateway's one table; the coding agent's budget reads the same numbers.
export {
  costUsd,
  type ModelPrice,
  type PriceOverrides,
  priceFor,
  type UsageCounts,
  worstCaseCostUsd,
} from "../gateway/prices.ts";
