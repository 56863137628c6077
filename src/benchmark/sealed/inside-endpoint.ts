/**
 * The model endpoint inside the sandbox: the agent process's own loopback (its network namespace has nothing
 * else), where unmodified SDKs find the harness by base URL. Each request is handed to the harness over the
 * channel as the task's `llm` message and its reply streamed back, so it meets the same gateway as `ctx.client`.
 *
 * Several tasks share one process, and an SDK's request does not say whose it is: each task runs in its own
 * async context, and every request made from it (fetch, which both SDKs use, and node:http) is tagged on its
 * way out. An untagged one belongs to the only task in flight, or is refused. Bundled into child.ts; it
 * imports only node built-ins.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { subscribe } from "node:diagnostics_channel";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import { syncBuiltinESMExports } from "node:module";
import type { AddressInfo } from "node:net";

/** The request header that carries a task's job id from its SDK to this endpoint (never forwarded). */
const TASK_HEADER = "x-auto-harness-task";
/** Headers a client sets for its own connection or credentials: the harness holds the real ones. */
const DROPPED = new Set([
  TASK_HEADER,
  "authorization",
  "x-api-key",
  "api-key",
  "host",
  "connection",
  "keep-alive",
  "content-length",
  "transfer-encoding",
]);

export interface RelayedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
}

export interface RelaySink {
  head(status: number, headers: Record<string, string>): void;
  chunk(data: string): void;
  end(): void;
  fail(message: string): void;
}

export interface InsideEndpointOptions {
  /** Jobs now running in this process. */
  running(): readonly string[];
  /** Hands one request to the harness; returns how to give it up (the client hung up). */
  relay(jobId: string, request: RelayedRequest, sink: RelaySink): () => void;
}

export const taskContext = new AsyncLocalStorage<string>();

/** In the sandbox the loopback is the agent process's alone: the same address and key in every run. */
const SEALED_PORT = 8780;
const SEALED_KEY = "harness-placeholder-key";

/** Tags every outgoing request made inside a task with its job id (fetch, and node:http/https). */
function tagRequests(): void {
  subscribe("undici:request:create", (message) => {
    const job = taskContext.getStore();
    const request = (message as { request?: { addHeader?(name: string, value: string): void } }).request;
    if (job) request?.addHeader?.(TASK_HEADER, job);
  });
  for (const mod of [http, https] as const) {
    for (const name of ["request", "get"] as const) {
      const original = mod[name] as (...args: unknown[]) => http.ClientRequest;
      (mod as Record<string, unknown>)[name] = function tagged(this: unknown, ...args: unknown[]) {
        const req = original.apply(this, args);
        const job = taskContext.getStore();
        if (job && !req.headersSent) req.setHeader(TASK_HEADER, job);
        return req;
      };
    }
  }
  // `import { request } from "node:http"` in an ES module reads the patched function too.
  syncBuiltinESMExports();
}

function sendError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  // Both SDK families read `error.message` from this shape.
  res.end(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message } }));
}

function presented(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const key = req.headers["x-api-key"] ?? req.headers["api-key"];
  return bearer ?? (typeof key === "string" ? key : undefined);
}

/**
 * Listens on 127.0.0.1 and sets the variables SDKs read (base URLs and a key that is only a token for this
 * endpoint: unsealed, where the loopback is the host's, it keeps other local users out). Resolves to the URL.
 */
export async function startInsideEndpoint(o: InsideEndpointOptions, sealed: boolean): Promise<string> {
  const token = sealed ? SEALED_KEY : `harness-${randomBytes(16).toString("hex")}`;
  tagRequests();
  const server = http.createServer((req, res) => {
    if (presented(req) !== token) {
      req.resume();
      return sendError(
        res,
        401,
        "the key is the harness's placeholder in the environment (OPENAI_API_KEY, ANTHROPIC_API_KEY)",
      );
    }
    const tagged = req.headers[TASK_HEADER];
    const running = o.running();
    const jobId =
      typeof tagged === "string" && running.includes(tagged) ? tagged : running.length === 1 ? running[0] : undefined;
    if (jobId === undefined) {
      req.resume();
      return sendError(
        res,
        400,
        "the harness cannot tell which task made this call: make model calls from inside run(), not from a timer or a thread the task left behind",
      );
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => relay(o, jobId, req, res, chunks.length ? Buffer.concat(chunks).toString("utf8") : null));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(sealed ? SEALED_PORT : 0, "127.0.0.1", resolve));
  server.unref();
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  Object.assign(process.env, {
    OPENAI_BASE_URL: `${url}/v1`,
    OPENAI_API_BASE: `${url}/v1`,
    ANTHROPIC_BASE_URL: url,
    OPENAI_API_KEY: token,
    ANTHROPIC_API_KEY: token,
  });
  return url;
}

function relay(
  o: InsideEndpointOptions,
  jobId: string,
  req: IncomingMessage,
  res: ServerResponse,
  body: string | null,
): void {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || DROPPED.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  let done = false;
  const cancel = o.relay(
    jobId,
    { method: req.method ?? "GET", path: req.url ?? "/", headers, body },
    {
      head: (status, h) => res.writeHead(status, h),
      chunk: (data) => res.write(data),
      end: () => {
        done = true;
        res.end();
      },
      fail: () => {
        done = true;
        // The client must see a broken connection, not a clean end, so its SDK retries or fails as it would.
        res.destroy();
      },
    },
  );
  res.on("close", () => {
    if (!done) cancel();
  });
}
