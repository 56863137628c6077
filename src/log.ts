import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import pino, { type Logger } from "pino";
import { redact } from "./secrets.ts";

export type { Logger } from "pino";

/** Where the daemon is; stamped on every log line by the mixin, so no call site can forget it. */
export interface LogPlace {
  runId: string | null;
  iteration: number | null;
  step: string | null;
}

const SECRET_KEYS = [
  "apiKey",
  "api_key",
  "authorization",
  "Authorization",
  "x-api-key",
  "ANTHROPIC_API_KEY",
  "anthropicApiKey",
  "password",
  "token",
  "secret",
];

/** Redaction paths: the keys themselves, one and two levels down, and in headers. */
export const REDACT_PATHS = SECRET_KEYS.flatMap((k) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const dot = key.startsWith("[") ? key : `.${key}`;
  return [key.startsWith("[") ? `${key}` : key, `*${dot}`, `*.*${dot}`, `headers${dot}`, `*.headers${dot}`];
});

// Keys that leak into free text (error messages, echoed requests) are caught on the way out, by value.
export const scrubSecrets = redact;

export interface LoggerOptions {
  /** Also append to this file (created with its directory). */
  file?: string;
  /** Write to stdout (default true). */
  stdout?: boolean;
  level?: string;
  place?: LogPlace;
  /** Extra destination, for tests. */
  stream?: NodeJS.WritableStream;
}

/** A pino logger writing one JSON object per line, synchronously, to stdout and a file. */
export function createLogger(options: LoggerOptions = {}): { log: Logger; place: LogPlace } {
  const place: LogPlace = options.place ?? { runId: null, iteration: null, step: null };
  const streams: pino.StreamEntry[] = [];
  if (options.stdout ?? true) streams.push({ stream: pino.destination({ dest: 1, sync: true }) });
  if (options.file) {
    mkdirSync(dirname(options.file), { recursive: true });
    streams.push({ stream: pino.destination({ dest: options.file, sync: true, mkdir: true, append: true }) });
  }
  if (options.stream) streams.push({ stream: options.stream });
  const log = pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "[REDACTED]" },
      mixin: () => ({ runId: place.runId, iteration: place.iteration, step: place.step }),
      hooks: { streamWrite: scrubSecrets },
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.multistream(streams),
  );
  return { log, place };
}

export function logFileFor(workspaceDir: string, date = new Date()): string {
  return `${workspaceDir}/logs/auto-harness-${date.toISOString().slice(0, 10)}.log`;
}
