/**
 * A finished night over the example benchmark, built through the real stores and a real git repository:
 * a run with an accepted round (a commit), a rejected one whose diff copies a held-out task (its id and its
 * input), gate decisions with first-pass and paired held-out results, LLM spend (the holdout's scoring
 * included), a scored sealed holdout, and train traces on disk. For the pages a person reads in the morning.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openRepo } from "../../src/git/repo.ts";
import { Journal } from "../../src/journal/journal.ts";
import { rejectedDiffKey } from "../../src/journal/pins.ts";
import { appendResult, initResults, writeSplit } from "../../src/workspace/files.ts";
import { paths } from "../../src/workspace/paths.ts";
import { REPO_ROOT } from "./experiment.ts";
import { llmCallRow } from "./ledger.ts";

export const RUN = "run-20260101-000000-abcd";

const tasks = readFileSync(join(REPO_ROOT, "benchmarks", "example", "tasks.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { id: string; input: { message: string } });

export const SPLIT = {
  train: tasks.slice(0, 30).map((t) => t.id),
  test: tasks.slice(30, 42).map((t) => t.id),
  holdout: tasks.slice(42).map((t) => t.id),
};
/** Every train input message: a stretch shared with one is not held-out knowledge. */
export const TRAIN_TEXT = tasks
  .filter((t) => SPLIT.train.includes(t.id))
  .map((t) => t.input.message)
  .join("\n");
/** Every held-out id and input message: none may reach a page. */
export const HELD_OUT = tasks.filter((t) => !SPLIT.train.includes(t.id)).flatMap((t) => [t.id, t.input.message]);
const LEAKED = tasks[33]!;

const call = (iteration: number | null, role: "coding" | "agent", costUsd: number) =>
  llmCallRow({ runId: RUN, iteration, role, costUsd });

function trainTrace(root: string, taskId: string, reward: number, detail: string | null): void {
  const dir = join(paths(root).tracesLatest, taskId);
  mkdirSync(dir, { recursive: true });
  const message = tasks.find((t) => t.id === taskId)!.input.message;
  const trace = {
    task_id: taskId,
    events: [
      {
        kind: "llm",
        at: 1,
        latency_ms: 20,
        status: 200,
        request: { system: "You are a support agent for Acme Shop.", messages: [{ role: "user", content: message }] },
        response: {
          content: [
            { type: "text", text: "Let me look the customer up." },
            { type: "tool_use", id: "tu1", name: "find_customer", input: { email: "alice.moreno@example.com" } },
          ],
        },
      },
      {
        kind: "tool",
        at: 2,
        name: "find_customer",
        input: { email: "alice.moreno@example.com" },
        output: { id: "C1" },
      },
      {
        kind: "llm",
        at: 3,
        latency_ms: 20,
        status: 200,
        request: {},
        response: { content: [{ type: "text", text: "Your order is cancelled." }] },
      },
    ],
    answer: "Your order is cancelled.",
    error: null,
  };
  writeFileSync(join(dir, "trace.json"), JSON.stringify(trace));
  writeFileSync(join(dir, "result.json"), JSON.stringify({ reward, duration_ms: 40, error: detail }));
}

