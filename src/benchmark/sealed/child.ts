/**
 * The agent's process (inside the sandbox): loads the agent file fresh (compiled by the harness), then
 * runs the tasks the harness sends, several at a time. It holds no key and has no network: the agent's
 * Anthropic client (ctx.client) and any SDK it brings (through the endpoint inside, inside-endpoint.ts) speak to
 * the harness over the channel on fd 3 (channel.ts, protocol.ts), and so do the benchmark's tools. Train and test runs look the same from here. The harness bundles this file with the
 * SDK (runtime-dir.ts) and runs it as plain JavaScript; it never imports it.
 */
import { Socket } from "node:net";
import { pathToFileURL } from "node:url";
import Anthropic from "@anthropic-ai/sdk";
import type { Agent, AgentContext } from "../agent-contract.ts";
import { CHANNEL_FD, encodeFrame, FrameDecoder } from "./channel.ts";
import { type RelayedRequest, type RelaySink, startInsideEndpoint, taskContext } from "./inside-endpoint.ts";
import type { ChildInit, ChildRun, EnvResult, FromChild, LlmChunk, LlmFail, LlmHead, ToChild } from "./protocol.ts";

const channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });

/** Throws when the message cannot be framed (an answer that is not JSON: a cycle, a BigInt). */
const sendOrThrow = (message: FromChild): void => {
  channel.write(encodeFrame(message));
};

const send = (message: FromChild): void => {
  try {
    sendOrThrow(message);
  } catch (error) {
    process.stderr.write(`child: cannot send ${message.type}: ${(error as Error).message}\n`);
  }
};

interface Job {
  abort: AbortController;
  cancelled: boolean;
}

let init: ChildInit | null = null;
let agent: Agent | null = null;
let nextCall = 0;
const jobs = new Map<string, Job>();
const llmCalls = new Map<
  string,
  { head: (m: LlmHead) => void; chunk: (m: LlmChunk) => void; end: () => void; fail: (m: LlmFail) => void }
>();
const envCalls = new Map<string, (m: EnvResult) => void>();

function describe(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

async function load(message: ChildInit): Promise<void> {
  init = message;
  // The SDKs' variables are set before the agent's module runs: it may build its clients at load.
  await endpoint;
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(message.agentFile).href)) as { default?: unknown };
  } catch (error) {
    send({ type: "load-failed", message: `cannot load ${message.agentFile}: ${describe(error)}` });
    return;
  }
  let d: unknown = mod.default;
  // An agent outside any "type": "module" package is compiled to CommonJS: its default export sits one level down.
  if (d && typeof d === "object" && !("run" in d) && "default" in d) d = (d as { default: unknown }).default;
  try {
    if (typeof d === "function" && typeof (d as { prototype?: { run?: unknown } }).prototype?.run === "function") {
      agent = new (d as new () => Agent)();
    } else if (d && typeof d === "object" && typeof (d as { run?: unknown }).run === "function") {
      agent = d as Agent;
    } else {
      send({
        type: "load-failed",
        message: `${message.agentFile}: the default export must be an object with a run(task, ctx) method or a class with one`,
      });
      return;
    }
  } catch (error) {
    send({ type: "load-failed", message: `${message.agentFile}: constructing the agent failed: ${describe(error)}` });
    return;
  }
  setInterval(() => send({ type: "hb" }), message.heartbeatMs).unref();
  send({ type: "ready" });
}

/** Hands one request of a task to the harness; its reply comes to `sink`. Returns the cancel (false: already over). */
function openCall(jobId: string, request: RelayedRequest, sink: RelaySink): () => boolean {
  const callId = `c${++nextCall}`;
  llmCalls.set(callId, {
    head: (m) => sink.head(m.status, m.headers),
    chunk: (m) => sink.chunk(m.data),
    end: () => {
      llmCalls.delete(callId);
      sink.end();
    },
    fail: (m) => {
      llmCalls.delete(callId);
      sink.fail(m.message);
    },
  });
  send({ type: "llm", jobId, callId, ...request });
  return () => {
    if (!llmCalls.delete(callId)) return false;
    send({ type: "llm-cancel", callId });
    return true;
  };
}

