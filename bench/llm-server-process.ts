/**
 * The test LLM server in its own process, for figures of the harness alone: a real endpoint is another
 * machine, so its work must not share the harness's event loop. The forked process replies `{ url }` once
 * listening, then `{ at }` (request arrival times, ms since epoch) when asked; it answers "ok" after the delay.
 * The agent and scorer the benches run against it live here too.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startTestLlmServer, textReply } from "../dev/llm-server/llm-server.ts";

/** The agent the benches run against this server: one model call, whose reply is its answer. */
export const BENCH_AGENT = `import type Anthropic from "@anthropic-ai/sdk";
export default {
  async run(task: { id: string }, ctx: { client: Anthropic; model: string }) {
    const r = await ctx.client.messages.create({ model: ctx.model, max_tokens: 20, messages: [{ role: "user", content: task.id }] });
    return r.content.map((b) => (b.type === "text" ? b.text : "")).join("");
  },
};
`;

/** Its scorer: the server's "ok" is a pass, so a bench counts only tasks that really went round. */
export const BENCH_SCORER = `export default (_t: unknown, r: { answer: unknown }) => (r.answer === "ok" ? 1 : 0);\n`;

interface ServerProcess {
  url: string;
  clear(): void;
  /** When each request reached the server (ms since epoch). */
  arrivals(): Promise<number[]>;
  close(): Promise<void>;
}

/** The endpoint lives in its own process, as a real one lives on another machine. */
export async function startServerProcess(delayMs: number): Promise<ServerProcess> {
  const child = fork(fileURLToPath(import.meta.url), [String(delayMs)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = <T>(): Promise<T> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the test LLM server exited (code ${code})`));
      child.once("exit", onExit);
      child.once("message", (m) => {
        child.off("exit", onExit);
        resolve(m as T);
      });
    });
  const { url } = await next<{ url: string }>();
  return {
    url,
    clear: () => child.send({ type: "clear" }),
    arrivals: async () => {
      const reply = next<{ at: number[] }>();
      child.send({ type: "requests" });
      return (await reply).at;
    },
    close: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.disconnect();
      await exited;
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = await startTestLlmServer({
    responder: () => textReply("ok"),
    defaultDelayMs: Number(process.argv[2]),
  });
  process.send?.({ url: server.url });
  process.on("message", (m: { type: string }) => {
    if (m.type === "requests") process.send?.({ at: server.requests.map((r) => r.at) });
    if (m.type === "clear") server.requests.length = 0;
  });
  process.on("disconnect", () => {
    void server.close().finally(() => process.exit(0));
  });
}
