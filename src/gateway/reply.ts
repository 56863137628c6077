/**
 * What goes back to the caller: the reply's bytes with every configured key removed by value (an endpoint that
 * echoes the key in an error body must not hand it to the agent), and the few headers its SDK reads.
 */
import { REDACTED } from "../secrets.ts";
import { EventSplitter } from "./sse.ts";

/** Where the reply goes: the agent's HTTP connection, or the channel into its sandbox. */
export interface ReplySink {
  head(status: number, headers: Record<string, string>): void;
  chunk(data: string): void;
  /** The reply's last bytes, if any, and its end: a whole body leaves in one write, headers included. */
  end(last?: string): void;
  /** The reply broke off: the caller's client should see a broken connection, not a clean end. */
  fail(message: string): void;
}

/** Reply headers the SDKs read for their retries and errors; nothing else of the provider's crosses. */
const PASSED_REPLY_HEADERS = [
  "content-type",
  "request-id",
  "x-request-id",
  "retry-after",
  "retry-after-ms",
  "x-should-retry",
];

/** Removes each key in the forms it takes in JSON and URLs, longest first so no part of one survives. */
export function keyRemover(keys: readonly (string | null)[]): (text: string) => string {
  const forms = new Set<string>();
  for (const key of keys) {
    if (!key) continue;
    for (const form of [key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key)]) forms.add(form);
  }
  const sorted = [...forms].sort((a, b) => b.length - a.length);
  if (!sorted.length) return (text) => text;
  return (text) => {
    let out = text;
    for (const form of sorted) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  };
}

export function replyHeaders(upstream: Headers, clean: (text: string) => string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of PASSED_REPLY_HEADERS) {
    const value = upstream.get(name);
    if (value !== null) headers[name] = clean(value);
  }
  return headers;
}

/**
 * Passes a reply on as it arrives, cleaned: a stream event by event (whole events, so a key cannot straddle
 * two pieces), any other body whole at its end (clients read it whole anyway).
 */
export class ReplyRelay {
  private readonly events: EventSplitter | null;
  private body = "";

  constructor(
    private readonly sink: ReplySink,
    private readonly clean: (text: string) => string,
    streamed: boolean,
  ) {
    this.events = streamed ? new EventSplitter() : null;
  }

  push(text: string): void {
    if (!this.events) {
      this.body += text;
      return;
    }
    const whole = this.events.push(text);
    if (whole) this.sink.chunk(this.clean(whole));
  }

  end(): void {
    const rest = this.events ? this.events.rest() : this.body;
    this.body = "";
    this.sink.end(rest ? this.clean(rest) : undefined);
  }
}
