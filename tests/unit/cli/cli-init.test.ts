/**
 * `init` → `prepare` → `run` for each benchmark kind and agent language, as an operator does it:
 * the real CLI in child processes, the local test LLM server playing the agent's model (it knows
 * some capitals) and the coding agent's model (the demo's simulated coder).
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCodingAgentRequest, simulatedCodingModel } from "../../../dev/demo/simulated-coding-model.ts";
import { type RecordedRequest, startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { main } from "../../../src/cli/program.ts";
import { loadConfig } from "../../../src/config/load.ts";
import { readResults, readSplit } from "../../../src/workspace/files.ts";
import { Capture } from "../../helpers/capture.ts";
import { tempDir } from "../../helpers/temp.ts";
import { haveTool } from "../../helpers/tools.ts";

const REPO = resolve(import.meta.dirname, "../../..");
const CLI = join(REPO, "bin", "auto-harness.js");
const KNOWN: Record<string, string> = { France: "Paris", Japan: "Tokyo", Kenya: "Nairobi" };

function agentModel(req: RecordedRequest) {
  const messages: { content?: unknown }[] = Array.isArray(req.body?.messages) ? req.body.messages : [];
  // The question is the first message, or (OpenAI's format) the one after the system prompt.
  const question = messages.map((m) => String(m.content ?? "")).join("\n");
  const country = Object.keys(KNOWN).find((c) => question.includes(c));
  const text = country ? `The capital of ${country} is ${KNOWN[country]}.` : "I am not sure.";
  return { reply: { content: [{ type: "text" as const, text }] } };
}

let server: TestLlmServer;
beforeAll(async () => {
  server = await startTestLlmServer({
    responder: (req, index) => (isCodingAgentRequest(req) ? simulatedCodingModel(req, index) : agentModel(req)),
  });
});
afterAll(async () => {
  await server?.close();
});

function cli(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const env = {
      ...process.env,
      ANTHROPIC_BASE_URL: server.url,
      ANTHROPIC_API_KEY: "test-key",
      OPENAI_API_KEY: "test-key",
      LOG_LEVEL: "warn",
    };
    const child = spawn(process.execPath, [CLI, ...args, "--dir", cwd], {
      cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += String(d);
    });
    child.stderr.on("data", (d) => {
      out += String(d);
    });
    child.on("exit", (code) => done({ code, out }));
  });
}

const combos = [
  ["local", "ts", "anthropic"],
  ["local", "python", "anthropic"],
  ["command", "ts", "anthropic"],
  ["command", "python", "anthropic"],
  ["local", "ts", "openai"],
  ["local", "python", "openai"],
  ["command", "python", "openai"],
] as const;

describe.skipIf(!haveTool("bwrap", "bubblewrap") || !haveTool("python3"))("init → prepare → run", () => {
  it.each(combos)(
    "--benchmark %s --language %s --provider %s",
    async (benchmark, language, provider) => {
      const dir = tempDir(`init-${benchmark}-${language}-`);
      // As root, the agent's sandbox user reads the experiment's own packages.
      chmodSync(dir, 0o755);
      const stdout = new Capture();
      const code = await main(
        [
          "node",
          "auto-harness",
          "init",
          "--benchmark",
          benchmark,
          "--language",
          language,
          "--provider",
          provider,
          "--dir",
          dir,
        ],
        { stdout },
      );
      expect(code).toBe(0);
      const agentFile = language === "python" ? "agent/agent.py" : "agent/agent.ts";
      expect(existsSync(join(dir, agentFile))).toBe(true);
      expect(readFileSync(join(dir, "README.md"), "utf8")).toContain(agentFile);
      expect(loadConfig(join(dir, "experiment_config.yaml"))).toMatchObject({
        benchmark,
        agent_file: agentFile,
        agent_model: provider === "openai" ? "openai/gpt-5-mini" : "claude-sonnet-4-6",
        // What bench:night measured best: the run below races four candidates.
        candidates: 4,
      });
      // One iteration is enough to show the loop works on the scaffold as it is.
      const config = join(dir, "experiment_config.yaml");
      let yaml = readFileSync(config, "utf8").replace("max_iterations: 10", "max_iterations: 1");
      if (provider === "openai") {
        // The built-in provider, pointed at the test server; and `npm install` as pnpm would lay it out.
        yaml += `providers:\n  openai: { format: openai, base_url: "${server.url}/v1", api_key_env: OPENAI_API_KEY }\n`;
        if (language === "ts") {
          mkdirSync(join(dir, "node_modules"));
          symlinkSync(join(REPO, "node_modules", "openai"), join(dir, "node_modules", "openai"));
        }
      }
      writeFileSync(config, yaml);

      const prepared = await cli(["prepare"], dir);
      expect(prepared.code, prepared.out).toBe(0);
      const split = readSplit(join(dir, "workspace", "split.json"));
      expect((split?.train.length ?? 0) + (split?.test.length ?? 0)).toBe(6);
      // Six tasks leave a test split of two: prepare says what that means for the gate.
      expect(prepared.out).toContain(
        `warning  the test split has only ${split?.test.length} task(s): each one moves val_score by ${(1 / (split?.test.length ?? 1)).toFixed(2)}`,
      );
      const baseline = readResults(join(dir, "workspace", "results.tsv"))[0];
      expect(baseline).toMatchObject({ iteration: 0, commit: "baseline" });
      // Three of the six capitals are known: the baseline scores them, whichever split they fell in.
      const train = JSON.parse(readFileSync(join(dir, "workspace", "train_results.json"), "utf8")).results;
      expect(Object.values(train).every((r) => r === 0 || r === 1)).toBe(true);

      const ran = await cli(["run"], dir);
      expect(ran.code, ran.out).toBe(0);
      const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
      expect(learnings).toMatch(/## Iteration 1 /);
      expect(learnings).toMatch(/## Run summary/);
    },
    600_000,
  );

  it("refuses a directory that already has an experiment, writing nothing", async () => {
    const dir = tempDir("init-again-");
    writeFileSync(join(dir, "experiment_config.yaml"), "benchmark: example\n");
    const stderr = new Capture();
    const code = await main(["node", "auto-harness", "init", "--dir", dir], { stdout: new Capture(), stderr });
    expect(code).toBe(2);
    expect(stderr.text).toContain("already has an experiment_config.yaml");
    expect(existsSync(join(dir, "agent"))).toBe(false);
  });
});
