/**
 * The agent under optimization. The harness calls `run(task, ctx)` once per task and scores what it
 * returns; `ctx.model` is the config's agent_model, `ctx.trace.note()` adds your own notes. It calls its
 * model with the `openai` package (`npm install` in this directory installs it): `new OpenAI()` finds the
 * harness's gateway by its base URL (OPENAI_BASE_URL), which holds the key and meters every call.
 */
import OpenAI from "openai";

interface Task {
  id: string;
  input: { question: string };
}

interface Context {
  model: string;
  signal: AbortSignal;
  trace: { note(message: string, data?: unknown): void };
}

const client = new OpenAI();

const SYSTEM_PROMPT = `You answer geography questions.
Answer in one short sentence.`;

export default {
  async run(task: Task, ctx: Context): Promise<string> {
    const response = await client.chat.completions.create(
      {
        model: ctx.model,
        max_completion_tokens: 256,
        messages: [
          { role: "system", content: SYSTEM_PROMPT },
          { role: "user", content: task.input.question },
        ],
      },
      { signal: ctx.signal },
    );
    return response.choices[0]?.message?.content ?? "";
  },
};
