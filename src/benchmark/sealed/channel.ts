/**
 * The channel between the harness and an agent process: a socket on the agent process's fd 3, carrying
 * frames of a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. The agent shares its
 * process with the runtime and can write anything there, so the harness parses each frame in a try/catch
 * and checks it against the protocol's schema: garbage, a torn frame, a frame over the cap or a flood is a
 * broken channel, which ends that agent process's tasks as the agent's failure and never reaches the daemon.
 * (Node's built-in IPC channel parsed lines inside its own read callback: one non-JSON line threw in the harness.)
 * Dependency-free: the TypeScript runtime (child.ts) bundles it; the Python runtime speaks the same framing.
 */

/** The one descriptor an agent process has besides stdin, stdout and stderr. */
export const CHANNEL_FD = 3;
/** A model request body may be 32 MiB (gateway.ts); JSON escaping can double it. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
const HEADER_BYTES = 4;

export type ChannelFault = "frame too large" | "not JSON" | "not the protocol" | "torn frame" | "flood" | "not read";

/** The agent process broke the channel; `fault` is its class, without any of the frame's content. */
export class ChannelError extends Error {
  override name = "ChannelError";
  constructor(readonly fault: ChannelFault) {
    super(`the agent process broke its channel to the harness (${fault})`);
  }
}

export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  if (body.length > MAX_FRAME_BYTES) throw new ChannelError("frame too large");
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

/**
 * Turns the bytes read from the channel into messages. A frame's buffer is allocated once its length is
 * known, so a large frame arriving in many chunks is copied once, not once a chunk.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  /** The messages this chunk completes; throws ChannelError on a frame over the cap or one that is not JSON. */
  push(chunk: Buffer): unknown[] {
    const messages: unknown[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.body === null) {
        const n = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + n);
        this.headerFill += n;
        at += n;
        if (this.headerFill < HEADER_BYTES) break;
        const length = this.header.readUInt32BE(0);
        if (length > this.maxFrameBytes) throw new ChannelError("frame too large");
        this.body = Buffer.allocUnsafe(length);
        this.bodyFill = 0;
      }
      const n = Math.min(this.body.length - this.bodyFill, chunk.length - at);
      chunk.copy(this.body, this.bodyFill, at, at + n);
      this.bodyFill += n;
      at += n;
      if (this.bodyFill < this.body.length) break;
      const text = this.body.toString("utf8");
      this.body = null;
      this.headerFill = 0;
      try {
        messages.push(JSON.parse(text));
      } catch {
        throw new ChannelError("not JSON");
      }
    }
    return messages;
  }

  /** True between frames: the stream may end here without tearing one. */
  get idle(): boolean {
    return this.body === null && this.headerFill === 0;
  }
}
