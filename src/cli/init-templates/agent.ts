/**
 * The agent under optimization. The harness calls `run(task, ctx)` once per task and scores what it
 * returns. `ctx.client` is an Anthropic client (every call lands in the train trace), `ctx.model` the
 * config's agent_model, `ctx.trace.note()` adds your own notes. Only type imports are allowed here.
 */
import type Anthropic from "@anthropic-ai/sdk";

interface Task {
  id: string;
  input: { question: string };
}

interface Context {
  model: string;
  client: Anthropic;
  signal: AbortSignal;
  trace: { note(message: string, data?: unknown): void };
}

const SYSTEM_PROMPT = `You answer geography questions.
Answer in one short sentence.`;

export default {
  async run(task: Task, ctx: Context): Promise<string> {
    const response = await ctx.client.messages.create(
      {
        model: ctx.model,
        max_tokens: 256,
        system: SYSTEM_PROMPT,
        messages: [{ role: "user", content: task.input.question }],
      },
      { signal: ctx.signal },
    );
    return response.content
      .filter((b): b is Anthropic.Messages.TextBlock => b.type === "text")
      .map((b) => b.text)
      .join("\n");
  },
};
