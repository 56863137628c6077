/**
 * The test server's OpenAI replies, Chat Completions and Responses, written from the same scripted message as
 * the Messages API's: usage maps across (cached tokens counted inside the input, as OpenAI counts them), and a
 * stream carries its usage chunk only when the request asked for it, as OpenAI's does.
 */
import type { ServerResponse } from "node:http";
import {
  type FormatWriter,
  halves,
  type RecordedRequest,
  sendJson,
  sse,
  startStream,
  type TestMessage,
} from "./shared.ts";

const created = 1_767_225_600;

function openaiUsage(m: TestMessage) {
  const cached = m.usage.cache_read_input_tokens;
  const prompt = m.usage.input_tokens + m.usage.cache_creation_input_tokens + cached;
  return { prompt, cached, output: m.usage.output_tokens };
}

const FINISH: Record<string, string> = { tool_use: "tool_calls", max_tokens: "length", end_turn: "stop" };

function textOf(m: TestMessage): string | null {
  const texts = m.content.flatMap((b) => (b.type === "text" ? [b.text] : []));
  return texts.length ? texts.join("") : null;
}

function toolCalls(m: TestMessage) {
  return m.content.flatMap((b) =>
    b.type === "tool_use"
      ? [{ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }]
      : [],
  );
}

export function chatCompletion(m: TestMessage) {
  const u = openaiUsage(m);
  const calls = toolCalls(m);
  return {
    id: m.id.replace("msg_", "chatcmpl_"),
    object: "chat.completion",
    created,
    model: m.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: textOf(m),
          refusal: null,
          ...(calls.length ? { tool_calls: calls } : {}),
        },
        logprobs: null,
        finish_reason: FINISH[m.stop_reason] ?? m.stop_reason,
      },
    ],
    usage: {
      prompt_tokens: u.prompt,
      completion_tokens: u.output,
      total_tokens: u.prompt + u.output,
      prompt_tokens_details: { cached_tokens: u.cached },
      completion_tokens_details: { reasoning_tokens: 0 },
    },
  };
}

