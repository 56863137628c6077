/**
 * Regenerates db.json and tasks.jsonl (deterministic; run `tsx benchmarks/example/generate.ts`).
 * The expected outcome of each task is what the written policy (policy.md) demands.
 */
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Customer,
  type Db,
  type ExampleTask,
  type Expectation,
  formatMoney,
  type Order,
  type OrderStatus,
  TODAY,
} from "./domain.ts";

const here = dirname(fileURLToPath(import.meta.url));

const NAMES = [
  ["Alice Moreno", "10001"],
  ["Bilal Haddad", "20502"],
  ["Chen Wei", "30303"],
  ["Dana Kowalski", "41018"],
  ["Emeka Obi", "55401"],
  ["Fatima Zahra", "60614"],
  ["Gustavo Lima", "73301"],
  ["Hana Suzuki", "80202"],
  ["Ines Duarte", "94105"],
  ["Jonas Berg", "02139"],
  ["Kofi Mensah", "33101"],
  ["Lena Fischer", "98101"],
] as const;

const CATALOG: [string, number][] = [
  ["wireless mouse", 24.99],
  ["mechanical keyboard", 89.0],
  ["USB-C cable", 9.5],
  ["laptop stand", 39.95],
  ["webcam", 59.0],
  ["desk lamp", 32.4],
  ["noise-cancelling headphones", 149.0],
  ["phone case", 14.99],
  ["portable charger", 45.25],
  ["monitor arm", 74.8],
];

const STREETS = ["Elm St", "Oak Ave", "Maple Rd", "Cedar Ln", "Birch Way", "Pine Ct", "Harbor Blvd", "Mill St"];

const customers: Customer[] = NAMES.map(([name, zip], i) => ({
  id: `C${String(i + 1).padStart(2, "0")}`,
  name,
  email: `${name.split(" ")[0]!.toLowerCase()}.${name.split(" ")[1]!.toLowerCase()}@example.com`,
  zip,
}));

