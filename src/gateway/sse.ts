/** Server-sent events as the three formats stream them: `event:` and `data:` lines, a blank line between events. */

export interface SseEvent {
  event: string | null;
  data: string;
}

const BOUNDARY = /\r?\n\r?\n/;

function parseEvent(raw: string): SseEvent | null {
  let event: string | null = null;
  const data: string[] = [];
  for (const line of raw.split(/\r?\n/)) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  return data.length ? { event, data: data.join("\n") } : null;
}

/** The complete events of a stream's text; an unfinished last event (the stream broke off) is left out. */
export function parseSse(text: string): SseEvent[] {
  const parts = text.split(BOUNDARY);
  parts.pop();
  return parts.map(parseEvent).filter((e): e is SseEvent => e !== null);
}

/**
 * Cuts a stream into whole events as its bytes arrive, so each event can be redacted whole before it is
 * passed on: a key split across two network chunks is still one string inside its event.
 */
export class EventSplitter {
  private pending = "";

  /** The complete events in what has arrived so far, each with its blank line. */
  push(text: string): string {
    // Only the new bytes (and a separator's start just before them) are searched: a long event that arrives
    // in many pieces must not be scanned again at each one.
    const from = Math.max(0, this.pending.length - 3);
    this.pending += text;
    let end = -1;
    for (const separator of ["\n\n", "\r\n\r\n"]) {
      for (let i = this.pending.indexOf(separator, from); i >= 0; i = this.pending.indexOf(separator, i + 1)) {
        end = Math.max(end, i + separator.length);
      }
    }
    if (end < 0) return "";
    const whole = this.pending.slice(0, end);
    this.pending = this.pending.slice(end);
    return whole;
  }

  /** Whatever is left when the stream ends. */
  rest(): string {
    const rest = this.pending;
    this.pending = "";
    return rest;
  }
}
