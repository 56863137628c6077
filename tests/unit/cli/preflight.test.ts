import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { createStandInSteps } from "../../../dev/steps/stand-in.ts";
import { RUN_CHECKS } from "../../../src/cli/preflight.ts";
import { main } from "../../../src/cli/program.ts";
import { EXIT_NOTHING_TO_DO, type StepsFactory } from "../../../src/cli/run.ts";
import { HarnessError } from "../../../src/errors.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment, sandboxLineHere } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const standIn: StepsFactory = (exp, opened, clock) =>
  createStandInSteps({ paths: exp.paths, journal: opened.journal, clock, delayMs: 0 });

let server: TestLlmServer | null = null;
afterEach(async () => {
  vi.unstubAllEnvs();
  await server?.close();
  server = null;
});

async function cli(args: string[], deps: Parameters<typeof main>[1] = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", ...args], { stdout, stderr, ...deps });
  return { code, out: stdout.text, err: stderr.text };
}

function runs(dir: string) {
  const journalFile = join(dir, "workspace", "journal.sqlite");
  if (!existsSync(journalFile)) return [];
  const journal = Journal.open(journalFile, { readonly: true });
  try {
    const latest = journal.runs.latestRun();
    return latest ? [latest] : [];
  } finally {
    journal.close();
  }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

function noEnv() {
  vi.stubEnv("ANTHROPIC_API_KEY", "");
  vi.stubEnv("ANTHROPIC_BASE_URL", "");
}

describe("run and daemon check what they need before they start", () => {
  it.each([["run"], ["daemon"]])("%s without a key exits 2 with the fix, and starts no run", async (mode) => {
    noEnv();
    const dir = preparedExperiment(tempDir());
    const r = await cli([mode, "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      "auto-harness: ANTHROPIC_API_KEY is not set; export it (or point ANTHROPIC_BASE_URL at a compatible endpoint with its key)\n",
    );
    expect(runs(dir)).toEqual([]);
  });

  it("a refused key exits 2 with the provider's message, the key itself nowhere, nothing paid", async () => {
    server = await startTestLlmServer({ apiKey: "sk-ant-right-key-000000" });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    vi.stubEnv("ANTHROPIC_API_KEY", "sk-ant-wrong-key-123456");
    const dir = preparedExperiment(tempDir());
    const r = await cli(["run", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/refused the API key \(HTTP 401: invalid x-api-key\); check ANTHROPIC_API_KEY\n$/);
    expect(r.err + r.out).not.toContain("wrong-key");
    expect(server.requests.map((q) => q.path)).toEqual(["/v1/messages/count_tokens"]);
    expect(runs(dir)).toEqual([]);
  });

  it("an unknown model exits 2 naming the model and the config keys", async () => {
    server = await startTestLlmServer({ models: ["claude-sonnet-4-6"] });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = preparedExperiment(tempDir(), { coding_model: "claude-nope-9" });
    const r = await cli(["run", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/does not know model `claude-nope-9` \(HTTP 404: model: claude-nope-9\); check coding_model/);
    expect(runs(dir)).toEqual([]);
  });

  it("an unreachable endpoint exits 2 with the class of the failure", async () => {
    const port = await closedPort();
    vi.stubEnv("ANTHROPIC_BASE_URL", `http://127.0.0.1:${port}`);
    const dir = preparedExperiment(tempDir());
    const r = await cli(["daemon", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port} \\(connection refused\\); check ANTHROPIC_BASE_URL`),
    );
  });

  it("a deadline in the past exits 2 before a run starts; `run --new` then abandons nothing", async () => {
    const dir = preparedExperiment(tempDir(), { deadline: "2020-01-01T07:00:00Z" });
    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
    journal.runs.createRun("run-old", {});
    journal.close();
    const r = await cli(["run", "--new", "--dir", dir], { stepsFactory: standIn });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /deadline 2020-01-01T07:00:00Z is already past \(now \S+\); move `deadline` in experiment_config\.yaml/,
    );
    expect(runs(dir)[0]).toMatchObject({ id: "run-old", status: "running" });
  });

  it("a resumed run whose budget is spent exits 2 naming budget_usd", async () => {
    const dir = preparedExperiment(tempDir(), { budget_usd: 1 });
    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
    journal.runs.createRun("run-old", {});
    journal.ledger.recordLlmCall({
      runId: "run-old",
      iteration: 1,
      stepKey: null,
      role: "coding",
      model: "claude-opus-4-6",
      promptHash: null,
      inputTokens: 1,
      outputTokens: 1,
      cacheCreationTokens: 0,
      cacheReadTokens: 0,
      costUsd: 1.25,
      latencyMs: 1,
      stopReason: null,
      response: null,
    });
    journal.close();
    const r = await cli(["resume", "--dir", dir], { stepsFactory: standIn });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/run run-old has spent \$1\.25 of budget_usd 1; raise `budget_usd`/);
  });

  it("with everything in place the checks pass and the run goes ahead", async () => {
    server = await startTestLlmServer({ models: ["claude-sonnet-4-6", "claude-opus-4-6"] });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = preparedExperiment(tempDir(), { max_iterations: 1, deadline: "2999-01-01T00:00:00Z" });
    const r = await cli(["run", "--dir", dir], { stepsFactory: standIn, preflight: RUN_CHECKS });
    expect(r.code, r.err).toBe(0);
    // One free count_tokens call per model, nothing else.
    expect(server.requests.map((q) => q.body.model).sort()).toEqual(["claude-opus-4-6", "claude-sonnet-4-6"]);
  });
});

describe("a non-transient provider error stops the run at once for the operator", () => {
  it("pauses the run with the provider's message, which status shows as the last error; resume continues once fixed", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 3 });
    const failing: StepsFactory = (exp, opened, clock) => ({
      ...standIn(exp, opened, clock),
      analyze: async () => {
        throw new HarnessError(
          "LLM_REJECTED",
          "authentication failed (401: invalid x-api-key); check ANTHROPIC_API_KEY",
        );
      },
    });
    const r = await cli(["run", "--dir", dir], { stepsFactory: failing });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/run paused: authentication failed \(401: invalid x-api-key\)/);
    expect(r.err).toMatch(/paused in analyze: fix the cause above, then `auto-harness resume`/);
    const status = await cli(["status", "--dir", dir]);
    expect(status.out).toMatch(
      /\nlast error authentication failed \(401: invalid x-api-key\); check ANTHROPIC_API_KEY/,
    );
    expect(status.out).toMatch(
      /\nnext {7}fix the last error, then `auto-harness resume`.*pm2 does not retry it by itself\n/,
    );
    // The key is fixed: the same run continues from analyze, not a terminal state.
    const resumed = await cli(["resume", "--dir", dir], { stepsFactory: standIn });
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toMatch(/run done/);
  });
});

describe("daemon --new (a nightly cron)", () => {
  it("starts a fresh run when the last one is done, and resumes an unfinished one instead of abandoning it", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 1 });
    const first = await cli(["daemon", "--dir", dir], { stepsFactory: standIn });
    expect(first.code, first.err).toBe(EXIT_NOTHING_TO_DO);
    const again = await cli(["daemon", "--dir", dir], { stepsFactory: standIn });
    expect(again.code).toBe(EXIT_NOTHING_TO_DO);
    expect(again.err).toMatch(/has finished; start a new one with `auto-harness run` \(or `daemon --new`\)/);

    const nightly = await cli(["daemon", "--new", "--dir", dir], { stepsFactory: standIn });
    expect(nightly.code, nightly.err).toBe(EXIT_NOTHING_TO_DO);
    expect(nightly.err).toMatch(/starting run run-/);
    const db = new Database(join(dir, "workspace", "journal.sqlite"), { readonly: true });
    expect(db.prepare("SELECT status FROM runs ORDER BY created_at").pluck().all()).toEqual(["done", "done"]);
    db.close();

    const j = Journal.open(join(dir, "workspace", "journal.sqlite"));
    j.runs.createRun("run-unfinished", {});
    j.close();
    const resumed = await cli(["daemon", "--new", "--dir", dir], { stepsFactory: standIn });
    expect(resumed.err).not.toMatch(/abandoned/);
    expect(runs(dir)[0]?.id).toBe("run-unfinished");
  });
});

describe("prepare checks before it pays for the baseline", () => {
  it("a refused key exits 2 before any task runs", async () => {
    server = await startTestLlmServer({ apiKey: "sk-ant-right-key-000000" });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    vi.stubEnv("ANTHROPIC_API_KEY", "sk-ant-wrong-key-123456");
    const dir = tempDir();
    writeFileSync(join(dir, "experiment_config.yaml"), `benchmark: example\n${sandboxLineHere()}`);
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/refused the API key \(HTTP 401/);
    expect(readdirSync(dir)).toEqual(["experiment_config.yaml"]);
    expect(server.requests.every((q) => q.path === "/v1/messages/count_tokens")).toBe(true);
  });
});

/** `run` with the real checks and stand-in steps, so nothing past preflight calls a model. */
async function runChecked(config: Record<string, unknown>) {
  const dir = preparedExperiment(tempDir(), { max_iterations: 1, ...config });
  return cli(["run", "--dir", dir], { stepsFactory: standIn, preflight: RUN_CHECKS });
}

/** What the test server was asked: only free calls (model lists, token counts) may precede the run. */
function paidCalls(s: TestLlmServer) {
  return s.requests.filter((q) => q.path !== "/v1/models" && q.path !== "/v1/messages/count_tokens");
}

async function withServer(models?: string[]) {
  server = await startTestLlmServer(models ? { models } : {});
  vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
  vi.stubEnv("ANTHROPIC_API_KEY", "");
  return server;
}

describe("preflight of the agent's providers", () => {
  it("a model with no known price is refused before anything is paid; the operator's price lets the run go ahead", async () => {
    const s = await withServer(["qwen3-8b", "claude-opus-4-6"]);
    const local = { local: { format: "openai", base_url: `${s.url}/v1` } };
    const refused = await runChecked({ agent_model: "local/qwen3-8b", providers: local });
    expect(refused.code).toBe(2);
    expect(refused.err).toBe(
      "auto-harness: no price is known for `local/qwen3-8b`; add one to experiment_config.yaml in USD per million tokens, e.g. prices: { local/qwen3-8b: { input: 1, output: 4 } } (for a free local model, 0 and 0)\n",
    );
    expect(paidCalls(s)).toEqual([]);
    const priced = await runChecked({
      agent_model: "local/qwen3-8b",
      providers: local,
      prices: { "local/": { input: 0, output: 0 } },
    });
    expect(priced.code, priced.err).toBe(0);
    expect(paidCalls(s)).toEqual([]);
  });

  it("an unknown coding model's price is refused too, once its endpoint knows it", async () => {
    await withServer();
    const r = await runChecked({ coding_model: "claude-future-9" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no price is known for `claude-future-9`/);
  });

  it("an OpenAI-format provider's key must be in the environment, named by api_key_env", async () => {
    await withServer();
    vi.stubEnv("GW_TEST_OPENAI_KEY", "");
    const r = await runChecked({
      agent_model: "openai/gpt-5-mini",
      providers: {
        openai: { format: "openai", base_url: "https://api.openai.example/v1", api_key_env: "GW_TEST_OPENAI_KEY" },
      },
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/GW_TEST_OPENAI_KEY is not set \(providers\.openai\.api_key_env, for openai\/gpt-5-mini\)/);
  });

  it("a model the provider does not list is refused, naming what it lists", async () => {
    const s = await withServer(["gpt-5-mini", "claude-sonnet-4-6", "claude-opus-4-6"]);
    const r = await runChecked({
      agent_model: "mine/gpt-5-mni",
      providers: { mine: { format: "openai", base_url: `${s.url}/v1` } },
      prices: { "mine/": { input: 1, output: 1 } },
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /providers\.mine \(http:\/\/127\.0\.0\.1:\d+\/v1\) does not serve model `gpt-5-mni` \(it lists: gpt-5-mini,/,
    );
    expect(paidCalls(s)).toEqual([]);
  });

  it("a base URL without /v1 gets the hint; an Anthropic base URL with /v1 gets the opposite hint", async () => {
    const s = await withServer();
    const bare = await runChecked({
      agent_model: "mine/gpt-5-mini",
      providers: { mine: { format: "openai", base_url: s.url } },
    });
    expect(bare.err).toMatch(
      /\/models answered 404; an OpenAI-compatible base URL usually ends in \/v1 \(providers\.mine\.base_url\)/,
    );
    vi.stubEnv("ANTHROPIC_BASE_URL", `${s.url}/v1`);
    const doubled = await runChecked({});
    expect(doubled.code).toBe(2);
    expect(doubled.err).toMatch(/\/v1 ends in \/v1, but the Anthropic SDK adds \/v1 itself; drop it/);
  });

  it("an unreachable provider is named by its config key", async () => {
    await withServer();
    const port = await closedPort();
    const r = await runChecked({
      agent_model: "mine/gpt-5-mini",
      providers: { mine: { format: "openai", base_url: `http://127.0.0.1:${port}/v1` } },
    });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot reach providers\.mine\.base_url http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/);
  });

  it("an agent_model naming a provider that is not configured is a config error naming the key", async () => {
    const r = await runChecked({ agent_model: "opnai/gpt-5-mini" });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /agent_model: got "opnai\/gpt-5-mini"; provider `opnai` is not configured; add it under `providers` or use one of: anthropic, openai/,
    );
  });
});
