import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type RecordedRequest,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../../../dev/llm-server/llm-server.ts";
import { agentHashOf } from "../../../src/benchmark/agent-hash.ts";
import { errorHandling, HarnessError } from "../../../src/errors.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { ECHO_AGENT, type Experiment, makeExperiment } from "../../helpers/benchmark-fixtures.ts";

const promptOf = (req: RecordedRequest): string => String(req.body?.messages?.[0]?.content ?? "");
const echo = (req: RecordedRequest) => textReply(`answer:${promptOf(req)}`);
const task = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  input: { prompt: id, ...extra },
  expected: `answer:${id}`,
});

let server: TestLlmServer | null = null;
let exp: Experiment | null = null;
afterEach(async () => {
  exp?.cleanup();
  exp = null;
  await server?.close();
  server = null;
});

describe("task runner", () => {
  it("never has more than max_concurrency tasks at the LLM server at once", async () => {
    let inFlight = 0;
    let peak = 0;
    server = await startTestLlmServer({
      responder: async (req) => {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 150));
        inFlight -= 1;
        return echo(req);
      },
    });
    const ids = Array.from({ length: 10 }, (_, i) => `t${i}`);
    exp = makeExperiment({
      tasks: ids.map((id) => task(id)),
      agent: ECHO_AGENT,
      config: { max_concurrency: 3 },
      baseURL: server.url,
    });
    exp.journal.runs.createRun("run-c", {});
    const summary = await exp.runner().run({ split: "train", taskIds: ids, runId: "run-c" });
    expect(summary.passed).toBe(10);
    expect(peak).toBe(3);
    expect(server.requests).toHaveLength(10);
    // Every call the agent made is in the ledger as agent spend, without a stored response.
    const calls = exp.journal.ledger.llmCalls("run-c");
    expect(calls).toHaveLength(10);
    expect(calls.every((c) => c.role === "agent" && c.response === null && c.inputTokens > 0)).toBe(true);
    expect(exp.journal.ledger.spend("run-c").byRole.agent).toBeGreaterThan(0);
  });

  it("forwards no call whose worst case the run's budget cannot hold, and scores no task for it", async () => {
    server = await startTestLlmServer({ responder: echo });
    const ids = ["b1", "b2", "b3", "b4", "b5"];
    exp = makeExperiment({
      tasks: ids.map((id) => task(id)),
      agent: ECHO_AGENT,
      config: { max_concurrency: 1, budget_usd: 1e-9 },
      baseURL: server.url,
    });
    exp.journal.runs.createRun("run-b", {});
    // The first task starts (nothing spent yet), but its call's reservation does not fit: nothing is forwarded,
    // nothing is paid, no other task starts, and the task that asked has no result (it runs again on resume).
    const error = await exp
      .runner()
      .run({ split: "train", taskIds: ids, runId: "run-b" })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "BUDGET_EXHAUSTED" });
    expect((error as Error).message).toMatch(/budget_usd/);
    expect(server.requests).toHaveLength(0);
    expect(exp.journal.ledger.llmCalls("run-b")).toHaveLength(0);
    const hash = agentHashOf(readFileSync(paths(exp.root).agentFile));
    expect(exp.journal.taskResults.taskResults(hash, "train")).toEqual([]);
  });

  it("kills a busy-looping agent at the timeout, scores it 0 and finishes the others", async () => {
    server = await startTestLlmServer({ responder: echo });
    const tasks = [task("a"), task("loop", { mode: "loop" }), task("b"), task("hang", { mode: "hang" }), task("c")];
    exp = makeExperiment({
      tasks,
      agent: ECHO_AGENT,
      config: { max_concurrency: 3, per_task_timeout: 2 },
      baseURL: server.url,
    });
    const summary = await exp
      .runner({ heartbeatMs: 100 })
      .run({ split: "train", taskIds: tasks.map((t) => t.id), runId: null });
    expect(summary.results).toEqual({ a: 1, loop: 0, b: 1, hang: 0, c: 1 });
    const latest = paths(exp.root).tracesLatest;
    for (const id of ["loop", "hang"]) {
      const result = JSON.parse(readFileSync(join(latest, id, "result.json"), "utf8"));
      expect(result.reward).toBe(0);
      expect(result.error).toContain("timeout");
    }
  });

  it("scores a throwing agent 0 with the error in its trace", async () => {
    server = await startTestLlmServer({ responder: echo });
    const tasks = [task("ok"), task("boom", { mode: "throw" })];
    exp = makeExperiment({ tasks, agent: ECHO_AGENT, baseURL: server.url });
    const summary = await exp.runner().run({ split: "train", taskIds: ["ok", "boom"], runId: null });
    expect(summary.results).toEqual({ ok: 1, boom: 0 });
    expect(summary.infraErrors).toBe(0);
    const trace = JSON.parse(readFileSync(join(paths(exp.root).tracesLatest, "boom", "trace.json"), "utf8"));
    expect(trace.error).toContain("agent exploded on purpose");
    // The harness compiles the agent; its stack still names the line of the agent's own source.
    expect(trace.error).toMatch(/agent\.ts:7:\d+/);
    expect(trace.error).not.toContain("agent.cjs");
    const okTrace = JSON.parse(readFileSync(join(paths(exp.root).tracesLatest, "ok", "trace.json"), "utf8"));
    expect(okTrace.events.map((e: { kind: string }) => e.kind)).toEqual(["llm", "note"]);
    expect(okTrace.events[0].response.content[0].text).toBe("answer:ok");
    expect(existsSync(join(paths(exp.root).tracesBaseline, "ok", "trace.json"))).toBe(true);
    expect(exp.journal.taskResults.getTaskResult(summary.agentHash, "train", "boom")?.error).toContain(
      "agent exploded",
    );
  });

  it("fails the whole run once with AGENT_LOAD_FAILED when the agent has a syntax error", async () => {
    server = await startTestLlmServer({ responder: echo });
    const ids = ["a", "b", "c"];
    exp = makeExperiment({
      tasks: ids.map((id) => task(id)),
      agent: "export default { run(task) { return (; } };\n",
      baseURL: server.url,
    });
    for (const typeCheck of [false, true]) {
      const error = await exp
        .runner({ typeCheck })
        .run({ split: "train", taskIds: ids, runId: null })
        .catch((e) => e);
      expect(error).toBeInstanceOf(HarnessError);
      expect(error.code).toBe("AGENT_LOAD_FAILED");
      expect(error.message).toMatch(/agent\.ts/);
    }
    expect(server.requests).toHaveLength(0);
    expect(exp.journal.taskResults.taskResults(agentHashOf(readFileSync(paths(exp.root).agentFile)), "train")).toEqual(
      [],
    );
  });

  it("retries an infrastructure error once, then gives up with null and fails past the threshold", async () => {
    const seen = new Map<string, number>();
    server = await startTestLlmServer({
      responder: (req) => {
        const prompt = promptOf(req);
        const n = (seen.get(prompt) ?? 0) + 1;
        seen.set(prompt, n);
        if (prompt.startsWith("flaky") && n === 1) return { fault: "500" };
        if (prompt.startsWith("dead")) return { fault: "529" };
        return echo(req);
      },
    });
    const tasks = [task("flaky1"), task("flaky2"), task("dead1"), task("fine")];
    exp = makeExperiment({ tasks, agent: ECHO_AGENT, baseURL: server.url });
    const summary = await exp.runner().run({ split: "train", taskIds: tasks.map((t) => t.id), runId: null });
    expect(summary.results).toEqual({ flaky1: 1, flaky2: 1, dead1: null, fine: 1 });
    expect(summary.infraErrors).toBe(1);
    expect(seen.get("flaky1")).toBe(2);
    expect(seen.get("dead1")).toBe(2);
    expect(summary.score).toBe(1);

    // Exactly half dead is at the limit, not past it.
    const atLimit = await exp.runner({ reuse: false }).run({ split: "train", taskIds: ["dead1", "fine"], runId: null });
    expect(atLimit.infraErrors).toBe(1);
    // Two of three dead: past the limit → an infrastructure failure, not charged to the agent.
    exp.cleanup();
    exp = makeExperiment({
      tasks: [task("dead1"), task("dead2"), task("fine")],
      agent: ECHO_AGENT,
      baseURL: server.url,
    });
    const failure = await exp
      .runner()
      .run({ split: "train", taskIds: ["dead1", "dead2", "fine"], runId: null })
      .catch((e) => e);
    expect(failure).toBeInstanceOf(HarnessError);
    expect(failure.code).toBe("INFRA_FAILURE");
    expect(errorHandling(failure)).toBe("resumable");
  });

  it("re-runs only the tasks an interrupted run did not finish", async () => {
    server = await startTestLlmServer({ responder: echo });
    const ids = ["r1", "r2", "r3", "r4", "r5"];
    exp = makeExperiment({ tasks: ids.map((id) => task(id)), agent: ECHO_AGENT, baseURL: server.url });
    const hash = agentHashOf(readFileSync(paths(exp.root).agentFile));
    // What a crashed run left behind: two finished tasks and one infrastructure error.
    exp.journal.taskResults.putTaskResult({
      agentHash: hash,
      split: "train",
      taskId: "r1",
      trial: 0,
      reward: 1,
      durationMs: 5,
      error: null,
      runId: null,
    });
    exp.journal.taskResults.putTaskResult({
      agentHash: hash,
      split: "train",
      taskId: "r2",
      trial: 0,
      reward: 0,
      durationMs: 5,
      error: "x",
      runId: null,
    });
    exp.journal.taskResults.putTaskResult({
      agentHash: hash,
      split: "train",
      taskId: "r3",
      trial: 0,
      reward: null,
      durationMs: 5,
      error: "x",
      runId: null,
    });
    const summary = await exp.runner().run({ split: "train", taskIds: ids, runId: null });
    expect(summary.reused).toBe(2);
    expect(summary.results).toEqual({ r1: 1, r2: 0, r3: 1, r4: 1, r5: 1 });
    expect(server.requests.map(promptOf).sort()).toEqual(["r3", "r4", "r5"]);
    expect(exp.journal.taskResults.taskResults(hash, "train")).toHaveLength(5);

    // Another agent version shares nothing with the cache.
    exp.writeAgent(`${ECHO_AGENT}\n// v2\n`);
    const again = await exp.runner().run({ split: "train", taskIds: ids, runId: null });
    expect(again.reused).toBe(0);
    expect(server.requests).toHaveLength(8);
  });
});

