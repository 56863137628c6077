/** OpenAI Responses (`POST /v1/responses`): the fields the gateway forwards, and usage read from a reply. */
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

const inputText = z.strictObject({ type: z.literal("input_text"), text: z.string() });
const inputImage = z.strictObject({
  type: z.literal("input_image"),
  image_url: dataUrl,
  detail: z.enum(["auto", "low", "high"]).optional(),
});
// `file_id` and `file_url` make the provider read its file store or fetch a URL; only inline data passes.
const inputFile = z.strictObject({
  type: z.literal("input_file"),
  file_data: z.string(),
  filename: z.string().optional(),
});
const outputText = z.strictObject({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z.array(jsonObject).optional(),
  logprobs: z.array(z.unknown()).optional(),
});
const refusal = z.strictObject({ type: z.literal("refusal"), refusal: z.string() });
const inputContent = z.array(z.discriminatedUnion("type", [inputText, inputImage, inputFile]));
const itemState = { id: z.string().optional(), status: z.string().optional() };

const item = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("message"),
    role: z.enum(["user", "system", "developer", "assistant"]),
    content: z.union([
      z.string(),
      z.array(z.discriminatedUnion("type", [inputText, inputImage, inputFile, outputText, refusal])),
    ]),
    ...itemState,
  }),
  z.strictObject({
    type: z.literal("function_call"),
    call_id: z.string(),
    name: z.string(),
    arguments: z.string(),
    ...itemState,
  }),
  z.strictObject({
    type: z.literal("function_call_output"),
    call_id: z.string(),
    output: z.union([z.string(), inputContent]),
    ...itemState,
  }),
  z.strictObject({
    type: z.literal("reasoning"),
    summary: z.array(z.strictObject({ type: z.literal("summary_text"), text: z.string() })),
    content: z.array(z.strictObject({ type: z.literal("reasoning_text"), text: z.string() })).optional(),
    encrypted_content: z.string().nullable().optional(),
    ...itemState,
  }),
]);

const tool = z.strictObject({
  type: z.literal("function"),
  name: z.string().min(1).max(64),
  description: z.string().nullable().optional(),
  parameters: jsonObject.nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

const textFormat = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    name: z.string(),
    schema: jsonObject,
    description: z.string().optional(),
    strict: z.boolean().nullable().optional(),
  }),
]);

const request = z.strictObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(item)]),
  instructions: z.string().nullable().optional(),
  max_output_tokens: positiveInt.nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_obfuscation: z.boolean().optional() }).nullable().optional(),
  tools: z.array(tool).optional(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.strictObject({ type: z.literal("function"), name: z.string() })])
    .optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  text: z
    .strictObject({ format: textFormat.optional(), verbosity: z.enum(["low", "medium", "high"]).nullable().optional() })
    .optional(),
  reasoning: z
    .strictObject({
      effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullable().optional(),
      summary: z.enum(["auto", "concise", "detailed"]).nullable().optional(),
    })
    .nullable()
    .optional(),
  truncation: z.enum(["auto", "disabled"]).nullable().optional(),
  user: z.string().optional(),
  prompt_cache_key: z.string().optional(),
  safety_identifier: z.string().optional(),
  store: z.literal(false).optional(),
  include: z.array(z.literal("reasoning.encrypted_content")).nullable().optional(),
});

const BETWEEN_RUNS = "a response kept at the provider outlives the run: a channel between runs; send the whole input";
const FORBIDDEN: Record<string, string> = {
  previous_response_id: BETWEEN_RUNS,
  conversation: BETWEEN_RUNS,
  prompt: "a prompt stored at the provider is outside the experiment's files",
  background: "a background response outlives the task",
  service_tier: "a service tier changes the price the run is metered at",
};

/** A message given as `{ role, content }` is the Responses API's short form of a `message` item. */
function withItemTypes(raw: unknown): unknown {
  if (!isRecord(raw) || !Array.isArray(raw.input)) return raw;
  const input = raw.input.map((i) =>
    isRecord(i) && i.type === undefined && "role" in i ? { type: "message", ...i } : i,
  );
  return { ...raw, input };
}

function meterResponse(response: Record<string, unknown>, complete: boolean): Metered {
  const u = isRecord(response.usage) ? response.usage : null;
  const details = u && isRecord(u.input_tokens_details) ? u.input_tokens_details : {};
  const usage = u ? withCachedApart(u.input_tokens, details.cached_tokens, u.output_tokens) : null;
  const incomplete = isRecord(response.incomplete_details) ? response.incomplete_details.reason : null;
  const stopReason =
    typeof incomplete === "string" ? incomplete : typeof response.status === "string" ? response.status : null;
  return { usage, stopReason, response, complete };
}

const TERMINAL = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** Every stream ends with one terminal event carrying the whole response and its usage. */
function fromStream(text: string): Metered {
  let last: Record<string, unknown> | null = null;
  for (const { data } of parseSse(text)) {
    const e = parseJson(data);
    if (!isRecord(e) || !isRecord(e.response)) continue;
    last = e.response;
    if (typeof e.type === "string" && TERMINAL.has(e.type))
      return meterResponse(e.response, e.type !== "response.failed");
  }
  return { usage: null, stopReason: null, response: last ?? text, complete: false };
}

export const openaiResponses: WireFormat = {
  api: "openai-responses",
  provider: "openai",
  path: "/v1/responses",
  upstreamPath: "/responses",
  parse: (raw) =>
    parseRequest(
      withItemTypes(raw),
      request,
      (body) =>
        body.store === true
          ? `store: not allowed through the gateway; ${BETWEEN_RUNS}`
          : (forbiddenField(body, FORBIDDEN) ?? serverTool(body.tools, (t) => t === "function")),
      (body) => body.max_output_tokens,
    ),
  finalize(req, upstreamModel, cap) {
    // The Responses API keeps every response unless told not to.
    return { ...req.body, model: upstreamModel, store: false, max_output_tokens: req.maxOutputTokens ?? cap };
  },
  meter: (text, streamed) =>
    streamed
      ? fromStream(text)
      : meterWhole(
          text,
          (reply) => reply.object === "response",
          (reply) => meterResponse(reply, true),
        ),
  errorBody: openaiErrorBody,
};
