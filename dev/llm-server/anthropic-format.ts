/** The test server's Messages API replies: a whole message, or the event stream the SDK's `stream()` reads. */
import type { ServerResponse } from "node:http";
import { type FormatWriter, halves, sendJson, sse, startStream, type TestMessage } from "./shared.ts";

function writeBlock(res: ServerResponse, block: TestMessage["content"][number], index: number): void {
  const start = (content_block: unknown) =>
    res.write(sse("content_block_start", { type: "content_block_start", index, content_block }));
  const delta = (d: unknown) => res.write(sse("content_block_delta", { type: "content_block_delta", index, delta: d }));
  if (block.type === "text") {
    start({ type: "text", text: "" });
    for (const text of halves(block.text)) delta({ type: "text_delta", text });
  } else {
    start({ type: "tool_use", id: block.id, name: block.name, input: {} });
    for (const partial_json of halves(JSON.stringify(block.input ?? {})))
      delta({ type: "input_json_delta", partial_json });
  }
  res.write(sse("content_block_stop", { type: "content_block_stop", index }));
}

export const anthropicWriter: FormatWriter = {
  reply: (res, message) => sendJson(res, 200, JSON.stringify(message)),
  stream(res, message) {
    startStream(res);
    const envelope = { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } };
    res.write(sse("message_start", { type: "message_start", message: envelope }));
    for (const [index, block] of message.content.entries()) writeBlock(res, block, index);
    res.write(
      sse("message_delta", {
        type: "message_delta",
        delta: { stop_reason: message.stop_reason, stop_sequence: null },
        usage: message.usage,
      }),
    );
    res.end(sse("message_stop", { type: "message_stop" }));
  },
  errorBody: (type, message) => JSON.stringify({ type: "error", error: { type, message } }),
  /** A believable start: the message envelope (input usage included) and part of a text block. */
  streamPrefix(res, message) {
    startStream(res);
    res.write(sse("message_start", { type: "message_start", message: { ...message, content: [], stop_reason: null } }));
    res.write(
      sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    );
    res.write(
      sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Par" } }),
    );
  },
  streamError: () => sse("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }),
};
