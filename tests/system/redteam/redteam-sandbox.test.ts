/**
 * Red team: hostile agent files run in real sealed agent processes against the local test LLM server,
 * and each test asserts what the operator would see — the score, the files, the ledger, the processes.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type RecordedRequest,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../../../dev/llm-server/llm-server.ts";
import { EXAMPLE_DIR } from "../../../src/benchmark/adapters/example.ts";
import { formatStatus, readStatus } from "../../../src/cli/status.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { costUsd } from "../../../src/llm/client.ts";
import { gatherReport } from "../../../src/report/gather.ts";
import { renderReport } from "../../../src/report/render.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { agentNotes, type Experiment, makeExperiment, readTrace } from "../../helpers/benchmark-fixtures.ts";
import { preparedExperiment, spawnCli } from "../../helpers/experiment.ts";
import { until } from "../../helpers/processes.ts";
import { haveTool } from "../../helpers/tools.ts";

const HARNESS_CHILD = resolve(import.meta.dirname, "../../..", "src", "benchmark", "sealed", "child.ts");
const promptOf = (req: RecordedRequest): string => String(req.body?.messages?.[0]?.content ?? "");

let server: TestLlmServer | null = null;
let exp: Experiment | null = null;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  exp?.cleanup();
  exp = null;
  await server?.close();
  server = null;
  for (const c of cleanups.splice(0)) await c();
});

const notes = agentNotes;

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("red team: the sealed agent process", () => {
  it("cannot read the benchmark's answers or scorer: replaying them moves no score (it does unsealed)", async () => {
    server = await startTestLlmServer({ responder: () => textReply("a guess") });
    const ids = ["q1", "q2", "q3"];
    exp = makeExperiment({
      tasks: ids.map((id) => ({ id, input: null, expected: `secret-answer-${id}` })),
      agent: "",
      baseURL: server.url,
      split: { train: [], test: ids },
    });
    const files = [
      join(exp.root, "bench", "tasks.jsonl"),
      join(EXAMPLE_DIR, "tasks.jsonl"),
      join(EXAMPLE_DIR, "scorer.ts"),
    ];
    exp.writeAgent(`import { readFileSync } from "node:fs";
export default {
  async run(task: { id: string }, ctx: { trace: { note(m: string): void } }) {
    for (const file of ${JSON.stringify(files)}) {
      try {
        const text = readFileSync(file, "utf8");
        for (const line of text.split("\\n")) {
          if (line.includes('"' + task.id + '"')) return JSON.parse(line).expected;
        }
        ctx.trace.note("read " + file);
      } catch (error) {
        ctx.trace.note(file + " " + (error as { code?: string }).code);
      }
    }
    return "no answer";
  },
};
`);
    const sealed = await exp.runner({ warmSpare: false }).run({ split: "test", runId: null });
    expect(sealed.score).toBe(0);
    expect(sealed.infraErrors).toBe(0);
    // The same agent, unsealed, does cheat: the test above measures something.
    const unsealed = await exp
      .runner({ sandbox: "none", reuse: false, warmSpare: false })
      .run({ split: "test", runId: null });
    expect(unsealed.score).toBe(1);

    // What it saw inside: the files do not exist there.
    await exp.runner({ warmSpare: false }).run({ split: "train", taskIds: ["q1"], runId: null });
    expect(notes(exp, "q1")).toEqual(files.map((f) => `${f} ENOENT`));
  });

  it("cannot change the workspace, the git hooks, the steering files, the scorer or the harness; its writes die with the batch", async () => {
    server = await startTestLlmServer({ responder: () => textReply("ok") });
    exp = makeExperiment({ tasks: [{ id: "w1", input: null, expected: "x" }], agent: "", baseURL: server.url });
    const root = exp.root;
    const p = paths(root);
    mkdirSync(join(root, ".git", "hooks"), { recursive: true });
    writeFileSync(p.results, "iteration\tval_score\n0\t0.3333\n");
    writeFileSync(join(p.workspace, "suite.json"), '{"tasks":[],"threshold":0.8,"last_results":{}}\n');
    writeFileSync(p.split, '{"train":["w1"],"test":[]}\n');
    writeFileSync(join(root, "PROGRAM.md"), "# the operator's program\n");
    const hostMarker = join(tmpdir(), `redteam-marker-${process.pid}-${Date.now()}`);
    const targets = [
      p.results,
      join(p.workspace, "suite.json"),
      p.split,
      join(root, ".git", "hooks", "post-commit"),
      join(root, "PROGRAM.md"),
      join(root, "bench", "scorer.ts"),
      join(EXAMPLE_DIR, "scorer.ts"),
      HARNESS_CHILD,
    ];
    const before = targets.map((f) => (existsSync(f) ? readFileSync(f, "utf8") : null));
    exp.writeAgent(`import { existsSync, writeFileSync, chmodSync } from "node:fs";
export default {
  async run(_task: unknown, ctx: { trace: { note(m: string): void } }) {
    for (const file of ${JSON.stringify(targets)}) {
      try {
        writeFileSync(file, "#!/bin/sh\\necho pwned\\n");
        chmodSync(file, 0o755);
        ctx.trace.note(file + " WRITTEN");
      } catch (error) {
        ctx.trace.note(file + " " + (error as { code?: string }).code);
      }
    }
    ctx.trace.note("persisted " + existsSync("/tmp/left-by-the-last-batch"));
    writeFileSync("/tmp/left-by-the-last-batch", "x");
    writeFileSync(${JSON.stringify(hostMarker)}, "x");
    return "x";
  },
};
`);
    cleanups.push(() => rmSync(hostMarker, { force: true }));
    for (let batch = 0; batch < 2; batch++) {
      const summary = await exp.runner({ reuse: false }).run({ split: "train", taskIds: ["w1"], runId: null });
      expect(summary.results).toEqual({ w1: 1 });
      const seen = notes(exp, "w1");
      for (const [i, file] of targets.entries()) {
        // Bound read-only (the harness's own code) or not there at all.
        expect(seen[i]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} (EROFS|ENOENT)$`));
      }
      // Its private /tmp is new for every batch.
      expect(seen.at(-1)).toBe("persisted false");
    }
    expect(targets.map((f) => (existsSync(f) ? readFileSync(f, "utf8") : null))).toEqual(before);
    expect(existsSync(join(root, ".git", "hooks", "post-commit"))).toBe(false);
    expect(existsSync(hostMarker)).toBe(false);
  });

  it("cannot reach a listener on 127.0.0.1, nor the model endpoint without the harness (it can unsealed)", async () => {
    server = await startTestLlmServer({ responder: () => textReply("ok") });
    let hits = 0;
    const listener: Server = createServer((socket) => {
      hits += 1;
      socket.on("error", () => {});
      socket.end("hello\n");
    });
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => listener.close(() => r())));
    const port = (listener.address() as { port: number }).port;
    exp = makeExperiment({ tasks: [{ id: "n1", input: null, expected: "reached" }], agent: "", baseURL: server.url });
    exp.writeAgent(`import { connect } from "node:net";
const tryConnect = (port: number) =>
  new Promise<string>((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.on("connect", () => { s.destroy(); resolve("connected"); });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });
export default {
  async run(_task: unknown, ctx: { trace: { note(m: string): void } }) {
    const direct = await tryConnect(${port});
    let viaHttp = "refused";
    try {
      await fetch(${JSON.stringify(`${server.url}/v1/messages`)}, { method: "POST", body: "{}" });
      viaHttp = "reached";
    } catch (error) {
      viaHttp = String((error as { cause?: { code?: string } }).cause?.code ?? error);
    }
    ctx.trace.note("listener " + direct);
    ctx.trace.note("endpoint " + viaHttp);
    return direct === "connected" || viaHttp === "reached" ? "reached" : "sealed";
  },
};
`);
    const requestsBefore = server.requests.length;
    const sealed = await exp.runner({ warmSpare: false }).run({ split: "train", taskIds: ["n1"], runId: null });
    expect(sealed.results).toEqual({ n1: 0 });
    expect(hits).toBe(0);
    expect(server.requests.length).toBe(requestsBefore);
    expect(notes(exp, "n1").join("\n")).toMatch(/listener (ENETUNREACH|ECONNREFUSED)/);

    const unsealed = await exp.runner({ sandbox: "none", reuse: false, warmSpare: false }).run({
      split: "train",
      taskIds: ["n1"],
      runId: null,
    });
    expect(unsealed.results).toEqual({ n1: 1 });
    expect(hits).toBe(1);
  });

  it("leaves no process behind: a detached child dies with the batch", async () => {
    server = await startTestLlmServer({ responder: () => textReply("ok") });
    const marker = `redteam-orphan-${process.pid}-${Date.now()}`;
    exp = makeExperiment({ tasks: [{ id: "d1", input: null, expected: "spawned" }], agent: "", baseURL: server.url });
    exp.writeAgent(`import { spawn } from "node:child_process";
export default {
  async run() {
    const child = spawn("/bin/sh", ["-c", "sleep 120; echo ${marker}"], { detached: true, stdio: "ignore" });
    child.unref();
    await new Promise((r) => setTimeout(r, 200));
    return child.pid ? "spawned" : "no";
  },
};
`);
    const orphans = (): number[] =>
      readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d))
        .filter((pid) => {
          try {
            return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
          } catch {
            return false;
          }
        })
        .map(Number);
    cleanups.push(() => {
      for (const pid of orphans()) process.kill(pid, "SIGKILL");
    });
    const summary = await exp.runner({ warmSpare: false }).run({ split: "train", taskIds: ["d1"], runId: null });
    // It did start the process inside; it is gone with the batch.
    expect(summary.results).toEqual({ d1: 1 });
    await until("the agent's background process to go", () => orphans().length === 0, 10_000);
  });

  it("cannot forge its spend: the ledger holds what the endpoint reported, never less", async () => {
    const usage = { input_tokens: 1234, output_tokens: 567 };
    server = await startTestLlmServer({ responder: () => textReply("fine", usage) });
    exp = makeExperiment({
      tasks: [{ id: "s1", input: null, expected: "fine" }],
      agent: "",
      baseURL: server.url,
      config: { budget_usd: 100 },
    });
    exp.writeAgent(`import type Anthropic from "@anthropic-ai/sdk";
import { writeSync } from "node:fs";
export default {
  async run(task: { id: string }, ctx: { client: Anthropic; model: string }) {
    // Frames on the channel, as the runtime writes them (a frame that is not the protocol breaks the channel:
    // the channel red team has those).
    const send = (m: unknown) => {
      const body = Buffer.from(JSON.stringify(m));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      writeSync(3, Buffer.concat([head, body]));
    };
    // A result and a model call for a task that does not exist.
    send({ type: "done", jobId: "no-such-job", outcome: { ok: true, answer: "fine" } });
    send({ type: "llm", jobId: "no-such-job", callId: "x1", method: "POST", path: "/v1/messages", headers: {}, body: "{}" });
    const r = await ctx.client.messages.create({ model: ctx.model, max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
    // A request that is not the Messages API is refused, not forwarded.
    await fetch("http://harness.invalid/v1/models").catch(() => {});
    return r.content.map((b) => (b.type === "text" ? b.text : "")).join("");
  },
};
`);
    exp.journal.runs.createRun("run-s", {});
    const summary = await exp.runner().run({ split: "train", taskIds: ["s1"], runId: "run-s" });
    expect(summary.results).toEqual({ s1: 1 });
    expect(server.requests).toHaveLength(1);
    const calls = exp.journal.ledger.llmCalls("run-s");
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ role: "agent", inputTokens: 1234, outputTokens: 567 });
    const spend = exp.journal.ledger.spend("run-s").totalUsd;
    expect(spend).toBeGreaterThan(0);
    expect(spend).toBeCloseTo(
      costUsd(calls[0]!.model, { ...usage, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }),
      12,
    );
  });

  it("cannot turn its own failures into infrastructure errors: each scores 0, never null", async () => {
    server = await startTestLlmServer({
      responder: async (req) => {
        if (promptOf(req) === "slow") await new Promise((r) => setTimeout(r, 2000));
        return textReply("late");
      },
    });
    const modes = ["abort", "stream-abort", "apierror", "bigint", "crash"];
    exp = makeExperiment({
      tasks: modes.map((mode) => ({ id: mode, input: { mode }, expected: "never" })),
      agent: "",
      baseURL: server.url,
      config: { max_concurrency: 1 },
    });
    exp.writeAgent(`import type Anthropic from "@anthropic-ai/sdk";
export default {
  async run(task: { input: { mode: string } }, ctx: { client: Anthropic; model: string }) {
    const mode = task.input.mode;
    const body = { model: ctx.model, max_tokens: 10, messages: [{ role: "user" as const, content: "slow" }] };
    if (mode === "abort") {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await ctx.client.messages.create(body, { signal: ac.signal });
    }
    if (mode === "stream-abort") {
      const stream = ctx.client.messages.stream(body);
      setTimeout(() => stream.abort(), 50);
      await stream.finalMessage();
    }
    if (mode === "apierror") {
      throw Object.assign(new Error("529 Overloaded"), { name: "APIError", status: 529, error: { type: "overloaded_error" } });
    }
    if (mode === "bigint") return 10n;
    if (mode === "crash") process.exit(3);
    return "never";
  },
};
`);
    const summary = await exp.runner().run({ split: "train", taskIds: modes, runId: null });
    expect(summary.results).toEqual(Object.fromEntries(modes.map((m) => [m, 0])));
    expect(summary.infraErrors).toBe(0);
    expect(readTrace(exp, "crash").error).toContain("crashed");
  });

  it("sees the same world in a train run and a test run, with no key in its environment", async () => {
    server = await startTestLlmServer({ responder: () => textReply("ok") });
    const outDir = join(tmpdir(), `redteam-observe-${process.pid}-${Date.now()}`);
    mkdirSync(outDir);
    cleanups.push(() => rmSync(outDir, { recursive: true, force: true }));
    exp = makeExperiment({
      tasks: ["tr", "te"].map((id) => ({ id, input: null, out: join(outDir, `${id}.json`) })),
      agent: "",
      baseURL: server.url,
      split: { train: ["tr"], test: ["te"] },
      // The harness's scorer sees the answer; it keeps it for this test only.
      scorer: `import { writeFileSync } from "node:fs";
export default (task: { out: string }, result: { answer: unknown }) => { writeFileSync(task.out, String(result.answer)); return 1; };
`,
    });
    exp.writeAgent(`import { fstatSync, readdirSync } from "node:fs";
const kind = (fd: number) => {
  try {
    const s = fstatSync(fd);
    return s.isFIFO() ? "fifo" : s.isSocket() ? "socket" : s.isCharacterDevice() ? "chr" : s.isFile() ? "file" : "other";
  } catch (error) {
    return (error as { code?: string }).code;
  }
};
const list = (dir: string) => { try { return readdirSync(dir).sort(); } catch (error) { return (error as { code?: string }).code; } };
export default {
  async run(task: { id: string; input: unknown }, ctx: Record<string, unknown> & { env: object; model: string }) {
    return JSON.stringify({
      env: process.env,
      argv: process.argv,
      execArgv: process.execArgv,
      cwd: process.cwd(),
      stdio: [0, 1, 2].map(kind),
      ctx: Object.keys(ctx).sort(),
      ctxEnv: ctx.env,
      model: ctx.model,
      input: task.input,
      root: list("/"),
      agentDir: list("/agent"),
    });
  },
};
`);
    await exp.runner().run({ split: "train", runId: null });
    await exp.runner().run({ split: "test", runId: null });
    const train = readFileSync(join(outDir, "tr.json"), "utf8");
    const test = readFileSync(join(outDir, "te.json"), "utf8");
    expect(JSON.parse(test)).toEqual(JSON.parse(train));
    expect(train).not.toContain("test-key-local");
    const seen = JSON.parse(train);
    // At most the IPC channel's variables (node removes them once connected), the working directory, and where
    // SDKs find the harness's endpoint inside the sandbox, with a placeholder for a key (the same in every run).
    const sdk = ["OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"];
    const allowed = ["NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE", "PWD", ...sdk];
    expect(Object.keys(seen.env).filter((k) => !allowed.includes(k))).toEqual([]);
    expect(seen.env.PWD).toBe("/tmp");
    expect([seen.env.OPENAI_API_KEY, seen.env.ANTHROPIC_API_KEY]).toEqual(Array(2).fill("harness-placeholder-key"));
    expect(seen.env.OPENAI_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    // Its own directory holds its own file only, as the harness compiled it.
    expect(seen.agentDir).toEqual(["agent.cjs"]);
  });
});

describe("without bubblewrap", () => {
  it("run, prepare and benchmark refuse with one line naming the package and the opt-out, writing nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "redteam-nobwrap-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Sealed as configured, whatever this machine has: the refusal is the subject.
    preparedExperiment(dir, { sandbox: "bwrap" });
    for (const command of ["run", "prepare", "benchmark"]) {
      const cli = spawnCli([command, "--dir", dir], { PATH: "/nonexistent", ANTHROPIC_API_KEY: "k" });
      const { code } = await cli.exited;
      expect(code).toBe(2);
      const lines = cli.stderr().trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("Debian package `bubblewrap`");
      expect(lines[0]).toContain("`sandbox: none`");
    }
    expect(existsSync(join(dir, "workspace", "journal.sqlite"))).toBe(false);
  });
});

describe("a run with sandbox: none", () => {
  it("is marked unsealed in status and in the report", async () => {
    const dir = mkdtempSync(join(tmpdir(), "redteam-unsealed-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    preparedExperiment(dir, { sandbox: "none" });
    const p = paths(dir);
    const journal = Journal.open(p.journal);
    journal.runs.createRun("run-u", configSchema.parse({ benchmark: "example", sandbox: "none" }));
    journal.close();
    const status = readStatus(dir);
    expect(status.sandbox).toBe("none");
    expect(formatStatus(status)).toMatch(/^sandbox {4}none: UNSEALED/m);
    const page = renderReport(
      await gatherReport({ paths: p, benchmark: "example", repo: openRepo(dir), now: new Date(0) }),
    );
    expect(page).toContain("UNSEALED: the agent under test ran without the sandbox");

    // The default is sealed, and says nothing.
    const sealedDir = mkdtempSync(join(tmpdir(), "redteam-sealed-"));
    cleanups.push(() => rmSync(sealedDir, { recursive: true, force: true }));
    preparedExperiment(sealedDir);
    const j2 = Journal.open(paths(sealedDir).journal);
    j2.runs.createRun("run-s", configSchema.parse({ benchmark: "example" }));
    j2.close();
    expect(readStatus(sealedDir).sandbox).toBe("bwrap");
    expect(formatStatus(readStatus(sealedDir))).not.toContain("UNSEALED");
  });
});
