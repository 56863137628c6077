/**
 * What the three formats share: a request is parsed by a strict schema and rebuilt from what it parsed, never
 * forwarded as sent, and each refusal names the field and why, so the agent's author can fix it.
 */
import { z } from "zod";
import type { UsageCounts } from "../prices.ts";

export type ApiName = "anthropic-messages" | "openai-chat" | "openai-responses";

export interface ParsedRequest {
  /** The rebuilt body: only fields the schema knows, as it parsed them. */
  body: Record<string, unknown>;
  model: string;
  stream: boolean;
  /** The request's own output cap, or null when it set none. */
  maxOutputTokens: number | null;
}

export type Parsed = { ok: true; request: ParsedRequest } | { ok: false; reason: string };

export interface Metered {
  /** Usage as the reply reported it, in the Anthropic shape the price table reads; null when none was seen. */
  usage: UsageCounts | null;
  stopReason: string | null;
  /** The reply (a streamed one reassembled), for traces. */
  response: unknown;
  /** The reply ended as the format ends it (a final event, a whole JSON body). */
  complete: boolean;
}

export interface WireFormat {
  api: ApiName;
  /** Which providers serve it. */
  provider: "anthropic" | "openai";
  /** The path the agent's SDK calls. */
  path: string;
  /** The path under the provider's base URL. */
  upstreamPath: string;
  parse(raw: unknown): Parsed;
  /** The body sent upstream: the provider's model name, the output cap, the usage a stream must carry. */
  finalize(request: ParsedRequest, upstreamModel: string, cap: number): Record<string, unknown>;
  meter(text: string, streamed: boolean): Metered;
  errorBody(type: string, message: string): string;
}

/** An http(s) URL the provider would fetch is a way out of the sandbox: only inline `data:` URLs pass. */
export const dataUrl = z
  .string()
  .startsWith("data:", "only inline data: URLs; the provider fetching a URL would be a way out of the sandbox");

/** Free-form JSON the provider reads but the gateway need not understand (a tool's JSON schema, its input). */
export const jsonObject = z.record(z.string(), z.unknown());

export const positiveInt = z.int().min(1);

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function at(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value = raw;
  for (const part of path)
    value = value && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[part] : undefined;
  return value;
}

type Issue = z.core.$ZodIssue;

/** A field the gateway does not forward says more than the fields it then misses. */
function preferred(issues: readonly Issue[]): Issue | undefined {
  return issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
}

/**
 * Inside a union ("a string or a list of blocks"), the option that got furthest names the real problem: the
 * deepest issue, its path made whole.
 */
function deepest(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return issue;
  let best: Issue = issue;
  for (const option of issue.errors) {
    const first = preferred(option);
    if (!first) continue;
    const inner = deepest(first);
    const whole = { ...inner, path: [...issue.path, ...inner.path] } as Issue;
    if (best === issue || whole.path.length > best.path.length) best = whole;
  }
  return best;
}

/** The first problem zod found, as one line naming the field: `messages.0.content.1.type: got "x"; …`. */
export function firstProblem(error: z.ZodError, raw: unknown): string {
  const first = preferred(error.issues);
  if (!first) return "the request is not valid";
  const issue = deepest(first);
  const path = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    const field = path === "" ? issue.keys[0] : `${path}.${issue.keys[0]}`;
    return `${field}: unknown field; the gateway forwards only the fields it knows, so remove it`;
  }
  const where = path === "" ? "(body)" : path;
  return `${where}: got ${show(at(raw, issue.path))}; ${issue.message}`;
}

/** Top-level fields refused by name, each with the reason the agent reads. */
export function forbiddenField(raw: Record<string, unknown>, forbidden: Record<string, string>): string | null {
  for (const key of Object.keys(raw)) {
    if (Object.hasOwn(forbidden, key)) return `${key}: not allowed through the gateway; ${forbidden[key]}`;
  }
  return null;
}

/** A tool the provider runs itself (web search, code execution, MCP…) is refused with its type named. */
export function serverTool(tools: unknown, allowed: (type: unknown) => boolean): string | null {
  if (!Array.isArray(tools)) return null;
  for (const [i, tool] of tools.entries()) {
    const type = (tool as { type?: unknown } | null)?.type;
    if (!allowed(type)) {
      return `tools.${i}.type: got ${show(type)}; only the agent's own function tools pass: a tool the provider runs itself (web search or fetch, code execution, computer use, MCP, files) would reach outside the sandbox`;
    }
  }
  return null;
}

/**
 * Parses with the format's schema after its named refusals; the parsed value is what gets forwarded.
 * `maxOutput` reads the request's own output cap, in whichever field the format keeps it.
 */
export function parseRequest<S extends z.ZodType<{ model: string; stream?: boolean | null }>>(
  raw: unknown,
  schema: S,
  checks: (body: Record<string, unknown>) => string | null,
  maxOutput: (body: z.output<S>) => number | null | undefined,
): Parsed {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, reason: "(body): expected a JSON object" };
  }
  const named = checks(raw as Record<string, unknown>);
  if (named) return { ok: false, reason: named };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: firstProblem(parsed.error, raw) };
  const body = parsed.data;
  return {
    ok: true,
    request: {
      body: body as Record<string, unknown>,
      model: body.model,
      stream: body.stream === true,
      maxOutputTokens: maxOutput(body) ?? null,
    },
  };
}

/** A whole (not streamed) reply: read by the format when it is its kind of reply; an error body was not paid for. */
export function meterWhole(
  text: string,
  isReply: (reply: Record<string, unknown>) => boolean,
  read: (reply: Record<string, unknown>) => Metered,
): Metered {
  const reply = parseJson(text);
  if (!isRecord(reply) || !isReply(reply)) {
    return { usage: null, stopReason: null, response: reply ?? text, complete: false };
  }
  return read(reply);
}

export function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** OpenAI counts cached tokens inside the input; the price table wants them apart. */
export function withCachedApart(input: unknown, cached: unknown, output: unknown): UsageCounts {
  const read = Math.min(count(cached), count(input));
  return {
    input_tokens: count(input) - read,
    output_tokens: count(output),
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: read,
  };
}

/** OpenAI's error reply shape, which both of its SDK families read. */
export function openaiErrorBody(type: string, message: string): string {
  return JSON.stringify({ error: { message, type, param: null, code: type } });
}
