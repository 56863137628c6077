/** OpenAI Chat Completions (`POST /v1/chat/completions`): the fields the gateway forwards, and usage read from a reply. */
import { z } from "zod";
import { parseSse } from "../sse.ts";
import {
  dataUrl,
  forbiddenField,
  isRecord,
  jsonObject,
  type Metered,
  meterWhole,
  openaiErrorBody,
  parseJson,
  parseRequest,
  positiveInt,
  serverTool,
  type WireFormat,
  withCachedApart,
} from "./strict.ts";

const textPart = z.strictObject({ type: z.literal("text"), text: z.string() });
const refusalPart = z.strictObject({ type: z.literal("refusal"), refusal: z.string() });
const imagePart = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({ url: dataUrl, detail: z.enum(["auto", "low", "high"]).optional() }),
});
// A `file_id` names a file kept at the provider, which outlives the run; only inline file data passes.
const filePart = z.strictObject({
  type: z.literal("file"),
  file: z.strictObject({ file_data: z.string(), filename: z.string().optional() }),
});

const name = { name: z.string().optional() };
const instructions = z.union([z.string(), z.array(textPart)]);
const toolCall = z.strictObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.strictObject({ name: z.string(), arguments: z.string() }),
});

const message = z.discriminatedUnion("role", [
  z.strictObject({ role: z.literal("system"), content: instructions, ...name }),
  z.strictObject({ role: z.literal("developer"), content: instructions, ...name }),
  z.strictObject({
    role: z.literal("user"),
    content: z.union([z.string(), z.array(z.discriminatedUnion("type", [textPart, imagePart, filePart]))]),
    ...name,
  }),
  z.strictObject({
    role: z.literal("assistant"),
    content: z
      .union([z.string(), z.array(z.discriminatedUnion("type", [textPart, refusalPart]))])
      .nullable()
      .optional(),
    tool_calls: z.array(toolCall).optional(),
    refusal: z.string().nullable().optional(),
    // A reply's message passed back as it came: what the provider annotated is its own, and is not sent back.
    annotations: z
      .array(z.unknown())
      .optional()
      .transform(() => undefined),
    ...name,
  }),
  z.strictObject({ role: z.literal("tool"), tool_call_id: z.string(), content: instructions }),
]);

const tool = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: z.string().min(1).max(64),
    description: z.string().optional(),
    parameters: jsonObject.optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const responseFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: z.string(),
      description: z.string().optional(),
      schema: jsonObject.optional(),
      strict: z.boolean().nullable().optional(),
    }),
  }),
]);

const request = z.strictObject({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  max_tokens: positiveInt.nullable().optional(),
  max_completion_tokens: positiveInt.nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  n: z.literal(1, "several choices multiply the cost of a call; ask for one").nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4)])
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z
    .strictObject({ include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional() })
    .nullable()
    .optional(),
  tools: z.array(tool).optional(),
  tool_choice: z
    .union([
      z.enum(["none", "auto", "required"]),
      z.strictObject({ type: z.literal("function"), function: z.strictObject({ name: z.string() }) }),
    ])
    .optional(),
  parallel_tool_calls: z.boolean().optional(),
  response_format: responseFormat.optional(),
  seed: z.int().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  logit_bias: z.record(z.string(), z.number()).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.int().min(0).max(20).nullable().optional(),
  user: z.string().optional(),
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullable().optional(),
  verbosity: z.enum(["low", "medium", "high"]).nullable().optional(),
  prompt_cache_key: z.string().optional(),
  safety_identifier: z.string().optional(),
});

const FORBIDDEN: Record<string, string> = {
  web_search_options: "a web search the provider runs is a way out of the sandbox",
  store: "a completion stored at the provider outlives the run: a channel between runs",
  metadata: "metadata is kept only with stored completions, which the gateway does not make",
  audio: "audio output is priced apart from the text tokens the gateway meters",
  modalities: "audio output is priced apart from the text tokens the gateway meters",
  prediction: "predicted outputs bill tokens beyond those the gateway reserves for",
  service_tier: "a service tier changes the price the run is metered at",
};

interface ChoiceDraft {
  index: number;
  message: { role: string; content: string | null; tool_calls?: Record<string, unknown>[]; refusal?: string };
  finish_reason: string | null;
}

