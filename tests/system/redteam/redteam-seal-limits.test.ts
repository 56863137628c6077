/**
 * Red team: the limits the harness sets on every agent process. A hostile agent once started 2,005
 * processes, ballooned 4 GiB and filled 4 GiB of a 12 GiB tmpfs, and its recorded requests cost the harness
 * 1.4 GB for one task. Here each limit holds and is the agent's 0; the ones the harness enforces itself leave
 * a line in the train trace. Descriptors a launcher left open never reach the sandbox, a dead harness's agent
 * directories go at the next start, and no spare agent process starts once shutdown began.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { startTestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { dropSpareAgentProcesses } from "../../../src/benchmark/local/spares.ts";
import { runtimeDir } from "../../../src/benchmark/sealed/runtime-dir.ts";
import {
  agentNotes,
  type Experiment,
  makeExperiment,
  perTestExperiment,
  readTrace,
} from "../../helpers/benchmark-fixtures.ts";
import { spawnCli } from "../../helpers/experiment.ts";
import { descendants, until } from "../../helpers/processes.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const t = perTestExperiment();

const LIMITS = { processes: 64, memory_mb: 256, tmp_mb: 8, request_mb_per_task: 1 };
/** A marker in the hostile agent's sleeping children, to find any left behind. */
const MARKER = "3097";

const TS_AGENT = `import type Anthropic from "@anthropic-ai/sdk";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
export default {
  async run(task: { input: { mode: string } }, ctx: { client: Anthropic; model: string; trace: { note(m: string): void } }) {
    const mode = task.input.mode;
    if (mode === "fork") {
      const kids = [];
      for (let i = 0; i < 2005; i++) {
        const child = spawn("/bin/sleep", ["${MARKER}"], { stdio: "ignore" });
        child.on("error", () => {});
        if (!child.pid) break;
        kids.push(child);
      }
      ctx.trace.note("forked " + kids.length);
      for (const k of kids) k.kill("SIGKILL");
    }
    if (mode === "balloon") {
      const held: Buffer[] = [];
      try {
        for (let i = 0; i < 256; i++) held.push(Buffer.alloc(16 * 1024 * 1024, 1));
      } catch {}
      ctx.trace.note("allocated " + held.length * 16);
    }
    if (mode === "tmpfs") {
      let mb = 0;
      try {
        for (; mb < 4096; mb++) writeFileSync("/tmp/fill-" + mb, Buffer.alloc(1024 * 1024, 1));
      } catch {}
      ctx.trace.note("wrote " + mb);
    }
    if (mode === "requests") {
      for (let i = 0; i < 3; i++) {
        await ctx.client.messages.create({ model: ctx.model, max_tokens: 5, messages: [{ role: "user", content: "x".repeat(600_000) }] });
        ctx.trace.note("request " + i + " answered");
      }
    }
    if (mode === "notes") for (let i = 0; i < 1001; i++) ctx.trace.note("note " + i);
    return mode === "honest" ? "honest answer" : "hostile";
  },
};
`;

const PY_AGENT = `import os, time

def run(task, ctx):
    mode = task["input"]["mode"]
    if mode == "fork":
        kids = []
        for _ in range(2005):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(${MARKER})
                os._exit(0)
            kids.append(pid)
        ctx.trace.note(f"forked {len(kids)}")
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    if mode == "balloon":
        held = []
        try:
            for _ in range(256):
                held.append(bytearray(16 * 1024 * 1024))
        except MemoryError:
            pass
        ctx.trace.note(f"allocated {len(held) * 16}")
    if mode == "tmpfs":
        mb = 0
        try:
            while mb < 4096:
                with open(f"/tmp/fill-{mb}", "wb") as f:
                    f.write(b"x" * 1024 * 1024)
                mb += 1
        except OSError:
            pass
        ctx.trace.note(f"wrote {mb}")
    return "honest answer" if mode == "honest" else "hostile"
`;

