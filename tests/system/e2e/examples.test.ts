import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { main } from "../../../src/cli/program.ts";
import { readSplit } from "../../../src/workspace/files.ts";
import { Capture } from "../../helpers/capture.ts";
import { copyExample as copyExampleTo, REPO_ROOT } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

let server: TestLlmServer | null = null;
afterEach(async () => {
  vi.unstubAllEnvs();
  await server?.close();
  server = null;
});

async function cli(args: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", ...args], { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

const copyExample = (name: string): string => copyExampleTo(name, join(tempDir(), name));

// A model that knows some capitals: the plain agent passes those tasks and fails the others.
const KNOWN: Record<string, string> = { France: "Paris", Japan: "Tokyo", Canada: "Ottawa", Turkey: "Ankara" };

describe("examples/local: the README's `local` contract, runnable as shipped", () => {
  it("prepare runs the baseline through the scorer's (task, { answer, state }), and a train run scores it", async () => {
    server = await startTestLlmServer({
      responder: (req) => {
        const q = String(req.body?.messages?.[0]?.content ?? "");
        const country = Object.keys(KNOWN).find((c) => q.includes(c));
        return textReply(country ? `${KNOWN[country]}.` : "I am not sure.");
      },
    });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = copyExample("local");
    const prepared = await cli(["prepare", "--dir", dir]);
    expect(prepared.code, prepared.err).toBe(0);
    expect(prepared.out).toBe("");
    expect(prepared.err).toMatch(/recorded iteration 0: val_score \d\.\d{4}/);
    const split = readSplit(join(dir, "workspace", "split.json"))!;
    expect(split.train.length + split.test.length).toBe(10);

    const train = await cli(["benchmark", "--split", "train", "--dir", dir]);
    expect(train.code, train.err).toBe(0);
    for (const id of split.train) {
      const known = ["capital-fr", "capital-jp", "capital-ca", "capital-tr"].includes(id);
      expect(train.out).toContain(`${known ? "PASS" : "FAIL"}  ${id}  ${known ? "1.00" : "0.00"}`);
    }
    // The agent saw only { id, input }; the scorer's detail lands in the train trace.
    const failing = split.train.find((id) => !["capital-fr", "capital-jp", "capital-ca", "capital-tr"].includes(id))!;
    const result = JSON.parse(readFileSync(join(dir, "workspace", "traces", "latest", failing, "result.json"), "utf8"));
    expect(result.error).toMatch(/expected /);
    const trace = readFileSync(join(dir, "workspace", "traces", "latest", failing, "trace.json"), "utf8");
    expect(trace).not.toContain('"expected"');
  }, 120_000);
});

describe("examples/command: the README's `command` contract, runnable as shipped", () => {
  it("lists its tasks, runs train with traces and test without, and scores the agent file", async () => {
    server = await startTestLlmServer({});
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = copyExample("command");
    // The example imports the TypeScript agent through tsx: where tsx is installed.
    symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
    writeFileSync(join(dir, ".gitignore"), "node_modules\n");
    const prepared = await cli(["prepare", "--dir", dir]);
    expect(prepared.code, prepared.err).toBe(0);
    const split = readSplit(join(dir, "workspace", "split.json"))!;
    expect([...split.train, ...split.test].sort()).toEqual(
      ["r1", "r10", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"].sort(),
    );
    const train = await cli(["benchmark", "--split", "train", "--dir", dir]);
    expect(train.code, train.err).toBe(0);
    expect(train.out).toMatch(/^train score \d\.\d{4}: \d+\/\d+ passed\n$/m);
    for (const id of split.train) {
      const trace = JSON.parse(readFileSync(join(dir, "workspace", "traces", "latest", id, "trace.json"), "utf8"));
      expect(Object.keys(trace)).toEqual(["input", "answer", "expected", "error"]);
    }
    const test = await cli(["benchmark", "--split", "test", "--dir", dir]);
    expect(test.code, test.err).toBe(0);
    expect(test.out).toMatch(/^test score \d\.\d{4}\n$/);
    for (const id of split.test) expect(existsSync(join(dir, "workspace", "traces", "latest", id))).toBe(false);
  }, 120_000);

  it("a failing command prints the tail of its stderr, not only its exit code", async () => {
    server = await startTestLlmServer({});
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = tempDir();
    mkdirSync(join(dir, "agent"));
    writeFileSync(join(dir, "agent", "agent.ts"), "export const classify = () => 'positive';\n");
    writeFileSync(
      join(dir, "experiment_config.yaml"),
      `benchmark: command\ncommand: { run: "node -e \\"console.error('dataset not found: ./data/tasks.json'); process.exit(3)\\"" }\n`,
    );
    const r = await cli(["prepare", "--dir", dir]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(
      /benchmark command failed: exit code 3; its stderr ends:\n {2}\| dataset not found: \.\/data\/tasks\.json/,
    );
  });
});
