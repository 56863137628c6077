/**
 * A `command` benchmark's model calls go through the run's gateway: the command gets base URLs and a per-run
 * token (never the provider's key), every call is metered into the ledger as it is paid and attributed to the
 * split that made it, and budget_usd bounds them, within one call. Sandboxed without a network, the command
 * still reaches the gateway, through a relay inside its network namespace.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  type RecordedRequest,
  startTestLlmServer,
  type TestLlmServer,
  textReply,
} from "../../../dev/llm-server/llm-server.ts";
import { createAdapter } from "../../../src/benchmark/adapters/index.ts";
import { agentHashOf } from "../../../src/benchmark/agent-hash.ts";
import { createRunner } from "../../../src/benchmark/runner.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { writeSplit } from "../../../src/workspace/files.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { filesHolding, KEY_ENV, UPSTREAM_KEY } from "../../helpers/real-agents.ts";
import { haveTool } from "../../helpers/tools.ts";

/** A benchmark in the standard library: each task asks the model once, and passes if it answers as expected. */
const BENCH = `import json, os, sys, urllib.request, urllib.error

ids = [i for i in os.environ["HARNESS_TASK_IDS"].split(",") if i]
results = {}
if os.environ["HARNESS_LIST_ONLY"] == "1":
    results = {f"t{i}": None for i in range(8)}
for task in ids:
    body = {"model": os.environ["HARNESS_AGENT_MODEL"], "messages": [{"role": "user", "content": task}], "max_completion_tokens": 40}
    req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
    try:
        with urllib.request.urlopen(req) as r:
            text = json.loads(r.read())["choices"][0]["message"]["content"]
        results[task] = 1.0 if text == "answer:" + task else 0.0
    except urllib.error.HTTPError as e:
        print(f"{task}: the gateway answered {e.code}: {e.read().decode()}", file=sys.stderr)
        results[task] = None
    traces = os.environ.get("HARNESS_TRACES_DIR")
    if traces:
        os.makedirs(os.path.join(traces, task), exist_ok=True)
        with open(os.path.join(traces, task, "env.json"), "w") as f:
            json.dump(dict(os.environ), f)
with open(os.environ["HARNESS_RESULTS_FILE"], "w") as f:
    json.dump({"results": results}, f)
`;

const IDS = Array.from({ length: 8 }, (_, i) => `t${i}`);
const promptOf = (req: RecordedRequest) => String(req.body?.messages?.[0]?.content ?? "");
// The model used its whole output cap: a call costs about what was reserved for it.
const answer = (req: RecordedRequest) => textReply(`answer:${promptOf(req)}`, { output_tokens: 40 });

interface World {
  root: string;
  server: TestLlmServer;
  journal: Journal;
  runner: ReturnType<typeof createRunner>;
}

let world: World | null = null;
afterEach(async () => {
  world?.journal.close();
  if (world) rmSync(world.root, { recursive: true, force: true });
  await world?.server.close();
  world = null;
});

