/**
 * A deterministic stand-in for the AGENT's model in the offline demo, served by the test LLM server.
 * It reads the request's system prompt, tool descriptions and messages and behaves like a plausible
 * but literal model on the example benchmark: it follows a policy rule only when the prompt states it.
 * So the plain template scores well below 100%, and each rule added to the prompt raises the score.
 * Everything it writes starts with "[simulated model]".
 */
import type { RecordedRequest, ScriptStep } from "../llm-server/llm-server.ts";

export const SIMULATED_PREFIX = "[simulated model]";

export interface SimulatedRule {
  id: "identity" | "shipped" | "window" | "partial" | "amount" | "tracking" | "address";
  /** The sentence the demo's simulated coding agent inserts into the agent's system prompt. */
  phrase: string;
  /** What the model recognises (so paraphrases close to the policy's wording work too). */
  pattern: RegExp;
}

/** In the order the demo's coding agent adds them: biggest failure pattern first. */
export const SIMULATED_RULES: SimulatedRule[] = [
  {
    id: "identity",
    phrase:
      "Verify the customer's identity before making any change: look them up by email with find_customer, check that the zip code they give matches, and check that the order belongs to them.",
    pattern: /verify the customer'?s identity/i,
  },
  {
    id: "shipped",
    phrase: "Never cancel an order that has already shipped or been delivered.",
    pattern: /never cancel an? (order|orders) that (has|have) (already )?(shipped|been shipped)/i,
  },
  {
    id: "window",
    phrase: "Refunds are only allowed within 30 days of delivery.",
    pattern: /within 30 days of delivery/i,
  },
  {
    id: "partial",
    phrase:
      "When the customer asks about specific items, refund only those items (a partial refund with item_ids), not the whole order.",
    pattern: /refund only those items|partial refund/i,
  },
  {
    id: "amount",
    phrase: "Always tell the customer the exact amount refunded.",
    pattern: /exact amount refunded|exact refund amount/i,
  },
  {
    id: "tracking",
    phrase: "When an order has shipped, always give the customer its tracking number.",
    pattern: /give the customer (its|the) tracking number/i,
  },
  {
    id: "address",
    phrase: "Shipping addresses can only be changed while the order is still pending.",
    pattern: /only be changed while the order is (still )?pending/i,
  },
];

export const SIMULATED_RULE_PHRASES: string[] = SIMULATED_RULES.map((r) => r.phrase);

type RuleId = SimulatedRule["id"];

// biome-ignore lint/suspicious/noExplicitAny: request bodies are arbitrary JSON
type Json = any;

interface ToolCall {
  name: string;
  input: Json;
  result: Json;
}

function text(step: string): ScriptStep {
  return { reply: { content: [{ type: "text", text: `${SIMULATED_PREFIX} ${step}` }], stop_reason: "end_turn" } };
}

function tool(name: string, input: unknown): ScriptStep {
  return { reply: { content: [{ type: "tool_use", name, input }], stop_reason: "tool_use" } };
}

function blockText(content: Json): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((b: Json) => (b?.type === "text" ? String(b.text) : "")).join("\n");
  return "";
}

function parseJson(s: string): Json {
  try {
    return JSON.parse(s);
  } catch {
    return { error: s };
  }
}

/** The prompt the model "reads": system text plus every tool description. */
function promptText(body: Json): string {
  const system = typeof body.system === "string" ? body.system : blockText(body.system);
  const tools = Array.isArray(body.tools)
    ? body.tools.map((t: Json) => `${t.description ?? ""} ${JSON.stringify(t.input_schema ?? {})}`).join("\n")
    : "";
  return `${system}\n${tools}`;
}

function history(messages: Json[]): ToolCall[] {
  const results = new Map<string, Json>();
  for (const m of messages) {
    if (m.role !== "user" || !Array.isArray(m.content)) continue;
    for (const b of m.content)
      if (b?.type === "tool_result") results.set(b.tool_use_id, parseJson(blockText(b.content)));
  }
  const calls: ToolCall[] = [];
  for (const m of messages) {
    if (m.role !== "assistant" || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b?.type === "tool_use") calls.push({ name: b.name, input: b.input, result: results.get(b.id) ?? null });
    }
  }
  return calls;
}

type Intent = "cancel" | "refund" | "address" | "status";

interface Request {
  intent: Intent | null;
  email: string | null;
  zip: string | null;
  orderId: string | null;
  address: string | null;
  message: string;
}

function parseRequest(message: string): Request {
  const lower = message.toLowerCase();
  const intent: Intent | null = /refund|money back/.test(lower)
    ? "refund"
    : /cancel/.test(lower)
      ? "cancel"
      : /address/.test(lower)
        ? "address"
        : /status|where is/.test(lower)
          ? "status"
          : null;
  return {
    intent,
    email: /[\w.+-]+@[\w-]+\.[\w.]+/.exec(message)?.[0]?.replace(/\.$/, "") ?? null,
    zip: /zip(?: code)?(?: is)? (\d{5})/i.exec(message)?.[1] ?? null,
    orderId: /\bO\d{4}\b/.exec(message)?.[0] ?? null,
    address: /to "([^"]+)"/.exec(message)?.[1] ?? null,
    message,
  };
}

const DAY = 86_400_000;
const TODAY = "2025-06-15";
const money = (n: number): string => `$${(Math.round(n * 100) / 100).toFixed(2)}`;

/**
 * An OpenAI Chat Completions request as the Messages API would carry it (system text, tools with their input
 * schemas, tool calls and their results as blocks), so the same simulated model answers either format; the test
 * server writes its answer back in the format it was asked in.
 */
