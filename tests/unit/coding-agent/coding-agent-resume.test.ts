import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import type { Clock } from "../../../src/clock.ts";
import { createCodingAgent } from "../../../src/coding-agent/agent.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createAnthropic } from "../../../src/llm/client.ts";
import {
  BASE_AGENT,
  editorCall,
  type Fixture,
  makeFixture,
  memoryLog,
  toolCalls,
  turnOf,
} from "../../fixtures/coding-agent-workspace.ts";

const clock: Clock = { now: () => 0, monotonic: () => 0, sleep: async () => {} };
const FINISH = {
  hypothesis: "the agent ignores the refund window",
  change_summary: "Stated the refund window and added a policy note.",
  commit_message: "agent: refund window",
  pattern: "refund window ignored",
  needs_from_human: "none",
};
const EDIT_A = {
  old_str: "You are a helpful agent.",
  new_str: "You are a careful agent. Refunds only within 30 days.",
};
const EDIT_B = { old_str: "  return task.prompt;", new_str: "  // Policy first.\n  return task.prompt;" };

/** The scripted model, by turn, so a replayed conversation gets the same replies. */
const TURNS = [
  toolCalls(editorCall({ command: "view", path: "agent/agent.ts" })),
  toolCalls(editorCall({ command: "str_replace", path: "agent/agent.ts", ...EDIT_A })),
  // Edit B lands, then check_agent hangs in the child: the kill leaves a half-made edit behind.
  toolCalls(editorCall({ command: "str_replace", path: "agent/agent.ts", ...EDIT_B }), {
    name: "check_agent",
    input: {},
  }),
  toolCalls({ name: "finish", input: FINISH }),
];

let server: TestLlmServer | undefined;
let fx: Fixture | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  child = undefined;
  await server?.close();
  server = undefined;
  fx?.cleanup();
  fx = undefined;
});

function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  return new Promise((resolve) => p.once("exit", (code, signal) => resolve({ code, signal })));
}

describe("resume after SIGKILL mid-edit", () => {
  it("replays journaled replies without paying again and ends with each edit applied once", async () => {
    fx = makeFixture();
    server = await startTestLlmServer({ responder: (req) => TURNS[turnOf(req.body)]! });
    const hangFile = join(fx.dir, "hang");
    let output = "";
    child = spawn(process.execPath, ["--import", "tsx", "tests/fixtures/coding-agent-child.ts"], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        CA_LLM_URL: server.url,
        CA_ROOT: fx.root,
        CA_JOURNAL: fx.journalPath,
        CA_HANG_FILE: hangFile,
        CA_RUN_ID: "r1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const done = exited(child);
    // Wait for the child to reach the hanging check_agent (or die trying, which fails below).
    while (!existsSync(hangFile) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(hangFile), output).toBe(true);
    child.kill("SIGKILL");
    expect((await done).signal).toBe("SIGKILL");

    // The child was killed with three replies paid and journaled, and a half-made edit on disk.
    expect(server.requests).toHaveLength(3);
    const agentFile = join(fx.root, "agent/agent.ts");
    const bothEdits = BASE_AGENT.replace(EDIT_A.old_str, EDIT_A.new_str).replace(EDIT_B.old_str, EDIT_B.new_str);
    expect(readFileSync(agentFile, "utf8")).toBe(bothEdits);

    const journal = Journal.open(fx.journalPath);
    try {
      expect(journal.ledger.llmCalls("r1")).toHaveLength(3);
      const checked: string[] = [];
      const agent = createCodingAgent({
        root: fx.root,
        journal,
        log: memoryLog(),
        client: createAnthropic({ baseURL: server.url, maxRetries: 0 }),
        clock,
        model: "claude-sonnet-4-6",
        checkAgent: async (file) => {
          checked.push(file);
          return { ok: true };
        },
        baseContent: () => BASE_AGENT,
        limits: { maxTurns: 10, maxTokens: 512, taskRunBudget: 2, budgetUsd: null, outageMs: 1_000 },
      });
      const edit = await agent.edit(
        { runId: "r1", iteration: 3, trainScore: 0.4167, analysis: null },
        new AbortController().signal,
      );

      // One HTTP request per distinct turn: the three journaled turns were replayed, not re-sent.
      expect(server.requests).toHaveLength(TURNS.length);
      expect(new Set(server.requests.map((r) => r.raw)).size).toBe(TURNS.length);
      const calls = journal.ledger.llmCalls("r1");
      expect(calls).toHaveLength(TURNS.length);
      expect(new Set(calls.map((c) => c.promptHash)).size).toBe(TURNS.length);
      expect(journal.ledger.spend("r1").calls).toBe(TURNS.length);
      // Base restored, then each scripted edit applied exactly once.
      expect(readFileSync(agentFile, "utf8")).toBe(bothEdits);
      expect(checked).toEqual([agentFile]);
      expect(edit).toEqual({
        changed: true,
        hypothesis: FINISH.hypothesis,
        changeSummary: FINISH.change_summary,
        commitMessage: FINISH.commit_message,
        pattern: FINISH.pattern,
        needsFromHuman: FINISH.needs_from_human,
      });

      // A second re-run of the finished step pays nothing at all.
      const again = await agent.edit(
        { runId: "r1", iteration: 3, trainScore: 0.4167, analysis: null },
        new AbortController().signal,
      );
      expect(again).toEqual(edit);
      expect(server.requests).toHaveLength(TURNS.length);
      expect(readFileSync(agentFile, "utf8")).toBe(bothEdits);
    } finally {
      journal.close();
    }
  });
});
