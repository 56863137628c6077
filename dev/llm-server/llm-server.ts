/**
 * A local stand-in for the Anthropic Messages API, so the real SDK can be tested over real HTTP
 * with scripted replies and injected faults (rate limits, overload, dropped connections).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: request bodies are arbitrary JSON chosen by the caller
  body: any;
  raw: string;
  at: number;
}

export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id?: string; name: string; input: unknown };

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface ReplyStep {
  reply: { content: ContentBlock[]; stop_reason?: string; usage?: Partial<Usage>; model?: string };
  delayMs?: number;
}

/** Retry hints; the SDK honours `retry-after-ms` before `retry-after`. */
interface RetryHint {
  retryAfterSeconds?: number;
  retryAfterMs?: number;
}

export type FaultStep =
  | ({ fault: "429"; message?: string } & RetryHint)
  | ({ fault: "529" } & RetryHint)
  | ({ fault: "500" } & RetryHint)
  | { fault: "400"; message?: string }
  | { fault: "401" }
  | { fault: "drop" }
  | { fault: "drop-mid-stream" }
  | { fault: "stream-error" };

export type ScriptStep = ReplyStep | FaultStep;

export type Responder = (req: RecordedRequest, index: number) => ScriptStep | Promise<ScriptStep>;

export interface TestLlmServer {
  url: string;
  requests: RecordedRequest[];
  enqueue(...steps: ScriptStep[]): void;
  setResponder(r: Responder | null): void;
  /** Scripted steps not yet consumed. */
  remaining(): number;
  close(): Promise<void>;
}

export interface TestLlmServerOptions {
  script?: ScriptStep[];
  responder?: Responder;
  port?: number;
  host?: string;
  defaultDelayMs?: number;
  /** When set, a request with another x-api-key is refused (401), as a real endpoint does. */
  apiKey?: string;
  /** When set, a request for another model is refused (404 model not found), count_tokens included. */
  models?: string[];
}

export function textReply(text: string, usage?: Partial<Usage>): ScriptStep {
  return { reply: { content: [{ type: "text", text }], ...(usage ? { usage } : {}) } };
}

export function toolUseReply(name: string, input: unknown, id?: string): ScriptStep {
  const block: ContentBlock =
    id === undefined ? { type: "tool_use", name, input } : { type: "tool_use", id, name, input };
  return { reply: { content: [block], stop_reason: "tool_use" } };
}

const roughTokens = (chars: number): number => Math.max(1, Math.ceil(chars / 4));

function errorBody(type: string, message: string): string {
  return JSON.stringify({ type: "error", error: { type, message } });
}

function retryHeaders(step: RetryHint): Record<string, string> {
  const headers: Record<string, string> = {};
  if (step.retryAfterMs !== undefined) headers["retry-after-ms"] = String(step.retryAfterMs);
  if (step.retryAfterSeconds !== undefined) headers["retry-after"] = String(step.retryAfterSeconds);
  return headers;
}

function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "request-id": "req_test", ...headers });
  res.end(body);
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Splits a string into two pieces so clients see more than one delta per block. */
function halves(s: string): string[] {
  if (s.length < 2) return [s];
  const mid = Math.ceil(s.length / 2);
  return [s.slice(0, mid), s.slice(mid)];
}

