/**
 * The test LLM server in its own process, for figures of the harness alone: a real endpoint is another
 * machine, so its work must not share the harness's event loop. Forked with IPC by bench/runner.ts:
 * replies `{ url }` once listening, then `{ at }` (request arrival times, ms since epoch) when asked.
 */
import { startTestLlmServer, textReply } from "../dev/llm-server/llm-server.ts";

const delay = Number(process.argv[2] ?? 0);
const server = await startTestLlmServer({ responder: () => textReply("ok"), defaultDelayMs: delay });
process.send?.({ url: server.url });
process.on("message", (m: { type: string }) => {
  if (m.type === "requests") process.send?.({ at: server.requests.map((r) => r.at) });
  if (m.type === "clear") server.requests.length = 0;
});
process.on("disconnect", () => {
  void server.close().finally(() => process.exit(0));
});
