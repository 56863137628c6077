/** The Anthropic Messages API (`POST /v1/messages`): the fields the gateway forwards, and usage read from a reply. */
import { z } from "zod";
import { parseSse } from "../sse.ts";
import {
  count,
  forbiddenField,
  isRecord,
  jsonObject,
  type Metered,
  meterWhole,
  parseJson,
  parseRequest,
  positiveInt,
  serverTool,
  type WireFormat,
} from "./strict.ts";

// A one-hour cache write costs 2x input where the price table counts 1.25x: only the 5-minute cache passes.
const cacheControl = z.strictObject({ type: z.literal("ephemeral"), ttl: z.literal("5m").optional() });
const cached = { cache_control: cacheControl.nullable().optional() };

// `url` and `file` sources make the provider fetch a URL or read its file store: neither leaves the run sealed.
const base64Source = z.strictObject({ type: z.literal("base64"), media_type: z.string(), data: z.string() });
const plainTextSource = z.strictObject({
  type: z.literal("text"),
  media_type: z.literal("text/plain"),
  data: z.string(),
});

const textBlock = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
  citations: z.array(jsonObject).nullable().optional(),
  ...cached,
});
const imageBlock = z.strictObject({ type: z.literal("image"), source: base64Source, ...cached });
const contentSource = z.strictObject({
  type: z.literal("content"),
  content: z.union([z.string(), z.array(z.discriminatedUnion("type", [textBlock, imageBlock]))]),
});
const documentBlock = z.strictObject({
  type: z.literal("document"),
  source: z.discriminatedUnion("type", [base64Source, plainTextSource, contentSource]),
  title: z.string().nullable().optional(),
  context: z.string().nullable().optional(),
  citations: z.strictObject({ enabled: z.boolean() }).optional(),
  ...cached,
});
const toolUseBlock = z.strictObject({
  type: z.literal("tool_use"),
  id: z.string(),
  name: z.string(),
  input: z.unknown(),
  ...cached,
});
const toolResultBlock = z.strictObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string(),
  content: z
    .union([z.string(), z.array(z.discriminatedUnion("type", [textBlock, imageBlock, documentBlock]))])
    .optional(),
  is_error: z.boolean().optional(),
  ...cached,
});
const thinkingBlock = z.strictObject({ type: z.literal("thinking"), thinking: z.string(), signature: z.string() });
const redactedThinkingBlock = z.strictObject({ type: z.literal("redacted_thinking"), data: z.string() });

const message = z.strictObject({
  role: z.enum(["user", "assistant"]),
  content: z.union([
    z.string(),
    z.array(
      z.discriminatedUnion("type", [
        textBlock,
        imageBlock,
        documentBlock,
        toolUseBlock,
        toolResultBlock,
        thinkingBlock,
        redactedThinkingBlock,
      ]),
    ),
  ]),
});

const tool = z.strictObject({
  type: z.literal("custom").optional(),
  name: z.string().min(1).max(128),
  description: z.string().optional(),
  input_schema: jsonObject,
  ...cached,
});

const parallel = { disable_parallel_tool_use: z.boolean().optional() };
const toolChoice = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("auto"), ...parallel }),
  z.strictObject({ type: z.literal("any"), ...parallel }),
  z.strictObject({ type: z.literal("none") }),
  z.strictObject({ type: z.literal("tool"), name: z.string(), ...parallel }),
]);

const thinking = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("enabled"), budget_tokens: z.int().min(1024) }),
  z.strictObject({ type: z.literal("disabled") }),
  z.strictObject({ type: z.literal("adaptive") }),
]);

const request = z.strictObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  max_tokens: positiveInt.optional(),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  metadata: z.strictObject({ user_id: z.string().nullable().optional() }).optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: positiveInt.optional(),
  tools: z.array(tool).optional(),
  tool_choice: toolChoice.optional(),
  thinking: thinking.optional(),
});

const FORBIDDEN: Record<string, string> = {
  mcp_servers: "MCP servers are called by the provider, outside the sandbox",
  container: "a provider-side container outlives the task: a channel between runs",
  service_tier: "a service tier changes the price the run is metered at",
};

function usageOf(u: unknown): Metered["usage"] {
  if (!isRecord(u)) return null;
  return {
    input_tokens: count(u.input_tokens),
    output_tokens: count(u.output_tokens),
    cache_creation_input_tokens: count(u.cache_creation_input_tokens),
    cache_read_input_tokens: count(u.cache_read_input_tokens),
  };
}

/** Rebuilds the final message from a stream's events, so usage and traces read the same either way. */
function fromStream(text: string): Metered {
  let reply: Record<string, unknown> | null = null;
  let usage: Record<string, unknown> = {};
  let complete = false;
  const blocks: Record<string, unknown>[] = [];
  const json: string[] = [];
  for (const { data } of parseSse(text)) {
    const e = parseJson(data);
    if (!isRecord(e)) continue;
    const i = typeof e.index === "number" ? e.index : -1;
    const delta = isRecord(e.delta) ? e.delta : {};
    if (e.type === "message_start" && isRecord(e.message)) {
      reply = { ...e.message };
      usage = isRecord(e.message.usage) ? { ...e.message.usage } : {};
    } else if (e.type === "content_block_start" && isRecord(e.content_block)) {
      blocks[i] = { ...e.content_block };
      json[i] = "";
    } else if (e.type === "content_block_delta" && blocks[i]) {
      const block = blocks[i]!;
      if (delta.type === "text_delta") block.text = `${block.text ?? ""}${delta.text ?? ""}`;
      if (delta.type === "thinking_delta") block.thinking = `${block.thinking ?? ""}${delta.thinking ?? ""}`;
      if (delta.type === "signature_delta") block.signature = delta.signature;
      if (delta.type === "input_json_delta") json[i] += String(delta.partial_json ?? "");
    } else if (e.type === "content_block_stop" && blocks[i] && json[i]) {
      blocks[i]!.input = parseJson(json[i]!) ?? json[i];
    } else if (e.type === "message_delta" && reply) {
      reply.stop_reason = delta.stop_reason ?? null;
      if (isRecord(e.usage)) usage = { ...usage, ...e.usage };
    } else if (e.type === "message_stop") complete = reply !== null;
  }
  if (!reply) return { usage: null, stopReason: null, response: text, complete: false };
  reply.content = blocks;
  reply.usage = usage;
  const stopReason = typeof reply.stop_reason === "string" ? reply.stop_reason : null;
  return { usage: usageOf(usage), stopReason, response: reply, complete };
}

export const anthropicMessages: WireFormat = {
  api: "anthropic-messages",
  provider: "anthropic",
  path: "/v1/messages",
  upstreamPath: "/v1/messages",
  parse: (raw) =>
    parseRequest(
      raw,
      request,
      (body) => forbiddenField(body, FORBIDDEN) ?? serverTool(body.tools, (t) => t === undefined || t === "custom"),
      (body) => body.max_tokens,
    ),
  finalize(req, upstreamModel, cap) {
    // The Messages API requires max_tokens; a request without one gets the gateway's cap.
    return { ...req.body, model: upstreamModel, max_tokens: req.maxOutputTokens ?? cap };
  },
  meter: (text, streamed) =>
    streamed
      ? fromStream(text)
      : meterWhole(
          text,
          (reply) => reply.type === "message",
          (reply) => ({
            usage: usageOf(reply.usage),
            stopReason: typeof reply.stop_reason === "string" ? reply.stop_reason : null,
            response: reply,
            complete: true,
          }),
        ),
  errorBody: (type, message) => JSON.stringify({ type: "error", error: { type, message } }),
};
