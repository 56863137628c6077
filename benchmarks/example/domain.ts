/**
 * The example benchmark's domain: a tiny online shop's support desk (in the spirit of tau-bench).
 * The tools do what they are asked without enforcing the policy — following the policy is the agent's job.
 */

export const TODAY = "2025-06-15";

export type OrderStatus = "pending" | "processing" | "shipped" | "delivered" | "cancelled";

export interface Customer {
  id: string;
  name: string;
  email: string;
  zip: string;
}

export interface OrderItem {
  item_id: string;
  name: string;
  price: number;
  refunded: boolean;
}

export interface Order {
  id: string;
  customer_id: string;
  status: OrderStatus;
  items: OrderItem[];
  address: string;
  tracking: string | null;
  delivered_at: string | null;
  refunded_amount: number;
}

export interface Db {
  today: string;
  customers: Customer[];
  orders: Order[];
}

/** What a task expects: per order, the fields that must differ from the start; plus facts the answer must state. */
export interface Expectation {
  changes: Record<string, { status?: OrderStatus; address?: string; refunded_items?: string[] }>;
  answer_contains: string[];
}

export interface ExampleTask {
  id: string;
  input: { message: string };
  category: string;
  expect: Expectation;
}

export const TOOL_NAMES = [
  "find_customer",
  "get_order",
  "list_orders",
  "cancel_order",
  "refund_order",
  "change_address",
];

const money = (n: number): number => Math.round(n * 100) / 100;
export const formatMoney = (n: number): string => `$${money(n).toFixed(2)}`;

function orderOf(db: Db, input: Record<string, unknown>): Order | { error: string } {
  const id = String(input.order_id ?? "");
  const order = db.orders.find((o) => o.id === id);
  return order ?? { error: `no order with id ${JSON.stringify(id)}` };
}

/** Runs one tool against the db (mutating it). Errors are returned, not thrown, as a real API would answer. */
export function executeTool(db: Db, tool: string, input: Record<string, unknown>): unknown {
  switch (tool) {
    case "find_customer": {
      const email = String(input.email ?? "").toLowerCase();
      const c = db.customers.find((x) => x.email.toLowerCase() === email);
      return c ? { ...c } : { error: `no customer with email ${JSON.stringify(input.email)}` };
    }
    case "list_orders": {
      const id = String(input.customer_id ?? "");
      return { orders: db.orders.filter((o) => o.customer_id === id).map((o) => ({ id: o.id, status: o.status })) };
    }
    case "get_order": {
      const o = orderOf(db, input);
      return "error" in o ? o : structuredClone(o);
    }
    case "cancel_order": {
      const o = orderOf(db, input);
      if ("error" in o) return o;
      if (o.status === "cancelled") return { error: "order is already cancelled" };
      o.status = "cancelled";
      return { ok: true, order_id: o.id, status: o.status };
    }
    case "refund_order": {
      const o = orderOf(db, input);
      if ("error" in o) return o;
      const wanted = Array.isArray(input.item_ids) ? input.item_ids.map(String) : null;
      const items = o.items.filter((i) => !i.refunded && (wanted === null || wanted.includes(i.item_id)));
      if (items.length === 0) return { error: "nothing to refund" };
      for (const i of items) i.refunded = true;
      const amount = money(items.reduce((sum, i) => sum + i.price, 0));
      o.refunded_amount = money(o.refunded_amount + amount);
      return { ok: true, order_id: o.id, refunded_items: items.map((i) => i.item_id), amount };
    }
    case "change_address": {
      const o = orderOf(db, input);
      if ("error" in o) return o;
      if (typeof input.address !== "string" || input.address.trim() === "") return { error: "address is required" };
      o.address = input.address;
      return { ok: true, order_id: o.id, address: o.address };
    }
    default:
      return { error: `unknown tool ${JSON.stringify(tool)}` };
  }
}

/** Deterministic grading: every order's final status, address and refunded items, then the required facts. */
export function grade(
  initial: Db,
  final: Db,
  answer: unknown,
  expect: Expectation,
): { reward: number; detail?: string } {
  for (const start of initial.orders) {
    const end = final.orders.find((o) => o.id === start.id);
    if (!end) return { reward: 0, detail: `order ${start.id} disappeared` };
    const want = expect.changes[start.id] ?? {};
    const wantStatus = want.status ?? start.status;
    if (end.status !== wantStatus)
      return { reward: 0, detail: `order ${start.id}: status is ${end.status}, expected ${wantStatus}` };
    const wantAddress = want.address ?? start.address;
    if (end.address !== wantAddress) return { reward: 0, detail: `order ${start.id}: address changed wrongly` };
    const refunded = end.items
      .filter((i) => i.refunded)
      .map((i) => i.item_id)
      .sort();
    const wantRefunded = (want.refunded_items ?? start.items.filter((i) => i.refunded).map((i) => i.item_id)).sort();
    if (refunded.join(",") !== wantRefunded.join(",")) {
      return {
        reward: 0,
        detail: `order ${start.id}: refunded items [${refunded.join(", ")}], expected [${wantRefunded.join(", ")}]`,
      };
    }
  }
  const text = typeof answer === "string" ? answer : JSON.stringify(answer ?? "");
  for (const fact of expect.answer_contains) {
    if (!text.toLowerCase().includes(fact.toLowerCase())) {
      return { reward: 0, detail: `the final answer does not state ${JSON.stringify(fact)}` };
    }
  }
  return { reward: 1 };
}
