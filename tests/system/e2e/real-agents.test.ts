/**
 * Real teams' agents, still sealed: a TypeScript agent on the real `openai` npm package from the experiment's own
 * node_modules (npm's layout and pnpm's links), one on `@anthropic-ai/sdk`, and a Python agent in a virtualenv
 * made by `python3 -m venv` whose package calls the endpoint by base URL. None has a line of harness code: they
 * find the harness by the base URL in their environment. Each is scored; its spend is metered from the replies
 * into the ledger and shown by `status`; the provider's key is in no file and not inside the sandbox; a model the
 * config does not name is refused (the agent's 0); and the budget holds.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type RecordedRequest, textReply } from "../../../dev/llm-server/llm-server.ts";
import { formatStatus, readStatus } from "../../../src/cli/status.ts";
import { costOf, knownPrice } from "../../../src/gateway/prices.ts";
import { type Experiment, readTrace } from "../../helpers/benchmark-fixtures.ts";
import {
  filesHolding,
  installPackages,
  KEY_ENV,
  type Layout,
  makeVenv,
  type RealWorld,
  realWorld,
  UPSTREAM_KEY,
} from "../../helpers/real-agents.ts";
import { haveTool } from "../../helpers/tools.ts";

/** What every agent below does with a task: a mode, and the prompt it sends. */
const TASKS = [
  { id: "chat", input: { mode: "chat", prompt: "p-chat" }, expected: "answer:p-chat" },
  { id: "stream", input: { mode: "stream", prompt: "p-stream" }, expected: "answer:p-stream" },
  { id: "other", input: { mode: "chat", prompt: "p-other" }, expected: "answer:p-other" },
  // Calls a model the config does not name: refused by the gateway, and the agent's failure.
  { id: "unconfigured", input: { mode: "unconfigured", prompt: "p-x" }, expected: "answer:p-x" },
  // Looks everywhere it can for a key, and answers with what it found.
  { id: "snoop", input: { mode: "snoop", prompt: "p-snoop" }, expected: "never" },
];
const IDS = TASKS.map((t) => t.id);
/** Plain tasks for the budget: more than it can pay for. */
const SPENDERS = Array.from({ length: 8 }, (_, i) => ({
  id: `spend-${i}`,
  input: { mode: "chat", prompt: `p-spend-${i}` },
  expected: `answer:p-spend-${i}`,
}));

const promptOf = (req: RecordedRequest): string => {
  const body = req.body ?? {};
  const first = body.messages?.[0]?.content ?? body.input;
  return typeof first === "string" ? first : JSON.stringify(first);
};
/** The model used its whole output cap, so what a call costs is close to what was reserved for it. */
const answer = (req: RecordedRequest) =>
  textReply(`answer:${promptOf(req)}`, {
    output_tokens: Number(req.body?.max_completion_tokens ?? req.body?.max_tokens ?? 20),
  });

const OPENAI_AGENT = `import OpenAI from "openai";
import { readdirSync, readFileSync } from "node:fs";

// Built when the module loads, from the environment alone, as a team's agent does.
const client = new OpenAI();

function snoop(): string {
  const seen: string[] = [JSON.stringify(process.env)];
  for (const pid of readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {
    for (const file of ["environ", "cmdline"]) {
      try { seen.push(readFileSync(\`/proc/\${pid}/\${file}\`, "latin1")); } catch {}
    }
  }
  return seen.join("\\n");
}

export default {
  async run(task: { input: { mode: string; prompt: string } }, ctx: { model: string }) {
    const { mode, prompt } = task.input;
    if (mode === "snoop") return snoop();
    const model = mode === "unconfigured" ? "gpt-4o" : ctx.model;
    const messages = [{ role: "user" as const, content: prompt }];
    if (mode === "stream") {
      let text = "";
      const stream = await client.chat.completions.create({ model, messages, stream: true, max_completion_tokens: 40 });
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      return text;
    }
    const r = await client.chat.completions.create({ model, messages, max_completion_tokens: 40 });
    return r.choices[0]?.message?.content;
  },
};
`;

