import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer, textReply } from "../../../dev/llm-server/llm-server.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { loopIterationOf, readResults } from "../../../src/workspace/files.ts";
import { copyExample, REAL_RECORD_CLI, spawnCli } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

let server: TestLlmServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const CAPITALS: Record<string, string> = { France: "Paris", Japan: "Tokyo", Canada: "Ottawa", Turkey: "Ankara" };

/** The real CLI as a child process (stand-in benchmark, analyze, edit and gate; real record, learn, git). */
async function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; err: string; out: string }> {
  const child = spawnCli(args, { STAND_IN_DELAY_MS: "5", ...env }, REAL_RECORD_CLI);
  const { code } = await child.exited;
  return { code, err: child.stderr(), out: child.stdout() };
}

describe("a rebaseline starts a new generation that the next run keeps", () => {
  it("the next run neither brings the old scorer's rows back into results.tsv nor counts them as the best", async () => {
    server = await startTestLlmServer({
      responder: (req) => {
        const q = String(req.body?.messages?.[0]?.content ?? "");
        const country = Object.keys(CAPITALS).find((c) => q.includes(c));
        return textReply(country ? `${CAPITALS[country]}.` : "I am not sure.");
      },
    });
    const env = { ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key-local" };
    // Unsealed where bubblewrap is missing: generations are what this checks, not the seal.
    const dir = copyExample("local", join(tempDir("ah-generations-"), "exp"));
    const fixed = readFileSync(join(dir, "scorer.ts"), "utf8");
    // A scorer written against the wrong idea of `result`: every task scores 0.
    writeFileSync(join(dir, "scorer.ts"), "export default () => 0;\n");
    appendFileSync(join(dir, "experiment_config.yaml"), "max_iterations: 3\npatience: 50\n");
    const prepared = await cli(["prepare", "--dir", dir], env);
    expect(prepared.code, prepared.err).toBe(0);

    // The first night, against the broken scorer: iterations 1 and 3 accepted.
    const first = await cli(["run", "--dir", dir], env);
    expect(first.code, first.err).toBe(0);
    const results = join(dir, "workspace", "results.tsv");
    const oldRows = readResults(results);
    expect(oldRows.map(loopIterationOf)).toEqual([0, 1, 3]);

    writeFileSync(join(dir, "scorer.ts"), fixed);
    const rebaselined = await cli(["rebaseline", "--dir", dir], env);
    expect(rebaselined.code, rebaselined.err).toBe(0);
    expect(rebaselined.err).toMatch(/opened {3}generation 2/);
    const baseline = readResults(results);
    expect(baseline).toHaveLength(1);
    expect(baseline[0]!.valScore).toBeGreaterThan(0);

    // The next night (iterations 4 to 7; the stand-in accepts 7): the cross-checks look at generation 2 only.
    const config = join(dir, "experiment_config.yaml");
    writeFileSync(config, readFileSync(config, "utf8").replace("max_iterations: 3", "max_iterations: 4"));
    const second = await cli(["run", "--dir", dir], env);
    expect(second.code, second.err).toBe(0);
    expect(second.err).not.toMatch(/no row for iteration/);
    const rows = readResults(results);
    expect(rows.map(loopIterationOf)).toEqual([0, 7]);
    for (const old of oldRows.slice(1)) expect(rows.map((r) => r.commit)).not.toContain(old.commit);
    // Each accepted change beat the new baseline by the stand-in's step, never an old score.
    expect(rows[1]!.valScore).toBeCloseTo(baseline[0]!.valScore + 0.01, 4);

    const status = await cli(["status", "--json", "--dir", dir], env);
    const report = JSON.parse(status.out);
    expect(report).toMatchObject({ generation: 2, accepted: rows.length - 1 });
    expect(report.bestValScore).toBeCloseTo(Math.max(...rows.map((r) => r.valScore)), 4);
    const human = await cli(["status", "--dir", dir], env);
    expect(human.out).toMatch(/\ngeneration 2: a rebaseline started the score history over/);

    // Earlier generations stay queryable, and the report shows them apart.
    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });
    const [older, newer] = journal.runs.runs();
    journal.close();
    expect([older!.generation, newer!.generation]).toEqual([1, 2]);
    const page = await cli(["report", "--dir", dir], env);
    expect(page.code, page.err).toBe(0);
    const html = readFileSync(join(dir, "workspace", "report.html"), "utf8");
    expect(html).toMatch(/<section id="earlier-generations">.*generation 1 .*1 run\(s\) \(run-\S+\), 2 accepted/s);
    expect(html).toContain(newer!.id);
  }, 240_000);
});
