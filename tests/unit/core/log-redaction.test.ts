import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/log.ts";

function capture() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter(Boolean)));
  return { stream, lines };
}

describe("logs", () => {
  it("redact API keys, authorization headers and keys in free text", () => {
    const { stream, lines } = capture();
    const { log, place } = createLogger({ stdout: false, stream });
    place.runId = "run-x";
    place.iteration = 3;
    place.step = "edit";
    const key = "sk-ant-api03-SECRETSECRETSECRET";
    log.info(
      { apiKey: key, config: { api_key: key }, req: { headers: { authorization: `Bearer ${key}`, "x-api-key": key } } },
      "call",
    );
    log.error({ err: new Error(`401 from API with key ${key}`) }, `failed with ${key}`);
    log.warn({ env: { ANTHROPIC_API_KEY: key } }, "env");
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain("SECRETSECRET");
      const obj = JSON.parse(line);
      // Every line says where the daemon is.
      expect(obj).toMatchObject({ runId: "run-x", iteration: 3, step: "edit" });
    }
    const first = JSON.parse(lines[0]!);
    expect(first.apiKey).toBe("[REDACTED]");
    expect(first.req.headers.authorization).toBe("[REDACTED]");
    expect(first.req.headers["x-api-key"]).toBe("[REDACTED]");
    expect(first.config.api_key).toBe("[REDACTED]");
    expect(JSON.parse(lines[2]!).env.ANTHROPIC_API_KEY).toBe("[REDACTED]");
  });

  it("writes one JSON object per line", () => {
    const { stream, lines } = capture();
    const { log } = createLogger({ stdout: false, stream });
    log.info({ text: "multi\nline\nvalue" }, "first");
    log.info("second");
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["first", "second"]);
  });
});