async function commandWorld(command: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<World> {
  const server = await startTestLlmServer({ apiKey: UPSTREAM_KEY, responder: answer });
  const root = mkdtempSync(join(tmpdir(), "cmd-gateway-"));
  // As root, a sandboxed command runs as the sandbox's user, which must reach the experiment.
  chmodSync(root, 0o755);
  writeFileSync(join(root, "bench.py"), BENCH);
  mkdirSync(join(root, "agent"), { recursive: true });
  writeFileSync(join(root, "agent", "agent.py"), "def run(task, ctx):\n    return None\n");
  const p = paths(root, undefined, "agent/agent.py");
  mkdirSync(p.workspace, { recursive: true });
  writeSplit(p.split, {
    seed: 1,
    created_at: new Date(0).toISOString(),
    train: IDS.slice(0, 4),
    test: IDS.slice(4),
    excluded: [],
    counts: { train: 4, test: 4, train_passing: 0, test_passing: 0, excluded: 0 },
  });
  const journal = Journal.open(p.journal);
  journal.pins.pin("split", readFileSync(p.split, "utf8"));
  const config = configSchema.parse({
    benchmark: "command",
    agent_file: "agent/agent.py",
    agent_model: "openai/gpt-5-mini",
    providers: { openai: { format: "openai", base_url: `${server.url}/v1`, api_key_env: KEY_ENV } },
    command: { run: "/usr/bin/python3 bench.py", timeout: 120, ...command },
    ...extra,
  });
  const { log } = createLogger({ stdout: false });
  const runner = createRunner({
    root,
    config,
    journal,
    log,
    adapter: createAdapter(config, root, log),
    agentEnv: { ...process.env, [KEY_ENV]: UPSTREAM_KEY },
  });
  world = { root, server, journal, runner };
  return world;
}

describe.skipIf(!haveTool("python3"))("a command benchmark's model calls through the gateway", () => {
  it("are metered as they are paid, attributed to train or test, and the command holds only the run's token", async () => {
    // The key is in the harness's own environment too, as an operator's is: the command must not get it.
    process.env[KEY_ENV] = UPSTREAM_KEY;
    try {
      const { runner, journal, server, root } = await commandWorld({});
      journal.runs.createRun("run-cmd", {});
      const train = await runner.run({ split: "train", runId: "run-cmd", iteration: 1 });
      const test = await runner.run({ split: "test", runId: "run-cmd", iteration: 1 });
      expect(train.results).toEqual({ t0: 1, t1: 1, t2: 1, t3: 1 });
      expect(test.results).toEqual({ t4: 1, t5: 1, t6: 1, t7: 1 });

      const calls = journal.ledger.llmCalls("run-cmd");
      expect(calls).toHaveLength(server.requests.length);
      expect(calls.map((c) => c.split).sort()).toEqual([...Array(4).fill("test"), ...Array(4).fill("train")]);
      expect(calls.every((c) => c.role === "agent" && c.model === "openai/gpt-5-mini" && c.costUsd > 0)).toBe(true);
      // Every call reached the provider with the harness's key, which the command never saw.
      expect(server.requests.every((r) => r.headers.authorization === `Bearer ${UPSTREAM_KEY}`)).toBe(true);
      const seen = JSON.parse(readFileSync(join(paths(root).tracesLatest, "t0", "env.json"), "utf8"));
      expect(seen.OPENAI_BASE_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      expect(seen.OPENAI_API_KEY).not.toBe(UPSTREAM_KEY);
      expect(seen[KEY_ENV]).toBeUndefined();
      expect(filesHolding(root, [UPSTREAM_KEY])).toEqual([]);
    } finally {
      delete process.env[KEY_ENV];
    }
  });

  it("are bounded by budget_usd, within one call, and the run stops for the budget", async () => {
    const { runner, journal, server } = await commandWorld({}, { budget_usd: 0.00025 });
    journal.runs.createRun("run-budget", {});
    const error = await runner.run({ split: "train", runId: "run-budget", taskIds: IDS }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "BUDGET_EXHAUSTED" });
    const calls = journal.ledger.llmCalls("run-budget");
    expect(calls.length).toBe(server.requests.length);
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.length).toBeLessThan(IDS.length);
    const spent = journal.ledger.spend("run-budget").totalUsd;
    expect(spent).toBeLessThanOrEqual(0.00025 + Math.max(...calls.map((c) => c.costUsd)));
    // No task of the invocation the budget stopped was scored.
    const hash = agentHashOf(readFileSync(join(world!.root, "agent", "agent.py")));
    expect(journal.taskResults.taskResults(hash, "train")).toEqual([]);
  });

  it.skipIf(!haveTool("bwrap", "bubblewrap"))(
    "reach the gateway from a sandbox without a network, through a relay inside it",
    async () => {
      const { runner, journal, server } = await commandWorld({ sandbox: true, network: false });
      journal.runs.createRun("run-sealed", {});
      const summary = await runner.run({ split: "train", runId: "run-sealed" });
      expect(summary.results).toEqual({ t0: 1, t1: 1, t2: 1, t3: 1 });
      expect(journal.ledger.llmCalls("run-sealed")).toHaveLength(4);
      expect(server.requests).toHaveLength(4);
    },
  );
});
