/**
 * A paid call is journaled when it is paid. Before, the agent's calls reached the ledger only with their
 * task's outcome: after three SIGINTs the endpoint had served 358 replies and the journal counted 307, and a
 * SIGKILLed worker's calls never arrived. Here the real daemon (SIGINT three times, then SIGKILL) and a
 * worker (SIGKILL) are killed mid-batch, the runs are finished, and the journal's calls are compared with
 * what the test endpoint served, to the call.
 *
 * Every kill lands when no reply is on its way: the endpoint holds its replies, and the test waits until every
 * reply it wrote is recorded (in the ledger, or reported to Redis by a worker). So "to the call" is exact, not
 * lucky: a reply written to a process killed before it read it is a race no journal can win.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { demoConfig } from "../../../dev/demo/main.ts";
import { simulatedAgentModel } from "../../../dev/demo/simulated-agent-model.ts";
import { isCodingAgentRequest, simulatedCodingModel } from "../../../dev/demo/simulated-coding-model.ts";
import {
  type RecordedRequest,
  type ScriptStep,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../../../dev/llm-server/llm-server.ts";
import { connect } from "../../../src/distributed/queue.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { type Experiment, makeExperiment } from "../../helpers/benchmark-fixtures.ts";
import { CONFIG_YAML, removeDir, spawnWorker, type WorkerProcess, workerDirFor } from "../../helpers/distributed.ts";
import { REPO_ROOT, readJournal } from "../../helpers/experiment.ts";
import { until } from "../../helpers/processes.ts";
import { type RedisServer, startRedis } from "../../helpers/redis.ts";
import { haveTool } from "../../helpers/tools.ts";

const CLI = join(REPO_ROOT, "bin", "auto-harness.js");
const DAEMON = fileURLToPath(new URL("../../fixtures/distributed-daemon.ts", import.meta.url));

/** Replies held while the test lines up a kill, then let go. */
class Gate {
  private open = true;
  private waiting: (() => void)[] = [];

