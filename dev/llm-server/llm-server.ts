/**
 * A local stand-in for the model APIs the harness meets: the Anthropic Messages API and OpenAI's Chat
 * Completions and Responses, streaming or not, so the real SDKs can be tested over real HTTP with scripted
 * replies and injected faults (rate limits, overload, dropped connections, an endpoint echoing the key).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { anthropicWriter } from "./anthropic-format.ts";
import { chatWriter, responsesWriter } from "./openai-format.ts";
import {
  type ContentBlock,
  type FormatWriter,
  type RecordedRequest,
  type ReplyStep,
  type RetryHint,
  retryHeaders,
  roughTokens,
  sendJson,
  type TestMessage,
  type Usage,
} from "./shared.ts";

export type { ContentBlock, RecordedRequest, ReplyStep, Usage } from "./shared.ts";

export type FaultStep =
  | ({ fault: "429"; message?: string } & RetryHint)
  | ({ fault: "529" } & RetryHint)
  | ({ fault: "500" } & RetryHint)
  | { fault: "400"; message?: string }
  | { fault: "401" }
  | { fault: "drop" }
  | { fault: "drop-mid-stream" }
  | { fault: "stream-error" }
  /** An endpoint that puts the caller's key into its error body, as some do. */
  | { fault: "echo-key"; status?: number };

export type ScriptStep = ReplyStep | FaultStep;

export type Responder = (req: RecordedRequest, index: number) => ScriptStep | Promise<ScriptStep>;

export interface TestLlmServer {
  url: string;
  requests: RecordedRequest[];
  /**
   * The requests whose reply (with its usage) was written whole to a client still there to read it: what a
   * provider bills. A reply whose client had gone (a killed harness) is not written, nor counted.
   */
  served: RecordedRequest[];
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
  /** When set, a request with another key (x-api-key or a bearer token) is refused (401), as a real endpoint does. */
  apiKey?: string;
  /** When set, a request for another model is refused (404 model not found), count_tokens included. */
  models?: string[];
}

/** What GET /v1/models lists when no `models` are given. */
export const LISTED_MODELS = ["claude-sonnet-4-6", "claude-opus-4-6", "gpt-5-mini", "gpt-5", "gpt-5.4-mini"];

const ROUTES: Record<string, FormatWriter> = {
  "/v1/messages": anthropicWriter,
  "/v1/chat/completions": chatWriter,
  "/v1/responses": responsesWriter,
};

/** The key a request carried, whichever header its SDK puts it in. */
function keyOf(rec: RecordedRequest): string | undefined {
  return rec.headers["x-api-key"] ?? /^Bearer (.+)$/.exec(rec.headers.authorization ?? "")?.[1];
}

export function textReply(text: string, usage?: Partial<Usage>): ScriptStep {
  return { reply: { content: [{ type: "text", text }], ...(usage ? { usage } : {}) } };
}

export function toolUseReply(name: string, input: unknown, id?: string): ScriptStep {
  const block: ContentBlock =
    id === undefined ? { type: "tool_use", name, input } : { type: "tool_use", id, name, input };
  return { reply: { content: [block], stop_reason: "tool_use" } };
}

export async function startTestLlmServer(opts: TestLlmServerOptions = {}): Promise<TestLlmServer> {
  const script: ScriptStep[] = [...(opts.script ?? [])];
  let responder: Responder | null = opts.responder ?? null;
  const requests: RecordedRequest[] = [];
  const served: RecordedRequest[] = [];
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

  const buildMessage = (rec: RecordedRequest, step: ReplyStep): TestMessage => {
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

  const fault = async (
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedRequest,
    step: FaultStep,
    w: FormatWriter,
  ) => {
    const streaming = rec.body?.stream === true;
    const error = (status: number, type: string, message: string, headers?: Record<string, string>) =>
      sendJson(res, status, w.errorBody(type, message), headers);
    switch (step.fault) {
      case "429":
        return error(429, "rate_limit_error", step.message ?? "test LLM server: rate limited", retryHeaders(step));
      case "529":
        return error(529, "overloaded_error", "Overloaded", retryHeaders(step));
      case "500":
        return error(500, "api_error", "test LLM server: internal error", retryHeaders(step));
      case "400":
        return error(400, "invalid_request_error", step.message ?? "test LLM server: bad request");
      case "401":
        return error(401, "authentication_error", "invalid x-api-key");
      case "echo-key":
        return error(step.status ?? 400, "invalid_request_error", `test LLM server: no access for key ${keyOf(rec)}`);
      case "drop":
        req.socket.destroy();
        return;
      case "drop-mid-stream":
        if (streaming) {
          w.streamPrefix(res, buildMessage(rec, { reply: { content: [] } }));
        } else {
          res.writeHead(200, { "content-type": "application/json" });
          res.flushHeaders();
        }
        // Let the bytes leave before cutting the connection, so the client sees a truncated response.
        await wait(20);
        req.socket.destroy();
        return;
      case "stream-error":
        if (!streaming) return error(529, "overloaded_error", "Overloaded");
        w.streamPrefix(res, buildMessage(rec, { reply: { content: [] } }));
        res.end(w.streamError());
        return;
    }
  };

  const answer = async (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, index: number) => {
    const path = rec.path.split("?")[0] ?? "";
    const w = ROUTES[path] ?? (path.startsWith("/v1/messages") ? anthropicWriter : chatWriter);
    if (opts.apiKey !== undefined && keyOf(rec) !== opts.apiKey) {
      return sendJson(res, 401, w.errorBody("authentication_error", "invalid x-api-key"));
    }
    if (rec.method === "GET" && path === "/v1/models") {
      const data = (opts.models ?? LISTED_MODELS).map((id) => ({ id, object: "model", created: 0, owned_by: "test" }));
      return sendJson(res, 200, JSON.stringify({ object: "list", data }));
    }
    const model = rec.body?.model;
    if (opts.models && typeof model === "string" && !opts.models.includes(model)) {
      return sendJson(res, 404, w.errorBody("not_found_error", `model: ${model}`));
    }
    if (rec.method === "POST" && path === "/v1/messages/count_tokens") {
      return sendJson(res, 200, JSON.stringify({ input_tokens: roughTokens(rec.raw.length) }));
    }
    if (rec.method !== "POST" || !ROUTES[path]) {
      return sendJson(res, 404, w.errorBody("not_found_error", `test LLM server: no route ${rec.method} ${rec.path}`));
    }
    if (rec.body === undefined) {
      return sendJson(res, 400, w.errorBody("invalid_request_error", "test LLM server: body is not JSON"));
    }
    const step = await nextStep(rec, index);
    if (step === null) {
      return sendJson(res, 500, w.errorBody("api_error", "test LLM server: script exhausted"));
    }
    if (!("reply" in step)) return fault(req, res, rec, step, w);
    const delay = step.delayMs ?? opts.defaultDelayMs ?? 0;
    if (delay > 0) await wait(delay);
    // The client hung up (or died) while the reply was being made: nothing is sent, nothing billed.
    if (res.destroyed || req.socket.destroyed || req.socket.readableEnded) return;
    res.once("finish", () => served.push(rec));
    const message = buildMessage(rec, step);
    if (rec.body?.stream === true) return w.stream(res, message, rec);
    return w.reply(res, message, rec);
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
        sendJson(res, 500, anthropicWriter.errorBody("api_error", `test LLM server: responder failed: ${message}`));
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
    served,
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
