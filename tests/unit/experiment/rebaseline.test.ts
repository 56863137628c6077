import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { main } from "../../../src/cli/program.ts";
import { bestSoFar } from "../../../src/gate/records.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { readResults, readSplit, readSuite } from "../../../src/workspace/files.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { Capture } from "../../helpers/capture.ts";
import { copyExample } from "../../helpers/experiment.ts";
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

const CAPITALS: Record<string, string> = {
  France: "Paris",
  Japan: "Tokyo",
  Canada: "Ottawa",
  Australia: "Canberra",
  Turkey: "Ankara",
};

describe("rebaseline: the baseline again after fixing a scorer", () => {
  it("drops the old scores, measures again on the same split, and starts results.tsv over (the old kept)", async () => {
    server = await startTestLlmServer({
      responder: (req) => {
        const q = String(req.body?.messages?.[0]?.content ?? "");
        const country = Object.keys(CAPITALS).find((c) => q.includes(c));
        return textReply(country ? CAPITALS[country]! : "No idea.");
      },
    });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = copyExample("local", join(tempDir(), "exp"));
    // A scorer written against the wrong idea of `result`: it scores 0 everywhere.
    const fixed = readFileSync(join(dir, "scorer.ts"), "utf8");
    writeFileSync(
      join(dir, "scorer.ts"),
      "export default (task: { expected: string }, result: unknown) => (result === task.expected ? 1 : 0);\n",
    );
    expect((await cli(["prepare", "--dir", dir])).code).toBe(0);
    const ws = join(dir, "workspace");
    expect(readResults(join(ws, "results.tsv"))[0]?.valScore).toBe(0);
    const splitBefore = readFileSync(join(ws, "split.json"), "utf8");
    const journal = Journal.open(join(ws, "journal.sqlite"));
    journal.runs.createRun("run-old", {});
    journal.close();

    writeFileSync(join(dir, "scorer.ts"), fixed);
    const r = await cli(["rebaseline", "--dir", dir]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/abandoned run run-old: its scores came from the old scorer/);
    // Prepare's results: the baseline's 10 tasks, and the 7 train tasks once more (the gate's reward model).
    expect(r.err).toMatch(/dropped {2}17 journaled task results/);
    expect(r.err).toMatch(/recorded iteration 0: val_score \d\.\d{4}/);

    const split = readSplit(join(ws, "split.json"))!;
    expect(readFileSync(join(ws, "split.json"), "utf8")).toBe(splitBefore);
    const rows = readResults(join(ws, "results.tsv"));
    expect(rows).toHaveLength(1);
    const known = split.test.filter((id) =>
      ["capital-fr", "capital-jp", "capital-ca", "capital-au", "capital-tr"].includes(id),
    );
    expect(rows[0]!.valScore).toBeCloseTo(known.length / split.test.length, 4);
    expect(readdirSync(ws).some((f) => /^results\.before-rebaseline-\d{8}T\d{6}\.tsv$/.test(f))).toBe(true);
    expect(readSuite(join(ws, "suite.json"), 0.8).tasks).toEqual([]);
    const after = Journal.open(join(ws, "journal.sqlite"), { readonly: true });
    expect(after.runs.getRun("run-old")?.status).toBe("abandoned");
    // The gate's own records agree with the files: the new baseline and an empty suite.
    expect(JSON.parse(after.pins.pinned("baseline")!.content).valScore).toBeCloseTo(rows[0]!.valScore, 4);
    expect(JSON.parse(after.pins.pinned("suite")!.content).tasks).toEqual([]);
    expect(bestSoFar(after)).toBeCloseTo(rows[0]!.valScore, 4);
    after.close();
  }, 120_000);

  it("refuses an uncommitted agent edit, exit 2, and changes nothing", async () => {
    server = await startTestLlmServer({ responder: () => textReply("x") });
    vi.stubEnv("ANTHROPIC_BASE_URL", server.url);
    const dir = copyExample("local", join(tempDir(), "exp"));
    expect((await cli(["prepare", "--dir", dir])).code).toBe(0);
    const results = readFileSync(join(dir, "workspace", "results.tsv"), "utf8");
    writeFileSync(join(dir, "agent", "agent.ts"), "export default { run: async () => 'edited' };\n");
    const r = await cli(["rebaseline", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/agent\/agent\.ts has uncommitted changes; .*commit or restore it first/);
    expect(readFileSync(join(dir, "workspace", "results.tsv"), "utf8")).toBe(results);
    expect(existsSync(paths(dir).lock)).toBe(false);
    expect(existsSync(paths(dir).journal)).toBe(true);
  }, 120_000);
});
