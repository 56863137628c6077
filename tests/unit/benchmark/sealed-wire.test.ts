/** The pure parts of what crosses the seal: the channel's framing, the key taken out of replies, whose failure a status is. */
import { describe, expect, it } from "vitest";
import { ChannelError, encodeFrame, FrameDecoder } from "../../../src/benchmark/sealed/channel.ts";
import { infraStatus } from "../../../src/benchmark/sealed/gateway.ts";
import { KeyScrubber } from "../../../src/benchmark/sealed/reply.ts";

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
    const text = `{"error":"you sent ${form} — 🌍 and more"}`;
    for (let cut = 0; cut <= text.length; cut++) {
      const s = new KeyScrubber(key);
      const out = s.push(text.slice(0, cut)) + s.push(text.slice(cut)) + s.end();
      expect(out).toBe(`{"error":"you sent [REDACTED] — 🌍 and more"}`);
    }
  });

  it("never hands on half of a surrogate pair, and passes text through when there is no key", () => {
    const s = new KeyScrubber(key);
    const text = `${"x".repeat(40)}🌍${"y".repeat(3)}`;
    const first = s.push(text);
    expect(first.at(-1)).not.toMatch(/[\uD800-\uDBFF]/);
    expect(first + s.end()).toBe(text);
    expect(new KeyScrubber(null).push("anything")).toBe("anything");
    expect(new KeyScrubber("short").scrub("a short story")).toBe("a short story");
  });
});

describe("whose failure an endpoint's status is", () => {
  it.each([
    [200, true, false],
    [400, true, false],
    [404, true, false],
    [413, true, false],
    [401, true, true],
    [403, true, true],
    [403, false, false],
    [408, true, true],
    [429, true, true],
    [500, true, true],
    [529, false, true],
  ])("%s (the configured model: %s) is infrastructure: %s", (status, forAgentModel, infra) => {
    expect(infraStatus(status, forAgentModel)).toBe(infra);
  });
});
