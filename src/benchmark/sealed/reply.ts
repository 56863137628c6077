/**
 * The reply side of the model proxy: what the harness reads from the endpoint's answer (the final message,
 * streamed or not, and the usage it meters from it, never from the agent), and what it takes out before the
 * answer goes into the sandbox: the key, by value, in whatever form an endpoint echoes it.
 */
import type { LlmCallRow } from "../../journal/stores.ts";
import { costUsd } from "../../llm/client.ts";
import { REDACTED } from "../../secrets.ts";

/** Metered from the reply: the ledger row without its run tags. */
export type MeteredCall = Omit<LlmCallRow, "runId" | "iteration">;

export function parseJson(text: string | null): unknown {
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

export function meter(
  message: Record<string, unknown> | null,
  requestedModel: string,
  latencyMs: number,
): MeteredCall | null {
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

/**
 * Removes the key's forms (as sent, JSON-escaped, URL-encoded) from text that arrives in pieces: the tail of
 * each piece that could begin a form is held back until the next one, so a key split between two pieces
 * is caught too. Shorter values are not keys (secrets.ts keeps the same floor).
 */
export class KeyScrubber {
  private readonly forms: string[];
  private readonly hold: number;
  private pending = "";

  constructor(key: string | null) {
    const forms = key && key.length >= 8 ? [key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key)] : [];
    this.forms = [...new Set(forms)].sort((a, b) => b.length - a.length);
    this.hold = Math.max(0, ...this.forms.map((f) => f.length - 1));
  }

  /** A whole value (a header): nothing held back. */
  scrub(text: string): string {
    let out = text;
    for (const form of this.forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  }

  /** The part of the stream so far that is safe to pass on. */
  push(piece: string): string {
    if (this.forms.length === 0) return piece;
    const text = this.scrub(this.pending + piece);
    let cut = Math.max(0, text.length - this.hold);
    // Never between the two halves of a surrogate pair: the agent would get a replacement character.
    if (cut > 0 && /[\uD800-\uDBFF]/.test(text[cut - 1]!)) cut -= 1;
    this.pending = text.slice(cut);
    return text.slice(0, cut);
  }

  /** The rest, at the end of the stream. */
  end(): string {
    const rest = this.scrub(this.pending);
    this.pending = "";
    return rest;
  }
}
