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
import { preparedExperiment } from "../../helpers/experiment.ts";
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
    writeFileSync(join(dir, "experiment_config.yaml"), "benchmark: example\n");
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/refused the API key \(HTTP 401/);
    expect(readdirSync(dir)).toEqual(["experiment_config.yaml"]);
    expect(server.requests.every((q) => q.path === "/v1/messages/count_tokens")).toBe(true);
  });
});