/** A `fetch` for ctx.client's SDK that hands the request to the harness and streams its reply back. */
function harnessFetch(jobId: string): typeof fetch {
  return async (input, initReq) => {
    const request = new Request(input, initReq);
    const body = request.body ? await request.text() : null;
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key] = value;
    });
    const signal = initReq?.signal ?? null;
    const url = new URL(request.url);
    return new Promise<Response>((resolve, reject) => {
      let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
      const encoder = new TextEncoder();
      let cancel = () => false;
      const stream = new ReadableStream<Uint8Array>({
        start: (c) => {
          controller = c;
        },
        cancel: () => {
          cancel();
        },
      });
      const fail = (error: unknown) => {
        reject(error);
        try {
          controller?.error(error);
        } catch {}
      };
      const onAbort = () => {
        if (cancel()) fail(signal?.reason ?? new DOMException("aborted", "AbortError"));
      };
      if (signal?.aborted) return fail(signal.reason ?? new DOMException("aborted", "AbortError"));
      cancel = openCall(
        jobId,
        { method: request.method, path: url.pathname + url.search, headers, body },
        {
          head: (status, h) =>
            resolve(new Response(status === 204 || status === 304 ? null : stream, { status, headers: h })),
          chunk: (data) => controller?.enqueue(encoder.encode(data)),
          end: () => {
            signal?.removeEventListener("abort", onAbort);
            controller?.close();
          },
          fail: (message) => {
            signal?.removeEventListener("abort", onAbort);
            fail(new TypeError(`fetch failed: ${message}`));
          },
        },
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  };
}

function harnessEnv(jobId: string, shape: ChildRun["env"]): Record<string, unknown> {
  const env: Record<string, unknown> = { ...shape.values };
  for (const name of shape.functions) {
    env[name] = (...args: unknown[]) =>
      new Promise((resolve, reject) => {
        const callId = `e${++nextCall}`;
        envCalls.set(callId, (m) => {
          envCalls.delete(callId);
          if (m.ok) resolve(m.value);
          else reject(new Error(m.error));
        });
        send({ type: "env", jobId, callId, name, args: args.map((a) => (a === undefined ? null : a)) });
      });
  }
  return env;
}

async function runTask(message: ChildRun): Promise<void> {
  const cfg = init!;
  const job: Job = { abort: new AbortController(), cancelled: false };
  jobs.set(message.jobId, job);
  const client = new Anthropic({
    // Never contacted: the harness forwards the request to the real endpoint with the real key.
    baseURL: "http://harness.invalid",
    apiKey: "held-by-the-harness",
    maxRetries: cfg.maxRetries,
    fetch: harnessFetch(message.jobId),
  });
  const ctx: AgentContext = {
    model: cfg.model,
    client,
    signal: job.abort.signal,
    env: harnessEnv(message.jobId, message.env),
    trace: {
      note: (note, data) => send({ type: "note", jobId: message.jobId, message: String(note), data }),
    },
  };
  let outcome: Extract<FromChild, { type: "done" }>["outcome"];
  try {
    // Its own async context: a call its SDKs make through the endpoint inside is known to be this task's.
    const answer = await taskContext.run(message.jobId, () => agent!.run(message.task, ctx));
    outcome = { ok: true, answer: answer ?? null };
  } catch (error) {
    outcome = { ok: false, error: `agent threw: ${describe(error)}` };
  }
  jobs.delete(message.jobId);
  if (job.cancelled) return;
  try {
    sendOrThrow({ type: "done", jobId: message.jobId, outcome });
  } catch (error) {
    // An answer that is not JSON (a cycle, a BigInt) is the agent's malformed output.
    send({
      type: "done",
      jobId: message.jobId,
      outcome: { ok: false, error: `the agent's answer cannot be sent: ${(error as Error).message}` },
    });
  }
}

// An agent's stray rejection or callback error must not take the other tasks down with it.
process.on("unhandledRejection", (reason) =>
  process.stderr.write(`unhandled rejection in agent: ${describe(reason)}\n`),
);
process.on("uncaughtException", (error) => process.stderr.write(`uncaught exception in agent: ${describe(error)}\n`));

function dispatch(message: ToChild): void {
  switch (message.type) {
    case "init":
      void load(message);
      return;
    case "run":
      void runTask(message);
      return;
    case "abort": {
      const job = jobs.get(message.jobId);
      if (job) {
        job.cancelled = true;
        job.abort.abort(new Error("task timed out"));
      }
      return;
    }
    case "llm-head":
      llmCalls.get(message.callId)?.head(message);
      return;
    case "llm-chunk":
      llmCalls.get(message.callId)?.chunk(message);
      return;
    case "llm-end":
      llmCalls.get(message.callId)?.end();
      return;
    case "llm-fail":
      llmCalls.get(message.callId)?.fail(message);
      return;
    case "env-result":
      envCalls.get(message.callId)?.(message);
      return;
  }
}

const endpoint = startInsideEndpoint(
  { running: () => [...jobs.keys()], relay: openCall },
  process.argv.includes("--sealed"),
);

const decoder = new FrameDecoder();
channel.on("data", (chunk: Buffer) => {
  for (const message of decoder.push(chunk)) dispatch(message as ToChild);
});
// The harness went away: nothing left to do.
channel.on("end", () => process.exit(0));
channel.on("error", () => process.exit(0));

// Node loads fetch's classes and the SDK builds its resources on first use: paid here, while the process
// waits as a spare, rather than by the batch's first tasks.
await endpoint;
await new Request("http://harness.invalid", { method: "POST", body: "{}" }).text();
await new Response(new ReadableStream()).body?.cancel();
new Anthropic({ baseURL: "http://harness.invalid", apiKey: "held-by-the-harness" });
