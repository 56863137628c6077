/**
 * The gateway on a loopback port, for a `command` benchmark: the command's SDKs (OpenAI, Anthropic, LiteLLM…)
 * are pointed at it by base URL and hold only a per-run token, never the provider's key. Each call goes
 * through the same strict, metered path as a sealed agent's, attributed to the run's split.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createSocketServer, type Server as SocketServer } from "node:net";
import type { Split } from "../domain.ts";
import { registerSecret, SECRET_ENV } from "../secrets.ts";
import type { Gateway, GatewayResult, ReplySink } from "./gateway.ts";

export interface LoopbackEndpointOptions {
  gateway: Gateway;
  /** The split every call of this run is attributed to. */
  split: Split | null;
  /** Each finished call, refused ones included: the caller tallies infrastructure failures from it. */
  onCall?: (result: GatewayResult) => void;
  /** A call's key for the ledger (run, invocation, sequence); a random id otherwise. */
  callId?: () => string;
  maxRequestBytes?: number;
}

const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Where SDKs take the credential from; none of them is forwarded. */
const CREDENTIAL_HEADERS = ["authorization", "x-api-key", "api-key"];

function presented(req: IncomingMessage): string | null {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const key = req.headers["x-api-key"] ?? req.headers["api-key"];
  return bearer ?? (typeof key === "string" ? key : null);
}

/** An error reply both SDK families read: Anthropic's shape, whose `error.message` OpenAI's clients read too. */
function sendError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ type: "error", error: { type, message } }));
}

export class LoopbackEndpoint {
  /** The only credential the command gets. */
  readonly token = randomBytes(24).toString("hex");
  private readonly server: Server;
  private unix: SocketServer | null = null;
  private readonly inFlight = new Map<Promise<void>, AbortController>();
  private base: string | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: LoopbackEndpointOptions) {
    registerSecret(this.token);
    this.server = createServer((req, res) => this.serve(req, res));
  }

  /** Listens on 127.0.0.1, on a free port; resolves to the base URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const { port } = this.server.address() as AddressInfo;
    this.base = `http://127.0.0.1:${port}`;
    return this.base;
  }

  /**
   * Also takes connections on a unix socket at `path`, for a command sandboxed without a network: a relay inside
   * its network namespace carries its loopback's connections here. Anyone who may write the socket may connect,
   * so the token still guards every call.
   */
  async listenUnix(path: string): Promise<void> {
    const unix = createSocketServer((socket) => this.server.emit("connection", socket));
    await new Promise<void>((resolve, reject) => {
      unix.once("error", reject);
      unix.listen(path, () => {
        unix.off("error", reject);
        resolve();
      });
    });
    // The sandbox's user (not the harness's, when the harness is root) connects to it.
    chmodSync(path, 0o666);
    this.unix = unix;
  }

  /** The port the endpoint listens on (a relay inside a sandbox listens on the same one). */
  get port(): number {
    return Number(new URL(this.url).port);
  }

  get url(): string {
    if (!this.base) throw new Error("the gateway endpoint has not started");
    return this.base;
  }

  /** What the command's environment gets: base URLs for every SDK family, and the token as their key. */
  environment(): Record<string, string> {
    const v1 = `${this.url}/v1`;
    return {
      OPENAI_BASE_URL: v1,
      OPENAI_API_BASE: v1,
      ANTHROPIC_BASE_URL: this.url,
      ANTHROPIC_API_BASE: this.url,
      OPENAI_API_KEY: this.token,
      ANTHROPIC_API_KEY: this.token,
      AUTO_HARNESS_GATEWAY_URL: this.url,
      AUTO_HARNESS_GATEWAY_TOKEN: this.token,
    };
  }

  /** Stops taking calls, cancels those in flight (their paid part is still reported) and closes. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.unix?.close();
      for (const controller of this.inFlight.values()) controller.abort();
      await Promise.allSettled([...this.inFlight.keys()]);
      this.server.closeAllConnections();
      await closed;
    })();
    return this.closing;
  }

  private authorized(req: IncomingMessage): boolean {
    const given = Buffer.from(presented(req) ?? "");
    const token = Buffer.from(this.token);
    return given.length === token.length && timingSafeEqual(given, token);
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    if (this.closing) {
      sendError(res, 503, "overloaded_error", "the run's gateway is closing");
      return;
    }
    if (!this.authorized(req)) {
      req.resume();
      sendError(
        res,
        401,
        "authentication_error",
        "the gateway's token is missing or wrong; use the key the harness set",
      );
      return;
    }
    const limit = this.o.maxRequestBytes ?? MAX_REQUEST_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > limit) return sendError(res, 413, "request_too_large", `(body): larger than ${limit} bytes`);
      this.relay(req, res, Buffer.concat(chunks).toString("utf8"));
    });
  }

  private report(result: GatewayResult): void {
    try {
      this.o.onCall?.(result);
    } catch {
      // The caller's tally failing must not take the command's call down with it.
    }
  }

  private relay(req: IncomingMessage, res: ServerResponse, body: string): void {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || CREDENTIAL_HEADERS.includes(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    const controller = new AbortController();
    // The command hung up: stop paying for a reply nobody reads.
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const open = () => !res.destroyed;
    const sink: ReplySink = {
      head: (status, h) => open() && res.writeHead(status, h),
      chunk: (data) => open() && res.write(data),
      end: (last) => open() && res.end(last),
      fail: () => res.destroy(),
    };
    const call = this.o.gateway
      .handle({ method: req.method ?? "GET", path: req.url ?? "/", headers, body }, sink, {
        signal: controller.signal,
        split: this.o.split,
        ...(this.o.callId ? { callId: this.o.callId() } : {}),
      })
      .then((result) => this.report(result));
    const tracked = call.finally(() => this.inFlight.delete(tracked));
    this.inFlight.set(tracked, controller);
  }
}

/**
 * A command's environment: the harness's own, less every provider key, plus the endpoint's base URLs and token.
 * `keyEnvs` names the providers' key variables (`api_key_env`).
 */
export function commandEnvironment(
  base: NodeJS.ProcessEnv,
  endpoint: LoopbackEndpoint,
  keyEnvs: readonly (string | null)[],
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of [...SECRET_ENV, ...keyEnvs]) if (name) delete env[name];
  return { ...env, ...endpoint.environment() };
}