  async pass(): Promise<void> {
    while (!this.open) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  hold(): void {
    this.open = false;
  }

  release(): void {
    this.open = true;
    for (const w of this.waiting.splice(0)) w();
  }
}

/** A test endpoint whose replies (after `delayMs`) wait at the gate. */
async function gatedServer(gate: Gate, delayMs: number, reply: (req: RecordedRequest, i: number) => ScriptStep) {
  return startTestLlmServer({
    responder: async (req, i) => {
      await new Promise((r) => setTimeout(r, delayMs));
      await gate.pass();
      return reply(req, i);
    },
  });
}

/** How many calls the journal holds (every run, the baseline's included). */
const ledgerCalls = (journalFile: string): number => readJournal(journalFile, (j) => j.ledger.callCount(), 0);

/**
 * Holds the replies once a task is caught midway: it has paid for some of its calls and waits for the next, so
 * its calls so far must already be recorded. (Concurrent tasks' calls run in step when their replies do: the
 * gate is let go and held again until one is caught.)
 */
async function catchMidway(gate: Gate, server: TestLlmServer): Promise<void> {
  const midway = () =>
    server.requests.filter(
      (r) => !isCodingAgentRequest(r) && (r.body?.messages?.length ?? 0) > 1 && !server.served.includes(r),
    ).length;
  gate.hold();
  for (let tries = 0; midway() === 0; tries++) {
    if (tries > 200) throw new Error("no task was ever caught midway");
    gate.release();
    await new Promise((r) => setTimeout(r, 20 + (tries % 5) * 17));
    gate.hold();
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Holds the replies, then waits until every reply written is recorded, and stays so: a reply let through just
 * before the hold has finished by then, and been recorded too.
 */
async function quiet(gate: Gate, server: TestLlmServer, recorded: () => number | Promise<number>): Promise<void> {
  gate.hold();
  for (let served = -1; served !== server.served.length; ) {
    served = server.served.length;
    // Seconds, not a task's timeout: a call recorded only with its task's outcome would wait for the task to end.
    await until("every reply written to be recorded", async () => (await recorded()) === server.served.length, 15_000);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("every paid call is journaled, whatever stops the daemon", () => {
  it("the daemon stopped by three SIGINTs and a SIGKILL mid-benchmark: the journal counts what was served, to the call", async () => {
    const gate = new Gate();
    const server = await gatedServer(gate, 30, (req, i) =>
      isCodingAgentRequest(req) ? simulatedCodingModel(req, i) : simulatedAgentModel(req, i),
    );
    cleanups.push(() => server.close());
    const dir = mkdtempSync(join(tmpdir(), "paid-calls-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    execFileSync("git", ["init", "-q"], { cwd: dir });
    writeFileSync(
      join(dir, "experiment_config.yaml"),
      demoConfig(1)
        .replace("max_concurrency: 8", "max_concurrency: 4")
        .replace("per_task_timeout: 30", "per_task_timeout: 300"),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, ANTHROPIC_BASE_URL: server.url, LOG_LEVEL: "warn" };
    delete env.ANTHROPIC_API_KEY;
    const cli = (...args: string[]) =>
      spawn(process.execPath, [CLI, ...args, "--dir", dir], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });
    const journalFile = paths(dir).journal;

    expect(await exitOf(cli("prepare"))).toBe(0);
    expect(ledgerCalls(journalFile)).toBe(server.served.length);

    const daemon = cli("run");
    const agentCalls = () => server.served.filter((r) => !isCodingAgentRequest(r)).length;
    const started = agentCalls();
    // Mid-benchmark: the first train tasks of the run are in flight.
    await until("the agent's first calls in the run", () => agentCalls() >= started + 12);
    await catchMidway(gate, server);
    await quiet(gate, server, () => ledgerCalls(journalFile));
    for (const _ of [1, 2, 3]) {
      daemon.kill("SIGINT");
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100));
    daemon.kill("SIGKILL");
    await exitOf(daemon);
    gate.release();
    expect(ledgerCalls(journalFile)).toBe(server.served.length);

    // Resumed, the run finishes; the tasks cut short run again, and their new calls are counted too.
    const resumed = cli("resume");
    let err = "";
    resumed.stderr?.on("data", (d) => {
      err += d;
    });
    expect(await exitOf(resumed), err.slice(-2000)).toBe(0);
    expect(agentCalls()).toBeGreaterThan(started + 12);
    expect(ledgerCalls(journalFile)).toBe(server.served.length);
  }, 600_000);

  it.skipIf(!haveTool("redis-server", "redis-server"))(
    "a worker SIGKILLed and the daemon SIGKILLed mid-batch on BullMQ: the journal counts what was served, to the call",
    async () => {
      const gate = new Gate();
      const server = await gatedServer(gate, 30, (req) => textReply(`answer:${req.body?.messages?.[0]?.content}`));
      cleanups.push(() => server.close());
      const redis: RedisServer = await startRedis({ aof: true });
      cleanups.push(() => redis.cleanup());
      const ids = Array.from({ length: 16 }, (_, i) => `t${i}`);
      // Three calls a task: a task cut short has paid for some of them.
      const exp: Experiment = makeExperiment({
        tasks: ids.map((id) => ({ id, input: { prompt: id }, expected: `answer:${id}` })),
        agent: THREE_CALLS,
        split: { train: ids, test: [] },
        baseURL: server.url,
      });
      cleanups.push(() => exp.cleanup());
      writeFileSync(join(exp.root, "experiment_config.yaml"), CONFIG_YAML);
      const env = { ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key-local" };
      const workers: WorkerProcess[] = [];
      const startWorker = async () => {
        const dir = workerDirFor(exp.root);
        cleanups.push(() => removeDir(dir));
        const w = spawnWorker(dir, redis.url, env, { concurrency: 2 });
        cleanups.push(() => w.kill());
        workers.push(w);
        await w.waitFor(/worker started/);
        return w;
      };
      const [doomed] = [await startWorker(), await startWorker()];
      const journalFile = paths(exp.root).journal;
      const calls = connect(redis.url, "test-calls");
      cleanups.push(async () => {
        await calls.quit();
      });
      /** Calls recorded somewhere that survives a kill: journaled, or reported to Redis and not yet collected. */
      const recorded = async () => ledgerCalls(journalFile) + (await calls.llen("auto-harness:calls:run-q"));
      const startDaemon = () => {
        const child = spawn(process.execPath, ["--import", "tsx", DAEMON, exp.root, redis.url, "run-q", "train"], {
          cwd: REPO_ROOT,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        });
        cleanups.push(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        });
        return child;
      };

      const first = startDaemon();
      await until("calls on both workers", () => server.served.length >= 8);
      await catchMidway(gate, server);
      await quiet(gate, server, recorded);
      doomed!.kill("SIGKILL");
      await doomed!.exited;
      gate.release();
      await until("more calls", () => server.served.length >= 24);
      await catchMidway(gate, server);
      await quiet(gate, server, recorded);
      first.kill("SIGKILL");
      await exitOf(first);
      gate.release();
      // The workers go on while no daemon listens; what they pay for is reported all the same.
      await until("calls with no daemon", () => server.served.length >= 30);

      const second = startDaemon();
      let out = "";
      second.stdout?.on("data", (d) => {
        out += d;
      });
      expect(await exitOf(second)).toBe(0);
      expect(out).toMatch(/DONE /);
      const journal = Journal.open(journalFile, { readonly: true });
      const ledger = journal.ledger.llmCalls("run-q");
      journal.close();
      expect(ledger).toHaveLength(server.served.length);
      expect(new Set(ledger.map((c) => c.callId)).size).toBe(ledger.length);
    },
    600_000,
  );
});

const THREE_CALLS = `import type Anthropic from "@anthropic-ai/sdk";
export default {
  async run(task: { input: { prompt: string } }, ctx: { client: Anthropic; model: string; signal: AbortSignal }) {
    const messages: Anthropic.Messages.MessageParam[] = [{ role: "user", content: task.input.prompt }];
    let text = "";
    for (let i = 0; i < 3; i++) {
      if (i > 0) messages.push({ role: "assistant", content: text }, { role: "user", content: "once more" });
      const r = await ctx.client.messages.create({ model: ctx.model, max_tokens: 20, messages }, { signal: ctx.signal });
      text = r.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    }
    return text;
  },
};
`;