function applyDelta(choice: ChoiceDraft, delta: Record<string, unknown>): void {
  if (typeof delta.content === "string") choice.message.content = (choice.message.content ?? "") + delta.content;
  if (typeof delta.refusal === "string") choice.message.refusal = (choice.message.refusal ?? "") + delta.refusal;
  if (!Array.isArray(delta.tool_calls)) return;
  choice.message.tool_calls ??= [];
  for (const call of delta.tool_calls.filter(isRecord)) {
    const at = typeof call.index === "number" ? call.index : 0;
    const fn = isRecord(call.function) ? call.function : {};
    const draft = choice.message.tool_calls[at] ?? {
      id: call.id,
      type: "function",
      function: { name: "", arguments: "" },
    };
    choice.message.tool_calls[at] = draft;
    const target = draft.function as { name: string; arguments: string };
    if (typeof call.id === "string") draft.id = call.id;
    if (typeof fn.name === "string") target.name += fn.name;
    if (typeof fn.arguments === "string") target.arguments += fn.arguments;
  }
}

function usageOf(u: unknown): Metered["usage"] {
  if (!isRecord(u)) return null;
  const details = isRecord(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  return withCachedApart(u.prompt_tokens, details.cached_tokens, u.completion_tokens);
}

/** Rebuilds a completion from its chunks; the usage chunk the gateway asked for comes last, before [DONE]. */
function fromStream(text: string): Metered {
  const choices: ChoiceDraft[] = [];
  let head: Record<string, unknown> | null = null;
  let usage: unknown = null;
  let complete = false;
  for (const { data } of parseSse(text)) {
    if (data.trim() === "[DONE]") {
      complete = head !== null;
      continue;
    }
    const chunk = parseJson(data);
    if (!isRecord(chunk) || chunk.error !== undefined) continue;
    head ??= { id: chunk.id, object: "chat.completion", created: chunk.created, model: chunk.model };
    if (isRecord(chunk.usage)) usage = chunk.usage;
    for (const c of Array.isArray(chunk.choices) ? chunk.choices.filter(isRecord) : []) {
      const index = typeof c.index === "number" ? c.index : 0;
      const choice = choices[index] ?? { index, message: { role: "assistant", content: null }, finish_reason: null };
      choices[index] = choice;
      if (isRecord(c.delta)) applyDelta(choice, c.delta);
      if (typeof c.finish_reason === "string") choice.finish_reason = c.finish_reason;
    }
  }
  if (!head) return { usage: null, stopReason: null, response: text, complete: false };
  const response = { ...head, choices, usage };
  return { usage: usageOf(usage), stopReason: choices[0]?.finish_reason ?? null, response, complete };
}

function fromWhole(reply: Record<string, unknown>): Metered {
  const first = Array.isArray(reply.choices) && isRecord(reply.choices[0]) ? reply.choices[0] : {};
  const stopReason = typeof first.finish_reason === "string" ? first.finish_reason : null;
  return { usage: usageOf(reply.usage), stopReason, response: reply, complete: true };
}

export const openaiChat: WireFormat = {
  api: "openai-chat",
  provider: "openai",
  path: "/v1/chat/completions",
  upstreamPath: "/chat/completions",
  parse: (raw) =>
    parseRequest(
      raw,
      request,
      (body) => forbiddenField(body, FORBIDDEN) ?? serverTool(body.tools, (t) => t === "function"),
      (body) => body.max_completion_tokens ?? body.max_tokens,
    ),
  finalize(req, upstreamModel, cap) {
    const { stream_options: asked, ...body } = req.body;
    return {
      ...body,
      model: upstreamModel,
      ...(req.maxOutputTokens === null ? { max_completion_tokens: cap } : {}),
      // Usage on a stream comes only when asked for; the gateway always asks, whatever the agent said.
      ...(req.stream ? { stream_options: { ...(isRecord(asked) ? asked : {}), include_usage: true } } : {}),
    };
  },
  meter: (text, streamed) =>
    streamed ? fromStream(text) : meterWhole(text, (reply) => reply.object === "chat.completion", fromWhole),
  errorBody: openaiErrorBody,
};
