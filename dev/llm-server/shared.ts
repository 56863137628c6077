/** What the test server's formats share: the recorded request, a scripted reply, and how bytes are written. */
import type { ServerResponse } from "node:http";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are arbitrary JSON chosen by the caller
  body: any;
  raw: string;
  at: number;
}

export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id?: string; name: string; input: unknown };

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface ReplyStep {
  reply: { content: ContentBlock[]; stop_reason?: string; usage?: Partial<Usage>; model?: string };
  delayMs?: number;
}

/** Retry hints; the SDK honours `retry-after-ms` before `retry-after`. */
export interface RetryHint {
  retryAfterSeconds?: number;
  retryAfterMs?: number;
}

/** A scripted reply as the Messages API gives it; the OpenAI formats are written from the same message. */
export interface TestMessage {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
  content: ({ type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: unknown })[];
  stop_reason: string;
  stop_sequence: null;
  usage: Usage;
}

export const roughTokens = (chars: number): number => Math.max(1, Math.ceil(chars / 4));

export function retryHeaders(step: RetryHint): Record<string, string> {
  const headers: Record<string, string> = {};
  if (step.retryAfterMs !== undefined) headers["retry-after-ms"] = String(step.retryAfterMs);
  if (step.retryAfterSeconds !== undefined) headers["retry-after"] = String(step.retryAfterSeconds);
  return headers;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", "request-id": "req_test", ...headers });
  res.end(body);
}

export function startStream(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": "req_test" });
}

export function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Splits a string into two pieces so clients see more than one delta per block. */
export function halves(s: string): string[] {
  if (s.length < 2) return [s];
  const mid = Math.ceil(s.length / 2);
  return [s.slice(0, mid), s.slice(mid)];
}

/**
 * How one API writes what the script asks for: a whole reply, a stream, its error shape, and the start of a
 * believable stream for the faults that break one off.
 */
export interface FormatWriter {
  reply(res: ServerResponse, message: TestMessage, rec: RecordedRequest): void;
  stream(res: ServerResponse, message: TestMessage, rec: RecordedRequest): void;
  errorBody(type: string, message: string): string;
  streamPrefix(res: ServerResponse, message: TestMessage): void;
  /** The error event that ends a stream the provider gave up on. */
  streamError(): string;
}
