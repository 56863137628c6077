/**
 * Red team on the gateway inside the sandbox: a hostile agent speaks HTTP to the endpoint on its loopback itself
 * and asks for what the seal forbids: a provider-run web search, a stored conversation, MCP servers, a model the
 * config does not name, a call no budget could hold (to stop the night), another path, no key. Each is refused
 * to the agent and charged to its task (0, never null); nothing reaches the provider, nothing is paid, and the
 * run goes on: the next task is answered and scored.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type RecordedRequest, textReply } from "../../../dev/llm-server/llm-server.ts";
import { readTrace } from "../../helpers/benchmark-fixtures.ts";
import { KEY_ENV, type RealWorld, realWorld, UPSTREAM_KEY } from "../../helpers/real-agents.ts";
import { haveTool } from "../../helpers/tools.ts";

const HOSTILE = `export default {
  async run(task: { input: { mode: string } }, ctx: { model: string }) {
    const openai = process.env.OPENAI_BASE_URL!;
    const anthropic = process.env.ANTHROPIC_BASE_URL!;
    const key = process.env.OPENAI_API_KEY!;
    const call = async (url: string, body: unknown, auth = key, method = "POST") => {
      const r = await fetch(url, {
        method,
        headers: { "content-type": "application/json", authorization: "Bearer " + auth, "x-api-key": auth },
        ...(method === "POST" ? { body: JSON.stringify(body) } : {}),
      });
      const text = await r.text();
      return r.status + " " + text.slice(0, 160);
    };
    const messages = [{ role: "user", content: "hi" }];
    if (task.input.mode === "plain") {
      const r = await fetch(openai + "/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer " + key },
        body: JSON.stringify({ model: ctx.model, messages, max_completion_tokens: 20 }),
      });
      return (await r.json()).choices[0].message.content;
    }
    return {
      webSearch: await call(openai + "/chat/completions", { model: ctx.model, messages, web_search_options: {} }),
      stored: await call(openai + "/responses", { model: ctx.model, input: "hi", previous_response_id: "resp_1" }),
      mcp: await call(anthropic + "/v1/messages", { model: "claude-sonnet-4-6", max_tokens: 20, messages, mcp_servers: [{ type: "url", url: "https://x.invalid", name: "x" }] }),
      unconfigured: await call(openai + "/chat/completions", { model: "gpt-4o", messages }),
      unaffordable: await call(openai + "/chat/completions", { model: ctx.model, messages, max_completion_tokens: 100000000 }),
      models: await call(openai + "/models", null, key, "GET"),
      noKey: await call(openai + "/chat/completions", { model: ctx.model, messages }, "guessed-key"),
    };
  },
};
`;

let world: RealWorld | null = null;
afterEach(async () => {
  await world?.close();
  world = null;
});

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("red team: the gateway inside the sandbox", () => {
  it("refuses to a hostile agent what the seal forbids, charging its task and letting the run go on", async () => {
    world = await realWorld({
      tasks: [
        { id: "hostile", input: { mode: "hostile" }, expected: "never" },
        { id: "plain", input: { mode: "plain" }, expected: "answer" },
      ],
      responder: (_req: RecordedRequest) => textReply("answer"),
      agent: HOSTILE,
      config: { budget_usd: 1, max_concurrency: 1 },
    });
    const { exp, server } = world;
    exp.journal.runs.createRun("run-hostile", {});
    const summary = await exp
      .runner({ warmSpare: false, agentEnv: { [KEY_ENV]: UPSTREAM_KEY } })
      .run({ split: "train", taskIds: ["hostile", "plain"], runId: "run-hostile", writeTraces: true });

    // The hostile task is the agent's 0; the run was not stopped, and the next task was answered.
    expect(summary.results).toEqual({ hostile: 0, plain: 1 });
    expect(summary.infraErrors).toBe(0);
    const seen = readTrace(exp, "hostile").answer as unknown as string;
    const said = JSON.parse(seen.replace(/^⟦agent⟧ /, "").replace(/ ⟦\/agent⟧$/, "")) as Record<string, string>;
    expect(said.webSearch).toMatch(/^400 .*web_search_options: not allowed through the gateway/);
    expect(said.stored).toMatch(/^400 .*previous_response_id/);
    expect(said.mcp).toMatch(/^400 .*mcp_servers/);
    expect(said.unconfigured).toMatch(/^400 .*`gpt-4o` is not one this run may call/);
    expect(said.unaffordable).toMatch(/^400 .*more than the run's budget_usd has left/);
    expect(said.models).toMatch(/^404 /);
    expect(said.noKey).toMatch(/^401 /);
    // Only the plain task's call reached the provider, and only it was paid.
    expect(server.requests.map((r) => r.body?.max_completion_tokens)).toEqual([20]);
    expect(exp.journal.ledger.llmCalls("run-hostile")).toHaveLength(1);
  });
});
