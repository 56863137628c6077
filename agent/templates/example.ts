/**
 * Customer-support agent for the example benchmark (Acme Shop).
 *
 * The harness calls `run(task, ctx)` once per task: `task.input.message` is the customer's message;
 * `ctx.client` is an Anthropic client, `ctx.model` the model to use, `ctx.env.execute(tool, input)`
 * runs a shop tool, `ctx.trace.note()` adds a note to the trace. Return the final reply to the customer.
 * Only type imports are allowed in this file.
 */
import type Anthropic from "@anthropic-ai/sdk";

interface Task {
  id: string;
  input: { message: string };
}

interface Context {
  model: string;
  client: Anthropic;
  signal: AbortSignal;
  trace: { note(message: string, data?: unknown): void };
  env: { execute(tool: string, input: Record<string, unknown>): Promise<unknown> };
}

const SYSTEM_PROMPT = `You are a customer support agent for Acme Shop.
Help the customer with their request using the tools available to you.
When you are done, reply to the customer with a short final message.`;

const TOOLS: Anthropic.Messages.Tool[] = [
  {
    name: "find_customer",
    description: "Find a customer by email.",
    input_schema: { type: "object", properties: { email: { type: "string" } }, required: ["email"] },
  },
  {
    name: "get_order",
    description: "Get an order.",
    input_schema: { type: "object", properties: { order_id: { type: "string" } }, required: ["order_id"] },
  },
  {
    name: "list_orders",
    description: "List a customer's orders.",
    input_schema: { type: "object", properties: { customer_id: { type: "string" } }, required: ["customer_id"] },
  },
  {
    name: "cancel_order",
    description: "Cancel an order.",
    input_schema: { type: "object", properties: { order_id: { type: "string" } }, required: ["order_id"] },
  },
  {
    name: "refund_order",
    description: "Refund an order.",
    input_schema: {
      type: "object",
      properties: { order_id: { type: "string" }, item_ids: { type: "array", items: { type: "string" } } },
      required: ["order_id"],
    },
  },
  {
    name: "change_address",
    description: "Change the shipping address of an order.",
    input_schema: {
      type: "object",
      properties: { order_id: { type: "string" }, address: { type: "string" } },
      required: ["order_id", "address"],
    },
  },
];

const MAX_TURNS = 6;

export default {
  async run(task: Task, ctx: Context): Promise<string> {
    const messages: Anthropic.Messages.MessageParam[] = [{ role: "user", content: task.input.message }];
    for (let turn = 0; turn < MAX_TURNS; turn++) {
      const response = await ctx.client.messages.create(
        { model: ctx.model, max_tokens: 1024, system: SYSTEM_PROMPT, tools: TOOLS, messages },
        { signal: ctx.signal },
      );
      messages.push({ role: "assistant", content: response.content });
      const toolUses = response.content.filter((b): b is Anthropic.Messages.ToolUseBlock => b.type === "tool_use");
      if (toolUses.length === 0) {
        return response.content
          .filter((b): b is Anthropic.Messages.TextBlock => b.type === "text")
          .map((b) => b.text)
          .join("\n");
      }
      const results: Anthropic.Messages.ToolResultBlockParam[] = [];
      for (const use of toolUses) {
        const output = await ctx.env.execute(use.name, use.input as Record<string, unknown>);
        results.push({ type: "tool_result", tool_use_id: use.id, content: JSON.stringify(output) });
      }
      messages.push({ role: "user", content: results });
    }
    ctx.trace.note("gave up: too many turns");
    return "Sorry, I could not finish your request.";
  },
};
