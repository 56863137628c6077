import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  SIMULATED_PREFIX,
  SIMULATED_RULE_PHRASES,
  simulatedAgentModel,
} from "../../../dev/demo/simulated-agent-model.ts";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { createExampleAdapter } from "../../../src/benchmark/adapters/example.ts";
import { parseTasksJsonl } from "../../../src/benchmark/adapters/local.ts";
import { createRunner } from "../../../src/benchmark/runner.ts";
import { checkAgent } from "../../../src/benchmark/sealed/load-check.ts";
import { runBenchmarkCommand } from "../../../src/cli/benchmark.ts";
import { configSchema } from "../../../src/config/schema.ts";
import { FileDamagedError } from "../../../src/errors.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { readTrainResults } from "../../../src/workspace/files.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { sandboxHere } from "../../helpers/experiment.ts";

const TEMPLATE = readFileSync(new URL("../../../agent/templates/example.ts", import.meta.url), "utf8");
const withRules = (rules: string[]) =>
  TEMPLATE.replace("short final message.`", `short final message.\n${rules.join("\n")}\``);

let server: TestLlmServer;
let root: string;
let journal: Journal;
beforeAll(async () => {
  server = await startTestLlmServer({ responder: simulatedAgentModel });
  root = mkdtempSync(join(tmpdir(), "bench-example-"));
  mkdirSync(join(root, "agent"));
  journal = Journal.open(paths(root).journal);
});
afterAll(async () => {
  journal.close();
  rmSync(root, { recursive: true, force: true });
  await server.close();
});

function runner() {
  const { log } = createLogger({ stdout: false });
  const config = configSchema.parse({ benchmark: "example", max_concurrency: 8, ...sandboxHere() });
  return createRunner({
    root,
    config,
    journal,
    log,
    adapter: createExampleAdapter(),
    agentBaseURL: server.url,
    agentApiKey: "test-key-local",
    typeCheck: false,
  });
}

describe("example benchmark under the simulated model", () => {
  it("has 40–60 tasks; the plain template scores 35–60% and the rule phrases raise it step by step", async () => {
    const ids = await createExampleAdapter().listTasks();
    expect(ids.length).toBeGreaterThanOrEqual(40);
    expect(ids.length).toBeLessThanOrEqual(60);
    const scores: number[] = [];
    for (const k of [0, 3, SIMULATED_RULE_PHRASES.length]) {
      writeFileSync(paths(root).agentFile, withRules(SIMULATED_RULE_PHRASES.slice(0, k)));
      const s = await runner().run({ split: "train", taskIds: ids, runId: null });
      expect(s.infraErrors).toBe(0);
      scores.push(s.score!);
    }
    expect(scores[0]).toBeGreaterThanOrEqual(0.35);
    expect(scores[0]).toBeLessThanOrEqual(0.6);
    expect(scores[1]).toBeGreaterThan(scores[0]!);
    expect(scores[2]).toBeGreaterThan(scores[1]!);
    expect(scores[2]).toBe(1);
    const trace = readFileSync(join(paths(root).tracesLatest, ids[0]!, "trace.json"), "utf8");
    expect(trace).toContain(SIMULATED_PREFIX);
  });

  it("the template passes the load check; a value import and a type error do not", async () => {
    writeFileSync(paths(root).agentFile, TEMPLATE);
    expect(await checkAgent(paths(root).agentFile, { root, ...sandboxHere() })).toEqual({ ok: true });
    const bad = join(root, "bad.ts");
    writeFileSync(bad, `import Anthropic from "@anthropic-ai/sdk";\nexport default { run: () => Anthropic };\n`);
    const valueImport = await checkAgent(bad);
    expect(valueImport.ok).toBe(false);
    writeFileSync(bad, `export default { run(task: { id: string }) { const n: number = task.id; return n; } };\n`);
    const typed = await checkAgent(bad, { root });
    expect(typed).toMatchObject({ ok: false });
    expect(!typed.ok && typed.message).toContain("TS2322");
    writeFileSync(bad, `export default { notRun: 1 };\n`);
    const shape = await checkAgent(bad, { typeCheck: false, ...sandboxHere() });
    expect(!shape.ok && shape.message).toContain("default export");
  });

  it("benchmark command: train prints PASS/FAIL per task and writes train_results.json; test prints the score only", async () => {
    writeFileSync(paths(root).agentFile, TEMPLATE);
    const out: string[] = [];
    const stdout = new Writable({
      write(c, _e, cb) {
        out.push(c.toString());
        cb();
      },
    });
    const { log } = createLogger({ stdout: false });
    const config = configSchema.parse({ benchmark: "example", max_concurrency: 4, ...sandboxHere() });
    const common = { root, config, journal, log, stdout, runner: { agentBaseURL: server.url, typeCheck: false } };
    const code = await runBenchmarkCommand({ ...common, split: "train", taskIds: ["ex-001", "ex-008"] });
    expect(code).toBe(0);
    expect(out.join("")).toMatch(/^PASS {2}ex-001 {2}1\.00\nFAIL {2}ex-008 {2}0\.00\ntrain score 0\.5000/);
    expect(readTrainResults(paths(root).trainResults)?.results).toEqual({ "ex-001": 1, "ex-008": 0 });
    out.length = 0;
    const bar: string[] = [];
    await runBenchmarkCommand({
      ...common,
      split: "test",
      taskIds: ["ex-001", "ex-008"],
      runner: { ...common.runner, reuse: false },
      progress: { write: (s: string) => bar.push(s) } as unknown as NodeJS.WritableStream,
    });
    expect(out.join("")).toBe("test score 0.5000\n");
    // The bar counts tasks and names none of them.
    expect(bar.join("")).toMatch(/\r\[#{30}\] 2\/2 {2}pass 50%/);
    expect(bar.join("")).not.toMatch(/ex-00/);
  });
});

describe("local tasks file", () => {
  it("reports a malformed line with its line number", () => {
    const text = `{"id":"a","input":1}\n\n{"id":"b",\n`;
    const error = (() => {
      try {
        parseTasksJsonl(text, "tasks.jsonl");
      } catch (e) {
        return e;
      }
    })() as FileDamagedError;
    expect(error).toBeInstanceOf(FileDamagedError);
    expect(error.line).toBe(3);
    expect(() => parseTasksJsonl(`{"id":"a"}\n{"id":"a"}\n`, "t.jsonl")).toThrow(/t\.jsonl:2: duplicate/);
    expect(() => parseTasksJsonl(`{"x":1}\n`, "t.jsonl")).toThrow(/t\.jsonl:1: missing/);
  });
});
