/**
 * Secrets are removed by value, whatever their format: the configured key and auth token are registered
 * at start-up, and every writer the harness owns (journal, logs, stdout/stderr, traces, report, learnings)
 * passes its text through `redact` on the way out. Patterns alone missed keys that do not look like
 * `sk-ant-…`, and an endpoint echoing the Authorization header put the key into the journal and status.
 */
import { Writable } from "node:stream";

export const REDACTED = "[REDACTED]";

/** Environment variables whose values are secrets wherever they appear. */
export const SECRET_ENV = ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"] as const;

// Shorter values would turn ordinary words into [REDACTED]; no real key is this short.
const MIN_SECRET_LENGTH = 8;

const values = new Set<string>();
let sorted: string[] = [];

// Keys that look like keys, and the values of auth headers, even when their value was never registered.
const KEY_SHAPES = /\b(sk-ant-[A-Za-z0-9_-]{6,}|sk-[A-Za-z0-9]{20,})/g;
const AUTH_HEADER_VALUE = /((?:authorization|x-api-key)["']?\s*[:=]\s*["']?(?:bearer\s+)?)([^\s"',;}[\]]{8,})/gi;

/** Registers a secret's value (and the forms it takes inside JSON and URLs). Returns whether it was taken. */
export function registerSecret(value: string | null | undefined): boolean {
  if (typeof value !== "string") return false;
  const v = value.trim();
  if (v.length < MIN_SECRET_LENGTH) return false;
  for (const form of [v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]) values.add(form);
  // Longest first, so a value that contains another is removed whole.
  sorted = [...values].sort((a, b) => b.length - a.length);
  return true;
}

/** Registers the secrets the harness is configured with (the process environment by default). */
export function registerSecretsFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of SECRET_ENV) registerSecret(env[name]);
}

/** Test seam: forgets every registered value. */
export function clearSecrets(): void {
  values.clear();
  sorted = [];
}

/** The text with every registered secret, key-shaped string and auth header value replaced by [REDACTED]. */
export function redact(text: string): string {
  let out = text;
  for (const v of sorted) if (out.includes(v)) out = out.split(v).join(REDACTED);
  return out.replace(KEY_SHAPES, REDACTED).replace(AUTH_HEADER_VALUE, `$1${REDACTED}`);
}

/** Redacts every string inside a JSON-like value (objects, arrays), leaving other values alone. */
export function redactDeep<T>(value: T): T {
  if (typeof value === "string") return redact(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v)])) as T;
  }
  return value;
}

/** A stream that redacts each chunk before passing it on (the CLI's stdout and stderr). */
export function redactingStream(target: NodeJS.WritableStream): NodeJS.WritableStream {
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      target.write(redact(typeof chunk === "string" ? chunk : chunk.toString("utf8")));
      callback();
    },
  });
  // Progress bars and `status --watch` ask the destination whether it is a terminal.
  return Object.assign(stream, {
    isTTY: (target as { isTTY?: boolean }).isTTY,
    columns: (target as { columns?: number }).columns,
  });
}