const ANTHROPIC_AGENT = `import Anthropic from "@anthropic-ai/sdk";
import { readFileSync } from "node:fs";

const client = new Anthropic();

export default {
  async run(task: { input: { mode: string; prompt: string } }) {
    const { mode, prompt } = task.input;
    if (mode === "snoop") {
      let own = "";
      try { own = readFileSync("/proc/self/environ", "latin1"); } catch {}
      return JSON.stringify(process.env) + own;
    }
    const model = mode === "unconfigured" ? "claude-opus-4-1" : "claude-sonnet-4-6";
    const messages = [{ role: "user" as const, content: prompt }];
    if (mode === "stream") {
      const reply = await client.messages.stream({ model, max_tokens: 40, messages }).finalMessage();
      return reply.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    }
    const reply = await client.messages.create({ model, max_tokens: 40, messages });
    return reply.content.map((b) => (b.type === "text" ? b.text : "")).join("");
  },
};
`;

/** The team's own client package, in its virtualenv: the standard library's HTTP client, the base URL from the environment. */
const PY_PACKAGE = `import json, os, urllib.request, urllib.error

def complete(model, prompt, stream=False):
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_completion_tokens": 40}
    if stream:
        body["stream"] = True
    req = urllib.request.Request(
        os.environ["OPENAI_BASE_URL"] + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]},
    )
    with urllib.request.urlopen(req) as r:
        raw = r.read().decode()
    if not stream:
        return json.loads(raw)["choices"][0]["message"]["content"]
    text = ""
    for line in raw.splitlines():
        if line.startswith("data: ") and line[6:].strip() != "[DONE]":
            for choice in json.loads(line[6:]).get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
    return text
`;

const PY_AGENT = `import glob, json, os
import teamclient

def run(task, ctx):
    mode, prompt = task["input"]["mode"], task["input"]["prompt"]
    if mode == "snoop":
        seen = [json.dumps(dict(os.environ))]
        for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
            try:
                seen.append(open(path, "rb").read().decode("latin1"))
            except OSError:
                pass
        return "\\n".join(seen)
    model = "gpt-4o" if mode == "unconfigured" else ctx.model
    return teamclient.complete(model, prompt, stream=(mode == "stream"))
`;

/** The SDK and what it requires, as `pnpm add @anthropic-ai/sdk` installs them. */
const ANTHROPIC_SDK = [
  "@anthropic-ai/sdk",
  "@opentelemetry/api",
  "standardwebhooks",
  "fast-sha256",
  "@stablelib/base64",
  "json-schema-to-ts",
  "ts-algebra",
  "@babel/runtime",
];

type Kind = `openai-${Layout}` | "anthropic" | "python";

async function worldFor(kind: Kind, config: Record<string, unknown> = {}): Promise<RealWorld> {
  const python = kind === "python";
  const world = await realWorld({
    tasks: [...TASKS, ...SPENDERS],
    responder: answer,
    config: { ...(python ? { agent_file: "agent/agent.py", python: ".venv/bin/python" } : {}), ...config },
  });
  const { root } = world.exp;
  if (python) {
    makeVenv(root, "teamclient", { "__init__.py": PY_PACKAGE });
    writeFileSync(join(root, "agent", "agent.py"), PY_AGENT);
  } else if (kind === "anthropic") {
    installPackages(root, "pnpm", ANTHROPIC_SDK);
    world.exp.writeAgent(ANTHROPIC_AGENT);
  } else {
    installPackages(root, kind === "openai-pnpm" ? "pnpm" : "npm", ["openai"]);
    world.exp.writeAgent(OPENAI_AGENT);
  }
  return world;
}

const agentFileOf = (exp: Experiment, kind: Kind) =>
  join(exp.root, "agent", kind === "python" ? "agent.py" : "agent.ts");

let world: RealWorld | null = null;
afterEach(async () => {
  await world?.close();
  world = null;
});