export function asMessagesRequest(req: RecordedRequest): RecordedRequest {
  const body: Json = req.body ?? {};
  const chat: Json[] = Array.isArray(body.messages) ? body.messages : [];
  const text = (content: Json) => (typeof content === "string" ? content : blockText(content));
  const system = chat
    .filter((m) => m.role === "system" || m.role === "developer")
    .map((m) => text(m.content))
    .join("\n");
  const tools = (Array.isArray(body.tools) ? body.tools : []).map((t: Json) => ({
    name: t.function?.name,
    description: t.function?.description,
    input_schema: t.function?.parameters ?? {},
  }));
  const messages: Json[] = [];
  for (const m of chat) {
    if (m.role === "user") messages.push({ role: "user", content: text(m.content) });
    else if (m.role === "assistant") {
      const calls = (m.tool_calls ?? []).map((c: Json) => ({
        type: "tool_use",
        id: c.id,
        name: c.function?.name,
        input: parseJson(c.function?.arguments || "{}"),
      }));
      messages.push({
        role: "assistant",
        content: [...(m.content ? [{ type: "text", text: m.content }] : []), ...calls],
      });
    } else if (m.role === "tool") {
      const result = { type: "tool_result", tool_use_id: m.tool_call_id, content: text(m.content) };
      const last = messages.at(-1);
      if (last?.role === "user" && Array.isArray(last.content)) last.content.push(result);
      else messages.push({ role: "user", content: [result] });
    }
  }
  return { ...req, body: { ...body, system, tools, messages } };
}

/** The Responder: `(request, index) → next step` for the test LLM server. */
export function simulatedAgentModel(req: RecordedRequest, _index = 0): ScriptStep {
  const body: Json = req.body ?? {};
  const messages: Json[] = Array.isArray(body.messages) ? body.messages : [];
  const first = messages.find((m) => m.role === "user");
  const ask = parseRequest(first ? blockText(first.content) : "");
  const prompt = promptText(body);
  const rules = new Set<RuleId>(SIMULATED_RULES.filter((r) => r.pattern.test(prompt)).map((r) => r.id));
  const toolNames = new Set<string>(Array.isArray(body.tools) ? body.tools.map((t: Json) => t.name) : []);
  const calls = history(messages);
  const last = (name: string): ToolCall | undefined => calls.filter((c) => c.name === name).at(-1);
  const has = (name: string) => toolNames.has(name);

  if (!ask.intent || !ask.orderId) return text("Could you tell me your order number and what you need?");
  if (rules.has("identity") && ask.email && has("find_customer") && !last("find_customer")) {
    return tool("find_customer", { email: ask.email });
  }
  if (!has("get_order")) return text("I'm sorry, I cannot look up orders right now.");
  const got = last("get_order");
  if (!got) return tool("get_order", { order_id: ask.orderId });
  const order = got.result;
  if (!order || order.error) return text(`I could not find order ${ask.orderId}.`);

  if (rules.has("identity") && ask.intent !== "status") {
    const customer = last("find_customer")?.result;
    if (!ask.email || !customer || customer.error || customer.zip !== ask.zip || customer.id !== order.customer_id) {
      return text("I'm sorry, I could not verify your identity, so I cannot make changes to this order.");
    }
  }

  switch (ask.intent) {
    case "status": {
      const tracking = rules.has("tracking") && order.tracking ? ` Your tracking number is ${order.tracking}.` : "";
      return text(`Your order ${order.id} is ${order.status}.${tracking}`);
    }
    case "cancel": {
      if (rules.has("shipped") && (order.status === "shipped" || order.status === "delivered")) {
        return text(
          `Order ${order.id} has already ${order.status === "shipped" ? "shipped" : "been delivered"}, so it cannot be cancelled.`,
        );
      }
      const done = last("cancel_order");
      if (!done)
        return has("cancel_order") ? tool("cancel_order", { order_id: order.id }) : text("I cannot cancel orders.");
      return text(
        done.result?.error ? `I could not cancel it: ${done.result.error}` : `Order ${order.id} is cancelled.`,
      );
    }
    case "address": {
      if (rules.has("address") && order.status !== "pending") {
        return text(`Order ${order.id} is already ${order.status}, so its address can no longer be changed.`);
      }
      const done = last("change_address");
      if (!done) {
        if (!ask.address || !has("change_address")) return text("What is the new address?");
        return tool("change_address", { order_id: order.id, address: ask.address });
      }
      return text(
        done.result?.error ? `That did not work: ${done.result.error}` : `The address of order ${order.id} is updated.`,
      );
    }
    case "refund": {
      if (rules.has("window")) {
        const age = order.delivered_at ? (Date.parse(TODAY) - Date.parse(order.delivered_at)) / DAY : Infinity;
        if (age > 30) return text(`Order ${order.id} was delivered more than 30 days ago, so it cannot be refunded.`);
      }
      const done = last("refund_order");
      if (!done) {
        if (!has("refund_order")) return text("I cannot issue refunds.");
        const named = (order.items as Json[]).filter((i) =>
          ask.message.toLowerCase().includes(String(i.name).toLowerCase()),
        );
        const partial = rules.has("partial") && named.length > 0 && named.length < order.items.length;
        return tool(
          "refund_order",
          partial ? { order_id: order.id, item_ids: named.map((i) => i.item_id) } : { order_id: order.id },
        );
      }
      if (done.result?.error) return text(`The refund did not go through: ${done.result.error}`);
      return text(
        rules.has("amount")
          ? `Your refund of ${money(done.result.amount)} for order ${order.id} has been processed.`
          : "Your refund has been processed.",
      );
    }
  }
  return text("How else can I help?");
}

export default simulatedAgentModel;
