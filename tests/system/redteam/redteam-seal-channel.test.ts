/**
 * Red team: the channel between the harness and the agent process. The agent shares its process with the
 * runtime and can write anything on fd 3: with Node's IPC channel one non-JSON line threw in the harness
 * and killed the daemon at the same gate on every resume. Garbage, a frame that is not the protocol, a torn
 * frame, a flood and a frame announcing a gigabyte each end that task as the agent's failure (0, not an
 * infrastructure error); the other tasks of the batch score as they should, and the harness goes on. An
 * error thrown in the harness would fail this file (vitest reports uncaught errors), so these runs also
 * prove the harness's process survives them.
 */
import { writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { startTestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { makeExperiment, perTestExperiment, readTrace } from "../../helpers/benchmark-fixtures.ts";
import { haveTool } from "../../helpers/tools.ts";

const t = perTestExperiment();

/** What each hostile mode writes on fd 3, and the fault the harness names. */
const MODES: Record<string, string> = {
  "garbage-line": "frame too large",
  "not-json": "not JSON",
  "not-protocol": "not the protocol",
  torn: "not JSON",
  flood: "flood",
  huge: "frame too large",
};

const TS_AGENT = `import { writeSync } from "node:fs";
const frame = (text: string) => {
  const body = Buffer.from(text);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
};
// fd 3 is non-blocking: a large write comes back in pieces.
const put = (data: Buffer) => {
  for (let at = 0; at < data.length; ) {
    try {
      at += writeSync(3, data, at);
    } catch (error) {
      if ((error as { code?: string }).code !== "EAGAIN") throw error;
    }
  }
};
export default {
  async run(task: { input: { mode: string } }) {
    const mode = task.input.mode;
    if (mode === "garbage-line") put(Buffer.from("hello harness, this is not a frame\\n"));
    if (mode === "not-json") put(frame("{not json"));
    if (mode === "not-protocol") put(frame(JSON.stringify({ type: "usage", costUsd: -1000 })));
    if (mode === "torn") put(frame("x".repeat(100)).subarray(0, 14));
    if (mode === "flood") put(Buffer.concat(Array.from({ length: 60_000 }, () => frame('{"type":"hb"}'))));
    if (mode === "huge") {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(1024 * 1024 * 1024);
      put(head);
    }
    await new Promise((r) => setTimeout(r, 200));
    return "honest answer";
  },
};
`;

const PY_AGENT = `import json, os, time

def frame(text):
    body = text.encode()
    return len(body).to_bytes(4, "big") + body

def run(task, ctx):
    mode = task["input"]["mode"]
    if mode == "garbage-line":
        os.write(3, b"hello harness, this is not a frame\\n")
    elif mode == "not-json":
        os.write(3, frame("{not json"))
    elif mode == "not-protocol":
        os.write(3, frame(json.dumps({"type": "usage", "costUsd": -1000})))
    elif mode == "torn":
        os.write(3, frame("x" * 100)[:14])
    elif mode == "flood":
        data = frame('{"type":"hb"}') * 60000
        while data:
            data = data[os.write(3, data):]
    elif mode == "huge":
        os.write(3, (1024 * 1024 * 1024).to_bytes(4, "big"))
    time.sleep(0.2)
    return "honest answer"
`;

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("red team: a hostile agent on the channel", () => {
  for (const language of ["ts", "py"] as const) {
    it(`a ${language === "ts" ? "TypeScript" : "Python"} agent's garbage, torn frames, floods and huge frames are its own 0s; the harness goes on`, async () => {
      const server = await startTestLlmServer({ responder: () => textReply("ok") });
      t.server = server;
      const modes = Object.keys(MODES);
      const ids = ["honest-1", ...modes, "honest-2"];
      const exp = makeExperiment({
        tasks: ids.map((id) => ({
          id,
          input: { mode: id.startsWith("honest") ? "honest" : id },
          expected: "honest answer",
        })),
        agent: "",
        baseURL: server.url,
        config: { max_concurrency: 4, ...(language === "py" ? { agent_file: "agent/agent.py" } : {}) },
      });
      t.exp = exp;
      const agentFile = `${exp.root}/agent/agent.${language}`;
      writeFileSync(agentFile, language === "ts" ? TS_AGENT : PY_AGENT);
      const runner = exp.runner({ warmSpare: false });
      const summary = await runner.run({ split: "train", taskIds: ids, runId: null, agentFile, writeTraces: true });

      // What the operator sees: each hostile task charged to the agent, the honest ones scored, no infrastructure.
      expect(summary.results).toEqual(Object.fromEntries(ids.map((id) => [id, id.startsWith("honest") ? 1 : 0])));
      expect(summary.infraErrors).toBe(0);
      for (const [mode, fault] of Object.entries(MODES)) {
        expect(readTrace(exp, mode).error).toContain(`broke its channel to the harness (${fault})`);
      }
      // And the run goes on: the same runner runs the next batch.
      const again = await runner.run({ split: "train", taskIds: ["honest-1"], runId: null, agentFile, reuse: false });
      expect(again.results).toEqual({ "honest-1": 1 });
    });
  }
});