export async function startTestLlmServer(opts: TestLlmServerOptions = {}): Promise<TestLlmServer> {
  const script: ScriptStep[] = [...(opts.script ?? [])];
  let responder: Responder | null = opts.responder ?? null;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let messageSeq = 0;
  let toolSeq = 0;

  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const nextStep = async (rec: RecordedRequest, index: number): Promise<ScriptStep | null> => {
    const scripted = script.shift();
    if (scripted) return scripted;
    if (responder) return responder(rec, index);
    return null;
  };

  const buildMessage = (rec: RecordedRequest, step: ReplyStep) => {
    messageSeq += 1;
    const content = step.reply.content.map((b) => {
      if (b.type !== "tool_use") return { ...b };
      toolSeq += 1;
      return { ...b, id: b.id ?? `toolu_test_${toolSeq}` };
    });
    const outChars = content.reduce(
      (n, b) => n + (b.type === "text" ? b.text.length : JSON.stringify(b.input ?? {}).length),
      0,
    );
    const usage: Usage = {
      input_tokens: roughTokens(rec.raw.length),
      output_tokens: roughTokens(outChars),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      ...step.reply.usage,
    };
    const stopReason = step.reply.stop_reason ?? (content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn");
    return {
      id: `msg_test_${messageSeq}`,
      type: "message" as const,
      role: "assistant" as const,
      model: step.reply.model ?? (typeof rec.body?.model === "string" ? rec.body.model : "claude-test"),
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage,
    };
  };

  const streamMessage = (res: ServerResponse, message: ReturnType<typeof buildMessage>): void => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": "req_test" });
    res.write(
      sse("message_start", {
        type: "message_start",
        message: {
          ...message,
          content: [],
          stop_reason: null,
          usage: { ...message.usage, output_tokens: 1 },
        },
      }),
    );
    message.content.forEach((block, index) => {
      if (block.type === "text") {
        res.write(
          sse("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }),
        );
        for (const text of halves(block.text)) {
          res.write(
            sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text } }),
          );
        }
      } else {
        res.write(
          sse("content_block_start", {
            type: "content_block_start",
            index,
            content_block: { type: "tool_use", id: block.id, name: block.name, input: {} },
          }),
        );
        for (const partial_json of halves(JSON.stringify(block.input ?? {}))) {
          res.write(
            sse("content_block_delta", {
              type: "content_block_delta",
              index,
              delta: { type: "input_json_delta", partial_json },
            }),
          );
        }
      }
      res.write(sse("content_block_stop", { type: "content_block_stop", index }));
    });
    res.write(
      sse("message_delta", {
        type: "message_delta",
        delta: { stop_reason: message.stop_reason, stop_sequence: null },
        usage: message.usage,
      }),
    );
    res.end(sse("message_stop", { type: "message_stop" }));
  };

  /** Starts a believable stream: the message envelope and part of a text block. */
  const streamPrefix = (res: ServerResponse, rec: RecordedRequest): void => {
    const message = buildMessage(rec, { reply: { content: [] } });
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": "req_test" });
    res.write(sse("message_start", { type: "message_start", message: { ...message, stop_reason: null } }));
    res.write(
      sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
    );
    res.write(
      sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Par" } }),
    );
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, index: number) => {
    const path = rec.path.split("?")[0];
    if (opts.apiKey !== undefined && rec.headers["x-api-key"] !== opts.apiKey) {
      return sendJson(res, 401, errorBody("authentication_error", "invalid x-api-key"));
    }
    const model = rec.body?.model;
    if (opts.models && typeof model === "string" && !opts.models.includes(model)) {
      return sendJson(res, 404, errorBody("not_found_error", `model: ${model}`));
    }
    if (rec.method === "POST" && path === "/v1/messages/count_tokens") {
      return sendJson(res, 200, JSON.stringify({ input_tokens: roughTokens(rec.raw.length) }));
    }
    if (rec.method !== "POST" || path !== "/v1/messages") {
      return sendJson(res, 404, errorBody("not_found_error", `test LLM server: no route ${rec.method} ${rec.path}`));
    }
    if (rec.body === undefined) {
      return sendJson(res, 400, errorBody("invalid_request_error", "test LLM server: body is not JSON"));
    }
    const step = await nextStep(rec, index);
    if (step === null) {
      return sendJson(res, 500, errorBody("api_error", "test LLM server: script exhausted"));
    }
    const streaming = rec.body?.stream === true;
    if ("reply" in step) {
      const delay = step.delayMs ?? opts.defaultDelayMs ?? 0;
      if (delay > 0) await wait(delay);
      if (res.destroyed) return;
      const message = buildMessage(rec, step);
      if (streaming) return streamMessage(res, message);
      return sendJson(res, 200, JSON.stringify(message));
    }
    switch (step.fault) {
      case "429":
        return sendJson(
          res,
          429,
          errorBody("rate_limit_error", step.message ?? "test LLM server: rate limited"),
          retryHeaders(step),
        );
      case "529":
        return sendJson(res, 529, errorBody("overloaded_error", "Overloaded"), retryHeaders(step));
      case "500":
        return sendJson(res, 500, errorBody("api_error", "test LLM server: internal error"), retryHeaders(step));
      case "400":
        return sendJson(res, 400, errorBody("invalid_request_error", step.message ?? "test LLM server: bad request"));
      case "401":
        return sendJson(res, 401, errorBody("authentication_error", "invalid x-api-key"));
      case "drop":
        req.socket.destroy();
        return;
      case "drop-mid-stream":
        if (streaming) {
          streamPrefix(res, rec);
        } else {
          res.writeHead(200, { "content-type": "application/json" });
          res.flushHeaders();
        }
        // Let the bytes leave before cutting the connection, so the client sees a truncated response.
        await wait(20);
        req.socket.destroy();
        return;
      case "stream-error":
        if (!streaming) {
          return sendJson(res, 529, errorBody("overloaded_error", "Overloaded"));
        }
        streamPrefix(res, rec);
        res.end(sse("error", { type: "error", error: { type: "overloaded_error", message: "Overloaded" } }));
        return;
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = raw === "" ? undefined : JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
      }
      const rec: RecordedRequest = {
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers,
        body,
        raw,
        at: Date.now(),
      };
      const index = requests.length;
      requests.push(rec);
      answer(req, res, rec, index).catch((error: unknown) => {
        if (res.headersSent) {
          req.socket.destroy();
          return;
        }
        const message = error instanceof Error ? error.message : String(error);
        sendJson(res, 500, errorBody("api_error", `test LLM server: responder failed: ${message}`));
      });
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${address.port}`,
    requests,
    enqueue: (...steps) => {
      script.push(...steps);
    },
    setResponder: (r) => {
      responder = r;
    },
    remaining: () => script.length,
    close: () => {
      // Idempotent; open keep-alive sockets and delayed replies must not hold the close open.
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