const count = (e: Experiment, id: string, what: string): number => {
  const line = agentNotes(e, id).find((l) => l.startsWith(`${what} `));
  return line === undefined ? Number.NaN : Number(line.slice(what.length + 1));
};

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("red team: limits of the agent process", () => {
  for (const language of ["ts", "py"] as const) {
    it(`a ${language === "ts" ? "TypeScript" : "Python"} agent's fork bomb, balloon and full /tmp hit their limits and score 0; the honest task still scores`, async () => {
      const server = await startTestLlmServer({ responder: () => textReply("ok") });
      t.server = server;
      const modes =
        language === "ts" ? ["fork", "balloon", "tmpfs", "requests", "notes"] : ["fork", "balloon", "tmpfs"];
      const ids = [...modes, "honest"];
      const exp = makeExperiment({
        tasks: ids.map((id) => ({ id, input: { mode: id }, expected: "honest answer" })),
        agent: "",
        baseURL: server.url,
        config: {
          max_concurrency: 1,
          sandbox_limits: LIMITS,
          ...(language === "py" ? { agent_file: "agent/agent.py" } : {}),
        },
      });
      t.exp = exp;
      const agentFile = join(exp.root, "agent", `agent.${language}`);
      writeFileSync(agentFile, language === "ts" ? TS_AGENT : PY_AGENT);
      // Each in a process of its own: what one task leaves of a process (a heap grown to the limit) is not the next one's.
      const runner = exp.runner({ warmSpare: false });
      for (const id of ids) {
        const summary = await runner.run({ split: "train", taskIds: [id], runId: null, agentFile, writeTraces: true });
        expect(summary.results).toEqual({ [id]: id === "honest" ? 1 : 0 });
        expect(summary.infraErrors).toBe(0);
      }
      // Each limit held, well short of what the agent tried.
      expect(count(exp, "fork", "forked")).toBeGreaterThan(0);
      expect(count(exp, "fork", "forked")).toBeLessThan(LIMITS.processes);
      expect(count(exp, "balloon", "allocated")).toBeLessThan(LIMITS.memory_mb);
      expect(count(exp, "tmpfs", "wrote")).toBeLessThanOrEqual(LIMITS.tmp_mb);
      if (language === "ts") {
        // The limits the harness enforces itself stop the task, with a line in its train trace.
        const requests = readTrace(exp, "requests");
        expect(agentNotes(exp, "requests")).toEqual(["request 0 answered"]);
        expect(requests.events.filter((e) => e.kind === "limit").map((e) => e.limit)).toEqual(["request_mb_per_task"]);
        expect(requests.error).toMatch(/limit: the task's model requests passed 1 MiB/);
        expect(server.requests).toHaveLength(1);
        const notes = readTrace(exp, "notes");
        expect(notes.events.filter((e) => e.kind === "limit").map((e) => e.limit)).toEqual(["notes per task"]);
      }
      // Nothing the bomb started outlives the batch.
      await new Promise((r) => setTimeout(r, 300));
      expect(descendants(MARKER)).toEqual([]);
    });
  }

  it("descriptors the launcher left open reach no sandbox; a dead harness's agent directories go at the next start", async () => {
    const dir = tempDir("ah-fds-");
    const secret = join(dir, "launcher-secret.txt");
    writeFileSync(secret, "the launcher's secret\n");
    // A harness that crashed: its pid is gone, its agent directory is still there.
    const dead = spawn("/bin/true");
    await new Promise((r) => dead.on("exit", r));
    const stale = join(runtimeDir(), `agent-${dead.pid}-stale`);
    mkdirSync(stale);
    writeFileSync(join(stale, "agent.cjs"), "left behind");
    const agentFile = join(dir, "agent.ts");
    writeFileSync(
      agentFile,
      `import { readdirSync, readFileSync, readlinkSync } from "node:fs";
export default {
  async run(_task: unknown, ctx: { trace: { note(m: string): void } }) {
    for (const fd of readdirSync("/proc/self/fd")) {
      let target = "?";
      try { target = readlinkSync("/proc/self/fd/" + fd); } catch {}
      ctx.trace.note("fd " + fd + " " + target);
    }
    for (const fd of [20, 100]) {
      let read = "";
      try { read = readFileSync("/proc/self/fd/" + fd, "utf8"); } catch (error) { read = (error as { code?: string }).code ?? "error"; }
      ctx.trace.note("fd " + fd + " holds " + JSON.stringify(read));
    }
    return "x";
  },
};
`,
    );
    const fd = openSync(secret, "r");
    // The launcher's descriptors, left open (not close-on-exec) at 20 and 100 in the harness it starts.
    const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"];
    while (stdio.length <= 100) stdio.push("ignore");
    stdio[20] = fd;
    stdio[100] = fd;
    try {
      const harness = spawnCli([agentFile], {}, join(ROOT, "tests", "fixtures", "leaky-launcher-harness.ts"), stdio);
      const { code } = await harness.exited;
      const err = harness.stderr();
      const out = harness.stdout();
      expect(err).toBe("");
      expect(code).toBe(0);
      const notes = JSON.parse(out) as string[];
      // Where the launcher's descriptors were, /dev/null; the secret file behind none of the agent's.
      expect(notes).toEqual(
        expect.arrayContaining(["fd 20 /dev/null", "fd 100 /dev/null", 'fd 20 holds ""', 'fd 100 holds ""']),
      );
      expect(notes.join("\n")).not.toContain(secret);
      expect(notes.join("\n")).not.toContain("the launcher's secret");
    } finally {
      closeSync(fd);
    }
    expect(existsSync(stale)).toBe(false);
  });

  it("starts no spare agent process once shutdown began (and keeps one after a batch that ended normally)", async () => {
    const server = await startTestLlmServer({ responder: () => textReply("ok") });
    t.server = server;
    const exp = makeExperiment({
      tasks: [
        { id: "slow", input: { mode: "slow" }, expected: "x" },
        { id: "quick", input: { mode: "quick" }, expected: "x" },
      ],
      agent: `export default { run: async (task: { input: { mode: string } }) => { if (task.input.mode === "slow") await new Promise((r) => setTimeout(r, 5000)); return "x"; } };\n`,
      baseURL: server.url,
    });
    t.exp = exp;
    dropSpareAgentProcesses();
    const runtime = "/harness/child.mjs";
    await exp.runner().run({ split: "train", taskIds: ["quick"], runId: null });
    await until("the spare to start", () => descendants(runtime).length > 0, 10_000);
    dropSpareAgentProcesses();
    await until("the spare to go", () => descendants(runtime).length === 0, 10_000);

    const shutdown = new AbortController();
    const run = exp
      .runner()
      .run({ split: "train", taskIds: ["slow"], runId: null, signal: shutdown.signal, reuse: false });
    setTimeout(() => shutdown.abort(), 1000);
    await expect(run).rejects.toMatchObject({ code: "ABORTED" });
    await until("the aborted task's process to go", () => descendants(runtime).length === 0, 10_000);
    expect(readdirSync(runtimeDir()).filter((d) => d.startsWith(`agent-${process.pid}-`))).toEqual([]);
  });
});