const daysAgo = (n: number): string => {
  const d = new Date(`${TODAY}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - n);
  return d.toISOString().slice(0, 10);
};

const orders: Order[] = [];
const tasks: ExampleTask[] = [];
let seq = 0;

function makeOrder(customer: Customer, status: OrderStatus, nItems: number, deliveredDaysAgo: number | null): Order {
  seq += 1;
  const id = `O${1000 + seq}`;
  const items = Array.from({ length: nItems }, (_, k) => {
    const [name, price] = CATALOG[(seq * 3 + k * 7) % CATALOG.length]!;
    return { item_id: `${id}-${k + 1}`, name, price, refunded: false };
  });
  const order: Order = {
    id,
    customer_id: customer.id,
    status,
    items,
    address: `${((seq * 37) % 900) + 10} ${STREETS[seq % STREETS.length]}, ${customer.zip}`,
    tracking: status === "shipped" || status === "delivered" ? `TRK${(seq * 7919) % 1_000_000}`.padEnd(9, "7") : null,
    delivered_at: status === "delivered" ? daysAgo(deliveredDaysAgo ?? 5) : null,
    refunded_amount: 0,
  };
  orders.push(order);
  return order;
}

function intro(c: Customer, k: number, zip = c.zip): string {
  const forms = [
    `Hi, this is ${c.name} (${c.email}, zip ${zip}).`,
    `Hello! ${c.name} here, email ${c.email}, zip code ${zip}.`,
    `Good morning, my name is ${c.name}; my email is ${c.email} and my zip is ${zip}.`,
  ];
  return forms[k % forms.length]!;
}

function task(category: string, message: string, expect: Partial<Expectation> = {}): void {
  tasks.push({
    id: `ex-${String(tasks.length + 1).padStart(3, "0")}`,
    input: { message },
    category,
    expect: { changes: expect.changes ?? {}, answer_contains: expect.answer_contains ?? [] },
  });
}

const customer = (i: number): Customer => customers[i % customers.length]!;
const total = (o: Order, ids?: string[]): number =>
  o.items.filter((i) => ids === undefined || ids.includes(i.item_id)).reduce((s, i) => s + i.price, 0);
let n = 0;

// A: cancel a pending/processing order, identity fine → cancelled.
for (let i = 0; i < 7; i++) {
  const c = customer(n++);
  const o = makeOrder(c, i % 2 === 0 ? "pending" : "processing", 1 + (i % 3), null);
  task("cancel-open", `${intro(c, i)} Please cancel my order ${o.id}, I no longer need it.`, {
    changes: { [o.id]: { status: "cancelled" } },
  });
}
// B: cancel a shipped/delivered order → refuse (policy: never cancel shipped orders).
for (let i = 0; i < 4; i++) {
  const c = customer(n++);
  const o = makeOrder(c, i % 2 === 0 ? "shipped" : "delivered", 1 + (i % 2), i % 2 === 0 ? null : 4 + i);
  task("cancel-shipped", `${intro(c, i + 1)} I changed my mind, please cancel order ${o.id}.`);
}
// C: identity does not check out (wrong zip, or someone else's order) → no change.
for (let i = 0; i < 6; i++) {
  const c = customer(n++);
  const owner = i % 2 === 0 ? c : customer(n + 5);
  const wrongZip = i % 2 === 0 ? String((Number(c.zip) + 4111) % 100000).padStart(5, "0") : c.zip;
  const kind = i % 3;
  const o = makeOrder(owner, kind === 2 ? "delivered" : "pending", 2, kind === 2 ? 6 : null);
  const ask =
    kind === 0
      ? `Please cancel my order ${o.id}.`
      : kind === 1
        ? `Please change the shipping address of order ${o.id} to "${400 + i} Lakeview Dr, ${wrongZip}".`
        : `I'd like a refund for my order ${o.id}.`;
  task("identity", `${intro(c, i, wrongZip)} ${ask}`);
}
// D1: full refund within the window; the answer must state the amount.
for (let i = 0; i < 4; i++) {
  const c = customer(n++);
  const o = makeOrder(c, "delivered", 1 + (i % 2), 3 + i * 5);
  task("refund-amount", `${intro(c, i)} I'd like a refund for my order ${o.id}. How much will I get back?`, {
    changes: { [o.id]: { refunded_items: o.items.map((x) => x.item_id) } },
    answer_contains: [formatMoney(total(o))],
  });
}
// D2: full refund within the window.
for (let i = 0; i < 3; i++) {
  const c = customer(n++);
  const o = makeOrder(c, "delivered", 1, 2 + i * 6);
  task("refund-plain", `${intro(c, i + 2)} The item in order ${o.id} arrived broken, I'd like a refund please.`, {
    changes: { [o.id]: { refunded_items: o.items.map((x) => x.item_id) } },
  });
}
// E: refund outside the 30-day window → refuse.
for (let i = 0; i < 4; i++) {
  const c = customer(n++);
  const o = makeOrder(c, "delivered", 1 + (i % 2), 38 + i * 12);
  task("refund-window", `${intro(c, i)} I'd like a refund for my order ${o.id}, I never really used it.`);
}
// F: partial refund of one named item.
for (let i = 0; i < 4; i++) {
  const c = customer(n++);
  const o = makeOrder(c, "delivered", 3, 4 + i * 4);
  const item = o.items[i % 3]!;
  task(
    "refund-partial",
    `${intro(c, i + 1)} The ${item.name} from order ${o.id} is faulty; I'd like a refund for it.`,
    {
      changes: { [o.id]: { refunded_items: [item.item_id] } },
    },
  );
}
// G: change the address of a pending order.
for (let i = 0; i < 5; i++) {
  const c = customer(n++);
  const o = makeOrder(c, "pending", 1, null);
  const address = `${120 + i * 11} Riverside Ave, ${c.zip}`;
  task(
    "address-pending",
    `${intro(c, i)} I moved. Please change the shipping address of order ${o.id} to "${address}".`,
    {
      changes: { [o.id]: { address } },
    },
  );
}
// H: change the address of an order that is no longer pending → refuse.
for (let i = 0; i < 4; i++) {
  const c = customer(n++);
  const o = makeOrder(c, i % 2 === 0 ? "shipped" : "processing", 1, null);
  task(
    "address-late",
    `${intro(c, i + 2)} Please change the shipping address of order ${o.id} to "${77 + i} Hilltop Rd, ${c.zip}".`,
  );
}
// I: status of an open order.
for (let i = 0; i < 5; i++) {
  const c = customer(n++);
  const o = makeOrder(c, i % 2 === 0 ? "pending" : "processing", 1, null);
  task("status-open", `${intro(c, i)} What's the status of my order ${o.id}?`, { answer_contains: [o.status] });
}
// J: status of a shipped order: the answer must give the tracking number.
for (let i = 0; i < 4; i++) {
  const c = customer(n++);
  const o = makeOrder(c, "shipped", 1, null);
  task("status-shipped", `${intro(c, i + 1)} Where is my order ${o.id}? What's its status?`, {
    answer_contains: ["shipped", o.tracking!],
  });
}

const db: Db = { today: TODAY, customers, orders };
writeFileSync(join(here, "db.json"), `${JSON.stringify(db, null, 2)}\n`);
writeFileSync(join(here, "tasks.jsonl"), `${tasks.map((t) => JSON.stringify(t)).join("\n")}\n`);
process.stdout.write(`wrote ${orders.length} orders and ${tasks.length} tasks\n`);
