/**
 * Red team: the harness decides what infrastructure is. A request the agent malformed once made the
 * harness's own fetch throw and counted as the endpoint's failure; an answer that crashed the scorer counted
 * as infrastructure too. Either paused the run blaming the endpoint, on every resume, and the candidate was
 * never rejected. Here each is the agent's 0; only a scorer that throws on the incumbent's answer as well
 * stops the run, naming the task. And an endpoint that echoes the key hands the agent no key to smuggle out.
 */
import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { startTestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { HarnessError } from "../../../src/errors.ts";
import { makeExperiment, perTestExperiment, readTrace } from "../../helpers/benchmark-fixtures.ts";
import { haveTool } from "../../helpers/tools.ts";

const t = perTestExperiment();

/** Requests only a hostile agent sends: a CR/LF header value, a body that is not JSON, another path. */
const MALFORMED = [
  { method: "POST", path: "/v1/messages", headers: { "anthropic-beta": "x\r\nx-api-key: stolen" }, body: "{}" },
  { method: "POST", path: "/v1/messages", headers: {}, body: "{not json" },
  { method: "GET", path: "/v1/models", headers: {}, body: null },
];

// The agent writes its own `llm` frames on fd 3 (its SDK would refuse these requests), guessing its job id.
const TS_MALFORMED = `import { writeSync } from "node:fs";
export default {
  async run() {
    ${JSON.stringify(MALFORMED)}.forEach((request, i) => {
      const body = Buffer.from(JSON.stringify({ type: "llm", jobId: "j1", callId: "evil" + i, ...request }));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      writeSync(3, Buffer.concat([head, body]));
    });
    await new Promise((r) => setTimeout(r, 500));
    return "gave up";
  },
};
`;

const PY_MALFORMED = `import json, os, time

def run(task, ctx):
    for i, request in enumerate(json.loads(${JSON.stringify(JSON.stringify(MALFORMED))})):
        body = json.dumps({"type": "llm", "jobId": "j1", "callId": f"evil{i}", **request}).encode()
        os.write(3, len(body).to_bytes(4, "big") + body)
    time.sleep(0.5)
    return "gave up"
`;

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("red team: the agent cannot choose infrastructure errors", () => {
  for (const language of ["ts", "py"] as const) {
    it(`a ${language === "ts" ? "TypeScript" : "Python"} agent's malformed requests are refused to it and its task scores 0, not null`, async () => {
      const server = await startTestLlmServer({ responder: () => textReply("ok") });
      t.server = server;
      const exp = makeExperiment({
        tasks: [{ id: "m1", input: null, expected: "the answer" }],
        agent: "",
        baseURL: server.url,
        ...(language === "py" ? { config: { agent_file: "agent/agent.py" } } : {}),
      });
      t.exp = exp;
      const agentFile = `${exp.root}/agent/agent.${language}`;
      writeFileSync(agentFile, language === "ts" ? TS_MALFORMED : PY_MALFORMED);
      const summary = await exp
        .runner({ warmSpare: false })
        .run({ split: "train", taskIds: ["m1"], runId: null, agentFile, writeTraces: true });

      expect(summary.results).toEqual({ m1: 0 });
      expect(summary.infraErrors).toBe(0);
      // Refused in the harness, each with an error to the agent; nothing reached the endpoint.
      expect(server.requests).toHaveLength(0);
      const calls = readTrace(exp, "m1").events.filter((e) => e.kind === "llm") as unknown as { status: number }[];
      expect(calls.map((c) => c.status)).toEqual([400, 400, 404]);
    });
  }

  const SCORER = `export default (task: { id: string; expected: string }, result: { answer: unknown }) => {
  if (task.id === "broken") throw new Error("the scorer has a bug on this task");
  if (result.answer === "BOOM") throw new Error("the answer broke the scorer");
  return result.answer === task.expected ? 1 : 0;
};
`;
  const INCUMBENT = `export default { run: async (task: { id: string }) => "answer-" + task.id };\n`;
  const CANDIDATE = `export default { run: async (task: { id: string }) => (task.id === "hostile" ? "BOOM" : "answer-" + task.id) };\n`;

  it("an answer that breaks the scorer is the agent's 0; a scorer that breaks on the incumbent's answer too pauses the run naming the task", async () => {
    const server = await startTestLlmServer({ responder: () => textReply("ok") });
    t.server = server;
    const exp = makeExperiment({
      tasks: ["hostile", "fine", "broken"].map((id) => ({ id, input: null, expected: `answer-${id}` })),
      agent: CANDIDATE,
      scorer: SCORER,
      baseURL: server.url,
    });
    t.exp = exp;
    const runner = exp.runner({ warmSpare: false, incumbentAgent: async () => INCUMBENT });
    const summary = await runner.run({ split: "train", taskIds: ["hostile", "fine"], runId: null });
    expect(summary.results).toEqual({ hostile: 0, fine: 1 });
    expect(summary.infraErrors).toBe(0);
    expect(readTrace(exp, "hostile").error).toContain("the scorer threw on the agent's answer");

    const bug = await runner.run({ split: "test", taskIds: ["broken"], runId: null }).catch((e: unknown) => e);
    expect(bug).toBeInstanceOf(HarnessError);
    expect((bug as HarnessError).code).toBe("BENCHMARK_BUG");
    expect((bug as HarnessError).message).toMatch(/scorer throws on task broken for the incumbent agent's answer/);

    // The incumbent itself (the loop's train run, the baseline): a benchmark bug at once.
    exp.writeAgent(INCUMBENT);
    const own = await runner.run({ split: "train", taskIds: ["broken"], runId: null }).catch((e: unknown) => e);
    expect((own as HarnessError).code).toBe("BENCHMARK_BUG");
  });

  for (const language of ["ts", "py"] as const) {
    it(`an endpoint that echoes the key gives a ${language === "ts" ? "TypeScript" : "Python"} agent nothing of it to smuggle out`, async () => {
      const key = `pk_${"0123456789abcdef".repeat(2)}`;
      const server = await startTestLlmServer({
        responder: (req) => ({ fault: "400", message: `you sent ${req.headers["x-api-key"] ?? ""}` }),
      });
      t.server = server;
      const exp = makeExperiment({
        tasks: [{ id: "k1", input: null, expected: "never" }],
        agent: "",
        baseURL: server.url,
        ...(language === "py" ? { config: { agent_file: "agent/agent.py" } } : {}),
      });
      t.exp = exp;
      const agentFile = `${exp.root}/agent/agent.${language}`;
      writeFileSync(
        agentFile,
        language === "ts"
          ? `import type Anthropic from "@anthropic-ai/sdk";
export default {
  async run(_task: unknown, ctx: { client: Anthropic; model: string }) {
    try {
      await ctx.client.messages.create({ model: ctx.model, max_tokens: 5, messages: [{ role: "user", content: "hi" }] });
      return "no error";
    } catch (error) {
      return Buffer.from(String((error as Error).message)).toString("base64");
    }
  },
};
`
          : `import base64

def run(task, ctx):
    try:
        ctx.client.messages.create(model=ctx.model, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        return "no error"
    except Exception as e:
        return base64.b64encode(str(e).encode()).decode()
`,
      );
      await exp
        .runner({ warmSpare: false, agentApiKey: key })
        .run({ split: "train", taskIds: ["k1"], runId: null, agentFile, writeTraces: true });
      // The endpoint did echo it, and the agent saw the echo, without the key.
      expect(JSON.stringify(server.requests[0]?.headers)).toContain(key);
      const smuggled = Buffer.from(
        String(readTrace(exp, "k1").answer)
          .replace(/⟦\/?agent⟧/g, "")
          .trim(),
        "base64",
      ).toString();
      expect(smuggled).toContain("you sent [REDACTED]");
      expect(smuggled).not.toContain(key);
    });
  }
});
