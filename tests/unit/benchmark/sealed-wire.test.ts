/** The pure parts of what crosses the seal: the channel's framing, the key taken out of replies, whose failure a status is. */
import { describe, expect, it } from "vitest";
import { ChannelError, encodeFrame, FrameDecoder } from "../../../src/benchmark/sealed/channel.ts";
import { isInfrastructure, statusClass } from "../../../src/gateway/gateway.ts";
import { keyRemover, ReplyRelay, type ReplySink } from "../../../src/gateway/reply.ts";

/** What a relay hands on, piece by piece, and whether it ended. */
function relayed(key: string | null, streamed: boolean, pieces: string[]): string {
  let out = "";
  const sink: ReplySink = {
    head: () => {},
    chunk: (data) => {
      out += data;
    },
    end: (last) => {
      out += last ?? "";
    },
    fail: () => {},
  };
  const relay = new ReplyRelay(sink, keyRemover([key]), streamed);
  for (const piece of pieces) relay.push(piece);
  relay.end();
  return out;
}

describe("the channel's frames", () => {
  const messages = [{ type: "hb" }, { type: "note", jobId: "j1", message: "héllo 🌍" }, { type: "ready" }];
  const stream = Buffer.concat(messages.map(encodeFrame));

  it("reads the same messages however the bytes are cut", () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const got = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(got).toEqual(messages);
      expect(d.idle).toBe(true);
    }
    const d = new FrameDecoder();
    const byByte = [...stream].flatMap((b) => d.push(Buffer.from([b])));
    expect(byByte).toEqual(messages);
  });

  it("knows a torn frame from the end of a whole one", () => {
    const d = new FrameDecoder();
    d.push(stream.subarray(0, stream.length - 3));
    expect(d.idle).toBe(false);
  });

  it.each([
    ["a line of text", Buffer.from("hello harness\n"), "frame too large"],
    ["a frame over the cap", Buffer.from([0x10, 0, 0, 0]), "frame too large"],
    ["a frame that is not JSON", Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from("{nope")]), "not JSON"],
  ])("refuses %s with its class", (_name, bytes, fault) => {
    const d = new FrameDecoder(1024);
    expect(() => d.push(bytes)).toThrow(ChannelError);
    try {
      new FrameDecoder(1024).push(bytes);
    } catch (error) {
      expect((error as ChannelError).fault).toBe(fault);
    }
  });
});

describe("the key taken out of a reply going into the sandbox", () => {
  const key = 'pk_"odd/key+value 0123456789';
  const forms = [key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key)];

  it.each(forms)("removes %s wherever the stream cuts it", (form) => {
    const text = `data: {"error":"you sent ${form} — 🌍 and more"}\n\n`;
    for (let cut = 0; cut <= text.length; cut++) {
      const out = relayed(key, true, [text.slice(0, cut), text.slice(cut)]);
      expect(out).toBe(`data: {"error":"you sent [REDACTED] — 🌍 and more"}\n\n`);
    }
    expect(relayed(key, false, [text.slice(0, 9), text.slice(9)])).not.toContain(form);
  });

  it("hands on whole events, never half of a surrogate pair, and passes text through when there is no key", () => {
    const text = `data: ${"x".repeat(40)}🌍${"y".repeat(3)}\n\n`;
    const cutInPair = text.indexOf("🌍") + 1;
    expect(relayed(key, true, [text.slice(0, cutInPair), text.slice(cutInPair)])).toBe(text);
    expect(relayed(null, true, ["anything"])).toBe("anything");
  });
});

describe("whose failure an endpoint's status is", () => {
  // The gateway forwards only the configured models, so a 403 is always a refusal of the harness's key.
  it.each([
    [200, false],
    [400, false],
    [404, false],
    [413, false],
    [401, true],
    [403, true],
    [408, true],
    [429, true],
    [500, true],
    [529, true],
  ])("%s is infrastructure: %s", (status, infra) => {
    expect(isInfrastructure(statusClass(status))).toBe(infra);
  });
});