describe.skipIf(!haveTool("bwrap", "bubblewrap"))("real agents, sealed, with their own packages and provider", () => {
  it.each(["openai-npm", "openai-pnpm", "anthropic", "python"] as const)(
    "%s: scored, metered into the ledger and status, no key inside, an unconfigured model refused",
    async (kind) => {
      world = await worldFor(kind);
      const { exp, server } = world;
      exp.journal.runs.createRun("run-real", { sandbox: "bwrap", budget_usd: null });
      const runner = exp.runner({ warmSpare: false, typeCheck: true, agentEnv: { [KEY_ENV]: UPSTREAM_KEY } });
      const summary = await runner.run({
        split: "train",
        taskIds: IDS,
        runId: "run-real",
        iteration: 1,
        agentFile: agentFileOf(exp, kind),
        writeTraces: true,
      });

      expect(summary.results).toEqual({ chat: 1, stream: 1, other: 1, unconfigured: 0, snoop: 0 });
      expect(summary.infraErrors).toBe(0);
      // The unconfigured model never reached the provider; every call that did carried the harness's key.
      const models = server.requests.map((r) => r.body?.model);
      expect(models.sort()).toEqual(
        kind === "anthropic" ? Array(3).fill("claude-sonnet-4-6") : Array(3).fill("gpt-5-mini"),
      );

      // Spend: one ledger row per reply the provider sent, priced from the replies' own usage.
      const calls = exp.journal.ledger.llmCalls("run-real");
      expect(calls).toHaveLength(3);
      const price = knownPrice(kind === "anthropic" ? "claude-sonnet-4-6" : "gpt-5-mini")!;
      for (const c of calls) {
        expect(c).toMatchObject({ role: "agent", split: "train", iteration: 1, response: null });
        expect(c.outputTokens).toBe(40);
        expect(c.costUsd).toBeCloseTo(
          costOf(price, {
            input_tokens: c.inputTokens,
            output_tokens: c.outputTokens,
            cache_creation_input_tokens: c.cacheCreationTokens,
            cache_read_input_tokens: c.cacheReadTokens,
          }),
          12,
        );
      }
      const spent = calls.reduce((sum, c) => sum + c.costUsd, 0);
      const status = readStatus(exp.root);
      expect(status.spendUsd.agent).toBeCloseTo(spent, 12);
      expect(formatStatus(status)).toContain(`agent under test $${spent.toFixed(4)}`);

      // The key: not in the agent's environment or any process it can see, not in any file the run wrote.
      const snooped = String(readTrace(exp, "snoop").answer);
      expect(snooped).toContain("OPENAI_BASE_URL");
      expect(snooped).not.toContain(UPSTREAM_KEY);
      expect(filesHolding(exp.root, [UPSTREAM_KEY])).toEqual([]);
    },
  );

  it.each(["openai-pnpm", "anthropic", "python"] as const)(
    "%s: the run's budget holds, within one call",
    async (kind) => {
      const model = kind === "anthropic" ? "claude-sonnet-4-6" : "gpt-5-mini";
      // About two and a half calls' worth.
      const oneCall = costOf(knownPrice(model)!, { input_tokens: 60, output_tokens: 40 });
      const budget = 2.5 * oneCall;
      world = await worldFor(kind, { budget_usd: budget });
      const { exp, server } = world;
      exp.journal.runs.createRun("run-budget", { sandbox: "bwrap", budget_usd: budget });
      const error = await exp
        .runner({ warmSpare: false, typeCheck: false, agentEnv: { [KEY_ENV]: UPSTREAM_KEY } })
        .run({
          split: "train",
          taskIds: SPENDERS.map((t) => t.id),
          runId: "run-budget",
          agentFile: agentFileOf(exp, kind),
        })
        .catch((e: unknown) => e);

      expect(error).toMatchObject({ code: "BUDGET_EXHAUSTED" });
      const calls = exp.journal.ledger.llmCalls("run-budget");
      // Every reply the provider sent is in the ledger, and together they stay within one call of the budget.
      expect(calls.length).toBe(server.requests.length);
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.length).toBeLessThan(SPENDERS.length);
      const spent = exp.journal.ledger.spend("run-budget").totalUsd;
      const dearest = Math.max(...calls.map((c) => c.costUsd));
      expect(spent).toBeLessThanOrEqual(budget + dearest);
    },
  );
});