function scan(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) scan(file, out);
    else out.push(file);
  }
  return out;
}

describe("the split a run takes is the journal's pin", () => {
  it("a split.json rewritten to call a test task train runs the pinned train tasks only, and traces none other", async () => {
    server = await startTestLlmServer({ responder: echo });
    exp = makeExperiment({
      tasks: ["tr-1", "tr-2", "te-1"].map((id) => task(id)),
      agent: ECHO_AGENT,
      baseURL: server.url,
      split: { train: ["tr-1", "tr-2"], test: ["te-1"] },
    });
    // What an unsealed agent under test, or a stray edit, could do to the view.
    const file = paths(exp.root).split;
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), train: ["te-1"], test: [] }));
    const train = await exp.runner().run({ split: "train", runId: null, writeTraces: true });
    expect(Object.keys(train.results).sort()).toEqual(["tr-1", "tr-2"]);
    expect(server.requests.map(promptOf).sort()).toEqual(["tr-1", "tr-2"]);
    expect(readdirSync(paths(exp.root).tracesLatest).sort()).toEqual(["tr-1", "tr-2"]);
    const test = await exp.runner().run({ split: "test", runId: null });
    expect(Object.keys(test.results)).toEqual(["te-1"]);
  });
});

describe("test-split secrecy", () => {
  it("leaves no trace of test tasks' inputs or outputs in the workspace, the journal or the logs", async () => {
    server = await startTestLlmServer({ responder: (req) => textReply(`reply-${promptOf(req)}-OUTMARK`) });
    const secret = ["SECRET-IN-7f3a", "SECRET-IN-91c2", "SECRET-IN-d44e"];
    const trainMarks = ["TRAINMARK-a1", "TRAINMARK-b2"];
    // The agent prints, notes and throws with the task's content: none of it may escape for test.
    const agent = `import type Anthropic from "@anthropic-ai/sdk";
export default {
  async run(task: { id: string; input: { prompt: string; fail?: boolean } }, ctx: { client: Anthropic; model: string; trace: { note(m: string): void } }) {
    console.log("stdout " + task.input.prompt);
    console.error("stderr " + task.input.prompt);
    ctx.trace.note("note " + task.input.prompt);
    const r = await ctx.client.messages.create({ model: ctx.model, max_tokens: 50, messages: [{ role: "user", content: task.input.prompt }] });
    const text = r.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    if (task.input.fail) throw new Error("failed on " + text);
    return text;
  },
};
`;
    const tasks = [
      ...secret.map((s, i) => ({
        id: `test-${i}`,
        input: { prompt: s, fail: i === 2 },
        expected: `reply-${s}-OUTMARK`,
      })),
      ...trainMarks.map((s, i) => ({ id: `train-${i}`, input: { prompt: s }, expected: `reply-${s}-OUTMARK` })),
    ];
    exp = makeExperiment({
      tasks,
      agent,
      baseURL: server.url,
      split: { train: ["train-0", "train-1"], test: ["test-0", "test-1", "test-2"] },
    });
    const train = await exp.runner().run({ split: "train", runId: "run-1" });
    const test = await exp.runner().run({ split: "test", runId: "run-1" });
    expect(train.passed).toBe(2);
    expect(test.results).toEqual({ "test-0": 1, "test-1": 1, "test-2": 0 });
    expect(server.requests).toHaveLength(5);
    // Scanned while the journal is open, so its -wal file is read too.
    const files = scan(paths(exp.root).workspace);
    expect(files.some((f) => f.endsWith("journal.sqlite"))).toBe(true);
    expect(files.some((f) => f.endsWith("journal.sqlite-wal"))).toBe(true);
    const haystacks = [...files.map((f) => readFileSync(f).toString("latin1")), exp.logs.join("\n")];
    const everything = haystacks.join("\n");
    // The scan works: train content is there.
    expect(everything).toContain("TRAINMARK-a1");
    for (const mark of secret) {
      for (const h of haystacks) expect(h.includes(mark)).toBe(false);
    }
    // Logs carry counts only for test: not even the task ids.
    for (const id of ["test-0", "test-1", "test-2"]) expect(exp.logs.join("\n").includes(id)).toBe(false);
    expect(everything.includes("reply-SECRET")).toBe(false);
  });
});

