/**
 * An endpoint that echoes the caller's credentials in its error bodies, with a key in no familiar format:
 * the key must appear in nothing the harness writes or prints (journal file and WAL, status, report, stderr,
 * logs, traces, learnings, git history).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { main } from "../../../src/cli/program.ts";
import { clearSecrets, redact, redactDeep, registerSecret } from "../../../src/secrets.ts";
import { Capture } from "../../helpers/capture.ts";
import { sandboxLineHere } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const BIN = join(ROOT, "bin", "auto-harness.js");

describe("redact", () => {
  it.each([
    [
      "a registered value of any shape",
      "pk_live_0123456789abcdef",
      "error: you sent pk_live_0123456789abcdef!",
      "error: you sent [REDACTED]!",
    ],
    ["its JSON-escaped form", 'we"ird\\key-123', `{"k":${JSON.stringify('we"ird\\key-123')}}`, '{"k":"[REDACTED]"}'],
    [
      "its URL-encoded form",
      "key with spaces/+",
      `url?k=${encodeURIComponent("key with spaces/+")}`,
      "url?k=[REDACTED]",
    ],
    ["an unregistered sk-ant key", "unregistered-1", "bad key sk-ant-api03-abcdefgh", "bad key [REDACTED]"],
    [
      "an auth header value",
      "unregistered-2",
      '{"authorization":"Bearer tok_abcdefghijkl"}',
      '{"authorization":"Bearer [REDACTED]"}',
    ],
    ["a short value (not registered)", "short", "a short story", "a short story"],
  ])("removes %s", (_name, secret, text, expected) => {
    clearSecrets();
    registerSecret(secret);
    expect(redact(text)).toBe(expected);
  });

  it("redacts every string inside a value", () => {
    clearSecrets();
    registerSecret("zz-secret-value-1");
    expect(redactDeep({ a: ["x zz-secret-value-1"], b: 2, c: { d: "zz-secret-value-1" } })).toEqual({
      a: ["x [REDACTED]"],
      b: 2,
      c: { d: "[REDACTED]" },
    });
    clearSecrets();
  });
});

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("exit", (code) => done({ code, out, err }));
  });
}

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = join(dir, name);
    return statSync(file).isDirectory() ? allFiles(file) : [file];
  });
}

describe("an endpoint that echoes the key in its errors", () => {
  let server: TestLlmServer;
  // Deliberately not `sk-ant-…`: removal must be by value, not by pattern.
  const key = `pk_${randomBytes(12).toString("hex")}`;
  beforeAll(async () => {
    server = await startTestLlmServer({
      responder: (req) => ({
        fault: "400",
        message: `invalid request; you sent ${req.headers["x-api-key"] ?? ""} ${req.headers.authorization ?? ""}`,
      }),
    });
  });
  afterAll(() => server.close());

  it("leaves the key in no file, journal byte or printed line", async () => {
    const dir = tempDir("ah-secrets-");
    writeFileSync(
      join(dir, "tasks.jsonl"),
      ["t1", "t2", "t3", "t4", "t5", "t6"].map((id) => JSON.stringify({ id, input: id, expected: id })).join("\n"),
    );
    writeFileSync(
      join(dir, "scorer.ts"),
      "export default (task: { expected: string }, r: { answer: unknown }) => (r.answer === task.expected ? 1 : 0);\n",
    );
    writeFileSync(
      join(dir, "experiment_config.yaml"),
      `benchmark: local\nlocal: { tasks: tasks.jsonl, scorer: scorer.ts }\nmax_iterations: 1\nstep_attempts: 1\nmax_concurrency: 2\n${sandboxLineHere()}`,
    );
    const agent = `export default {
  async run(task: { input: string }, ctx: any) {
    ctx.trace.note("calling the model");
    const reply = await ctx.client.messages.create({ model: ctx.model, max_tokens: 10, messages: [{ role: "user", content: task.input }] }, { signal: ctx.signal });
    return reply.content[0].text;
  },
};
`;
    const env = { ANTHROPIC_API_KEY: key, ANTHROPIC_BASE_URL: server.url };
    const printed: string[] = [];
    mkdirSync(join(dir, "agent"));
    writeFileSync(join(dir, "agent", "agent.ts"), agent);
    const prepare = await cli(["prepare", "--dir", dir], env);
    printed.push(prepare.out, prepare.err);
    const run = await cli(["run", "--dir", dir], env);
    printed.push(run.out, run.err);
    // What the operator reads next: status (human and JSON) and the report, through the real CLI.
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      for (const args of [["status"], ["status", "--json"], ["report"]]) {
        const out = new Capture();
        const err = new Capture();
        await main(["node", "auto-harness", ...args, "--dir", dir], { stdout: out, stderr: err });
        printed.push(out.text, err.text);
      }
    } finally {
      process.env = saved;
      clearSecrets();
    }
    // The run stopped on the refusal (how it stops is the loop's business: failed or paused).
    expect(run.code).not.toBe(0);
    expect(run.err).toMatch(/the request was refused \(400\)/);
    expect(printed.join("\n")).toMatch(/last error +the request was refused \(400\)/);

    // The endpoint really did echo the key, and the run really hit it.
    expect(server.requests.length).toBeGreaterThan(0);
    const files = allFiles(dir);
    expect(files.some((f) => f.endsWith("journal.sqlite"))).toBe(true);
    expect(files.some((f) => f.endsWith("report.html"))).toBe(true);
    expect(printed.join("\n")).toMatch(/\[REDACTED\]/);

    for (const text of printed) expect(text).not.toContain(key);
    for (const file of files) {
      expect(readFileSync(file).includes(Buffer.from(key)), file).toBe(false);
    }
  }, 180_000);
});
