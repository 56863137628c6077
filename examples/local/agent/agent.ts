// The agent under optimization. It sees `task = { id, input }` (the JSONL line's `input`, never the
// grading fields) and `ctx`: `ctx.model` (agent_model), `ctx.client` (an Anthropic client the harness
// meters and traces), `ctx.signal`, `ctx.trace.note()`. Type imports only: see src/benchmark/agent-contract.ts.
import type Anthropic from "@anthropic-ai/sdk";

interface Ctx {
  model: string;
  client: Anthropic;
  signal: AbortSignal;
  trace: { note(message: string, data?: unknown): void };
}

export default {
  async run(task: { id: string; input: string }, ctx: Ctx): Promise<string> {
    const reply = await ctx.client.messages.create(
      { model: ctx.model, max_tokens: 300, messages: [{ role: "user", content: task.input }] },
      { signal: ctx.signal },
    );
    return reply.content.map((block) => (block.type === "text" ? block.text : "")).join("");
  },
};