describe("run requests", () => {
  it("runs another agent file under its own cache key, and each trial as its own journal row", async () => {
    server = await startTestLlmServer({ responder: echo });
    const ids = ["x1", "x2"];
    exp = makeExperiment({ tasks: ids.map((id) => task(id)), agent: ECHO_AGENT, baseURL: server.url });
    const other = join(exp.root, "incumbent.ts");
    writeFileSync(other, `export default { run: () => "wrong" };\n`);
    const incumbent = await exp.runner().run({ split: "train", taskIds: ids, runId: null, agentFile: other });
    expect(incumbent.agentHash).toBe(agentHashOf(readFileSync(other)));
    expect(incumbent.results).toEqual({ x1: 0, x2: 0 });
    // The workspace's traces belong to the workspace's agent.
    expect(existsSync(paths(exp.root).tracesLatest)).toBe(false);

    const twice = await exp.runner().run({ split: "train", taskIds: ids, runId: null, trials: 2 });
    expect(twice.results).toEqual({ x1: 1, x2: 1 });
    expect(exp.journal.taskResults.taskResults(twice.agentHash, "train").map((r) => `${r.taskId}#${r.trial}`)).toEqual([
      "x1#0",
      "x1#1",
      "x2#0",
      "x2#1",
    ]);
    expect(server.requests).toHaveLength(4);
    // Trial 1 alone is cached now; a third trial runs.
    const third = await exp.runner().run({ split: "train", taskIds: ids, runId: null, trial: 2 });
    expect(third.reused).toBe(0);
    expect(server.requests).toHaveLength(6);
  });
});