export async function buildNight(root: string): Promise<{ acceptedSha: string }> {
  const p = paths(root);
  writeFileSync(join(root, "experiment_config.yaml"), "benchmark: example\nbudget_usd: 20\n");
  mkdirSync(join(root, "agent"), { recursive: true });
  writeFileSync(p.agentFile, "export default { run: async () => 'hello' };\n");
  const repo = openRepo(root);
  await repo.init();
  await repo.commitPaths(["agent/agent.ts", "experiment_config.yaml"], "prepare");
  writeFileSync(p.agentFile, "// verify the customer's identity first\nexport default { run: async () => 'hello' };\n");
  const acceptedSha = await repo.commitFile("agent/agent.ts", "improve: verify identity", {
    key: "Harness-Run",
    value: `${RUN}/1`,
  });
  mkdirSync(p.workspace, { recursive: true });
  writeSplit(p.split, {
    seed: 1,
    created_at: "2026-01-01T00:00:00.000Z",
    ...SPLIT,
    excluded: [],
    counts: { train: 30, test: 12, train_passing: 12, test_passing: 5, excluded: 0 },
  });
  initResults(p.results);
  const row = { evalsPassed: 0, evalsTotal: 0, timestamp: "2026-01-01T00:00:00.000Z" };
  appendResult(p.results, { ...row, valScore: 5 / 12, commit: "baseline", extra: { loop_iteration: "0" } });
  appendResult(p.results, { ...row, valScore: 0.5, commit: acceptedSha.slice(0, 7), extra: { loop_iteration: "1" } });

  let now = Date.parse("2026-01-01T22:00:00.000Z");
  const journal = Journal.open(p.journal, { now: () => now });
  try {
    journal.pins.pin("split", readFileSync(p.split, "utf8"));
    journal.pins.pin("baseline", JSON.stringify({ valScore: 5 / 12 }));
    journal.runs.createRun(RUN, { benchmark: "example", budget_usd: 20, sandbox: "bwrap" });
    const gate = (iteration: number, accept: boolean, firstPass: number[], pairs: [number, number][]) => {
      journal.gateRecords.startGateDecision({
        runId: RUN,
        iteration,
        rule: "bayes",
        candidateHash: `c${iteration}`,
        incumbentHash: "i",
        details: {},
      });
      journal.gateRecords.appendGateResults(RUN, iteration, [
        ...firstPass.map((reward, k) => ({
          kind: "candidate" as const,
          taskId: SPLIT.test[k]!,
          trial: 0,
          reward,
          incumbentReward: null,
        })),
        ...pairs.map(([c, i], k) => ({
          kind: "pair" as const,
          taskId: SPLIT.test[k]!,
          trial: k,
          reward: c,
          incumbentReward: i,
        })),
      ]);
      const mean = firstPass.reduce((a, b) => a + b, 0) / firstPass.length;
      journal.gateRecords.finishGateDecision(RUN, iteration, {
        accept,
        stage: pairs.length ? "extra" : "full",
        testRuns: firstPass.length + pairs.length * 2,
        infraErrors: 0,
        valScore: mean,
        output: {
          output: {
            passed: accept,
            valScore: mean,
            previousBest: 5 / 12,
            suitePassed: 2,
            suiteTotal: 2,
            promoted: [],
            reasons: [],
            rule: "bayes",
            pGood: accept ? 0.95 : 0.2,
            stage: "full",
            testRuns: firstPass.length,
          },
        },
        details: {
          pGood: accept ? 0.95 : 0.2,
          pBad: accept ? 0.01 : 0.3,
          looks: {
            looks: [{ fraction: 0.5, tasksRun: 6, pGood: 0.7, pBad: 0.05 }],
            reason: accept ? "P(improvement) 0.950 ≥ 0.9" : "P(improvement) 0.200 < 0.9",
            pairs: pairs.length,
          },
        },
      });
    };
    for (const iteration of [1, 2]) {
      journal.runs.stepStarted(RUN, iteration, "benchmark");
      now += 60_000;
      journal.ledger.recordLlmCalls([call(iteration, "coding", 0.4), call(iteration, "agent", 0.1)]);
    }
    gate(1, true, [1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0], [[1, 0]]);
    gate(2, false, [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0], []);
    journal.runs.putIteration({
      runId: RUN,
      iteration: 1,
      outcome: "accepted",
      valScore: 0.5,
      bestBefore: 5 / 12,
      summary: {
        hypothesis: "the agent refunds without checking identity",
        changeSummary: "verify identity first",
        commit: acceptedSha,
        reasons: [],
      },
    });
    journal.runs.putIteration({
      runId: RUN,
      iteration: 2,
      outcome: "rejected",
      valScore: 1 / 6,
      bestBefore: 0.5,
      summary: {
        hypothesis: "answer the known questions directly",
        changeSummary: "a lookup table",
        reasons: ["held-out split: P(improvement) 0.200 < 0.9"],
      },
    });
    // A hostile candidate copied a held-out task into the agent: its diff is in the journal, never on a page.
    journal.pins.putFact(
      rejectedDiffKey(RUN, 2),
      `+// ${LEAKED.id}\n+const known = ${JSON.stringify(LEAKED.input.message)};`,
    );
    // The holdout's scoring: spent under the run, with no iteration.
    journal.ledger.recordLlmCall(call(null, "agent", 0.07));
    journal.pins.pin(
      `holdout:${RUN}`,
      JSON.stringify({ runId: RUN, tasks: 8, baseline: 0.375, final: 0.5, diff: 0.125, low: -0.15, high: 0.4 }),
    );
    journal.runs.commitTransition({
      runId: RUN,
      snapshot: {},
      state: "done",
      iteration: 2,
      bestValScore: 0.5,
      accepted: 1,
      rejected: 1,
      status: "done",
      stopReason: "max_iterations reached: 2",
    });
  } finally {
    journal.close();
  }
  trainTrace(root, SPLIT.train[0]!, 1, null);
  trainTrace(root, SPLIT.train[1]!, 0, "order O1002 was not cancelled");
  // A folder of a held-out task in the traces (a command benchmark's own writing): never listed or served.
  trainTrace(root, SPLIT.test[0]!, 1, null);
  return { acceptedSha };
}
