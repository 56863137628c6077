/**
 * Runs the test LLM server as its own process (for demos and child-process tests):
 *   tsx dev/llm-server/llm-server-main.ts [--port N] [--host H] [--responder module.ts]
 * Prints one JSON line `{"url": ...}` on stdout once listening; stops on SIGINT/SIGTERM.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type Responder, startTestLlmServer } from "./llm-server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    responder: { type: "string" },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0) {
  process.stderr.write(`--port must be a non-negative integer, got ${values.port}\n`);
  process.exit(2);
}

let responder: Responder | undefined;
if (values.responder) {
  const mod = (await import(pathToFileURL(resolve(values.responder)).href)) as { default?: unknown };
  if (typeof mod.default !== "function") {
    process.stderr.write(`${values.responder}: default export must be a Responder function\n`);
    process.exit(2);
  }
  responder = mod.default as Responder;
}

const server = await startTestLlmServer({ port, host: values.host, ...(responder ? { responder } : {}) });
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);

const stop = () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
