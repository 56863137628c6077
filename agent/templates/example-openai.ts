/**
 * Customer-support agent for the example benchmark (Acme Shop), on OpenAI's Chat Completions.
 *
 * The harness calls `run(task, ctx)` once per task: `task.input.message` is the customer's message;
 * `ctx.model` is the model to use, `ctx.env.execute(tool, input)` runs a shop tool, `ctx.trace.note()` adds a
 * note to the trace. Return the final reply to the customer. The `openai` package comes from the experiment's
 * own node_modules; `new OpenAI()` finds the harness's gateway by its base URL (OPENAI_BASE_URL), which meters
 * every call and holds the key.
 */
import OpenAI from "openai";

interface Task {
  id: string;
  input: { message: string };
}

interface Context {
  model: string;
  signal: AbortSignal;
  trace: { note(message: string, data?: unknown): void };
  env: { execute(tool: string, input: Record<string, unknown>): Promise<unknown> };
}

const client = new OpenAI();

const SYSTEM_PROMPT = `You are a customer support agent for Acme Shop.
Help the customer with their request using the tools available to you.
When you are done, reply to the customer with a short final message.`;

const tool = (name: string, description: string, properties: Record<string, unknown>, required: string[]) => ({
  type: "function" as const,
  function: { name, description, parameters: { type: "object", properties, required } },
});

const TOOLS: OpenAI.Chat.Completions.ChatCompletionTool[] = [
  tool("find_customer", "Find a customer by email.", { email: { type: "string" } }, ["email"]),
  tool("get_order", "Get an order.", { order_id: { type: "string" } }, ["order_id"]),
  tool("list_orders", "List a customer's orders.", { customer_id: { type: "string" } }, ["customer_id"]),
  tool("cancel_order", "Cancel an order.", { order_id: { type: "string" } }, ["order_id"]),
  tool(
    "refund_order",
    "Refund an order.",
    { order_id: { type: "string" }, item_ids: { type: "array", items: { type: "string" } } },
    ["order_id"],
  ),
  tool(
    "change_address",
    "Change the shipping address of an order.",
    { order_id: { type: "string" }, address: { type: "string" } },
    ["order_id", "address"],
  ),
];

const MAX_TURNS = 6;

export default {
  async run(task: Task, ctx: Context): Promise<string> {
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "system", content: SYSTEM_PROMPT },
      { role: "user", content: task.input.message },
    ];
    for (let turn = 0; turn < MAX_TURNS; turn++) {
      const response = await client.chat.completions.create(
        { model: ctx.model, max_completion_tokens: 1024, tools: TOOLS, messages },
        { signal: ctx.signal },
      );
      const message = response.choices[0]?.message;
      if (!message) break;
      const calls = (message.tool_calls ?? []).filter((c) => c.type === "function");
      if (calls.length === 0) return message.content ?? "";
      messages.push({ role: "assistant", content: message.content, tool_calls: calls });
      for (const call of calls) {
        const input = JSON.parse(call.function.arguments || "{}") as Record<string, unknown>;
        const output = await ctx.env.execute(call.function.name, input);
        messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify(output) });
      }
    }
    ctx.trace.note("gave up: too many turns");
    return "Sorry, I could not finish your request.";
  },
};