function chatChunk(m: TestMessage, delta: object, finish: string | null = null): string {
  const chunk = { id: m.id.replace("msg_", "chatcmpl_"), object: "chat.completion.chunk", created, model: m.model };
  return `data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
}

export const chatWriter: FormatWriter = {
  reply: (res, message) => sendJson(res, 200, JSON.stringify(chatCompletion(message))),
  stream(res, message, rec: RecordedRequest) {
    const whole = chatCompletion(message);
    startStream(res);
    res.write(chatChunk(message, { role: "assistant", content: "" }));
    for (const content of halves(whole.choices[0]!.message.content ?? ""))
      if (content) res.write(chatChunk(message, { content }));
    toolCalls(message).forEach((call, index) => {
      const head = { index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } };
      res.write(chatChunk(message, { tool_calls: [head] }));
      for (const piece of halves(call.function.arguments))
        res.write(chatChunk(message, { tool_calls: [{ index, function: { arguments: piece } }] }));
    });
    res.write(chatChunk(message, {}, whole.choices[0]!.finish_reason));
    if (rec.body?.stream_options?.include_usage === true) {
      const { id, object, model } = whole;
      res.write(
        `data: ${JSON.stringify({ id, object: `${object}.chunk`, created, model, choices: [], usage: whole.usage })}\n\n`,
      );
    }
    res.end("data: [DONE]\n\n");
  },
  errorBody: (type, message) => JSON.stringify({ error: { message, type, param: null, code: type } }),
  streamPrefix(res, message) {
    startStream(res);
    res.write(chatChunk(message, { role: "assistant", content: "" }));
    res.write(chatChunk(message, { content: "Par" }));
  },
  streamError: () =>
    `data: ${JSON.stringify({ error: { message: "Overloaded", type: "server_error", code: null } })}\n\n`,
};

function outputItems(m: TestMessage) {
  const text = textOf(m);
  const message =
    text === null
      ? []
      : [
          {
            type: "message",
            id: m.id,
            status: "completed",
            role: "assistant",
            content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
          },
        ];
  const calls = toolCalls(m).map((c) => ({
    type: "function_call",
    id: c.id.replace("toolu_", "fc_"),
    call_id: c.id,
    name: c.function.name,
    arguments: c.function.arguments,
    status: "completed",
  }));
  return [...message, ...calls];
}

export function responseObject(m: TestMessage, status = "completed") {
  const u = openaiUsage(m);
  return {
    id: m.id.replace("msg_", "resp_"),
    object: "response",
    created_at: created,
    status,
    model: m.model,
    output: status === "completed" ? outputItems(m) : [],
    usage:
      status === "completed"
        ? {
            input_tokens: u.prompt,
            input_tokens_details: { cached_tokens: u.cached },
            output_tokens: u.output,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: u.prompt + u.output,
          }
        : null,
    error: null,
    incomplete_details: null,
    instructions: null,
    metadata: {},
    parallel_tool_calls: true,
    tool_choice: "auto",
    tools: [],
    temperature: 1,
    top_p: 1,
    text: { format: { type: "text" } },
    store: false,
  };
}

/** Writes Responses events with their running sequence numbers. */
function eventWriter(res: ServerResponse) {
  let seq = 0;
  return (type: string, data: object) => res.write(sse(type, { type, sequence_number: seq++, ...data }));
}

function streamItem(
  emit: ReturnType<typeof eventWriter>,
  item: ReturnType<typeof outputItems>[number],
  output_index: number,
) {
  if (item.type === "function_call") {
    const { arguments: args, ...rest } = item as { arguments: string; id: string };
    emit("response.output_item.added", { output_index, item: { ...rest, arguments: "", status: "in_progress" } });
    for (const delta of halves(args))
      emit("response.function_call_arguments.delta", { item_id: rest.id, output_index, delta });
    emit("response.function_call_arguments.done", { item_id: rest.id, output_index, arguments: args });
  } else {
    const part = (item as { content: { text: string }[] }).content[0]!;
    const at = { item_id: item.id, output_index, content_index: 0 };
    emit("response.output_item.added", { output_index, item: { ...item, status: "in_progress", content: [] } });
    emit("response.content_part.added", { ...at, part: { ...part, text: "" } });
    for (const delta of halves(part.text)) emit("response.output_text.delta", { ...at, delta, logprobs: [] });
    emit("response.output_text.done", { ...at, text: part.text, logprobs: [] });
    emit("response.content_part.done", { ...at, part });
  }
  emit("response.output_item.done", { output_index, item });
}

export const responsesWriter: FormatWriter = {
  reply: (res, message) => sendJson(res, 200, JSON.stringify(responseObject(message))),
  stream(res, message) {
    startStream(res);
    const emit = eventWriter(res);
    emit("response.created", { response: responseObject(message, "in_progress") });
    emit("response.in_progress", { response: responseObject(message, "in_progress") });
    for (const [i, item] of outputItems(message).entries()) streamItem(emit, item, i);
    emit("response.completed", { response: responseObject(message) });
    res.end();
  },
  errorBody: chatWriter.errorBody,
  streamPrefix(res, message) {
    startStream(res);
    const emit = eventWriter(res);
    const item = { type: "message", id: message.id, status: "in_progress", role: "assistant", content: [] };
    const at = { item_id: message.id, output_index: 0, content_index: 0 };
    emit("response.created", { response: responseObject(message, "in_progress") });
    emit("response.output_item.added", { output_index: 0, item });
    emit("response.content_part.added", { ...at, part: { type: "output_text", text: "", annotations: [] } });
    emit("response.output_text.delta", { ...at, delta: "Par", logprobs: [] });
  },
  streamError: () =>
    sse("error", { type: "error", code: "server_error", message: "Overloaded", param: null, sequence_number: 99 }),
};
