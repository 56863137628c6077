/**
 * The gate's shell around a rule driven through the seam (`paired`, the default; `bayes`): real journal, real
 * git, the real runner and adapter, the stochastic benchmark scored in process.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { GateOutput } from "../../../src/contracts.ts";
import { explainDecision } from "../../../src/gate/explain.ts";
import { type GateDeps, runGate } from "../../../src/gate/gate.ts";
import { firstPassMean } from "../../../src/gate/round.ts";
import { TRIAL_BASE_START, TRIAL_STRIDE } from "../../../src/gate/round-facts.ts";
import { suiteAfterRound } from "../../../src/gate/round-suite.ts";
import { INCUMBENT } from "../../../src/gate/rules/types.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { pinnedBaseline, pinnedSplit } from "../../../src/journal/pins.ts";
import { type StochasticExperiment, stochasticAgent, stochasticExperiment } from "../../helpers/stochastic.ts";

let exp: StochasticExperiment | undefined;
afterEach(() => {
  exp?.close();
  exp = undefined;
});

function deps(e: StochasticExperiment, more: Partial<GateDeps> = {}): GateDeps {
  return {
    root: e.root,
    config: e.config,
    journal: e.journal,
    log: e.log,
    runner: e.runner,
    repo: openRepo(e.root),
    checkAgent: async () => ({ ok: true }),
    runId: "run-1",
    iteration: 1,
    ...more,
  };
}

/** The loop's benchmark step before the edit: the incumbent's train run of this iteration. */
async function benchmarkStep(e: StochasticExperiment, iteration: number) {
  await e.runner.run({ split: "train", runId: "run-1", iteration, writeTraces: false });
}

const FIX = stochasticAgent({ skills: ["alpha", "delta"], variant: "fix" });

describe("the paired rule wired into the gate", () => {
  it("accepts a real fix with its interval, records the held-out first pass as val_score, and journals the round", async () => {
    exp = await stochasticExperiment("paired-fix");
    await benchmarkStep(exp, 1);
    exp.setAgent(FIX);
    const out = await runGate(deps(exp));
    expect(out.rule).toBe("paired");
    expect(out.passed).toBe(true);
    expect(out.improved).toBe(true);
    expect(out.winner).toBe("c1");
    expect(out.improvement!.low).toBeLessThan(out.improvement!.mean);
    expect(out.improvement!.high).toBeGreaterThan(out.improvement!.mean);

    const d = exp.journal.gateRecords.gateDecision("run-1", 1)!;
    const runs = exp.journal.gateRecords.gateRuns("run-1", 1);
    // One val_score for every rule: the mean of the candidate's first held-out run of each task.
    expect(out.valScore).toBe(firstPassMean(runs, "c1"));
    expect(d.valScore).toBe(out.valScore);
    const split = exp.journal.pins.pinned("split")!.content;
    const test: string[] = JSON.parse(split).test;
    const firstPass = runs.filter((r) => r.arm === "c1" && r.trial === TRIAL_BASE_START);
    expect(new Set(firstPass.map((r) => r.taskId))).toEqual(new Set(test));
    // Every candidate run has the incumbent's run of the same task and trial beside it: pairs, one batch.
    for (const r of runs.filter((x) => x.arm === "c1"))
      expect(runs.some((x) => x.arm === INCUMBENT && x.taskId === r.taskId && x.trial === r.trial)).toBe(true);
    expect(d.details.alphaUsed).toBeGreaterThan(0);
    expect(d.details.winner).toBe("c1");
    expect((d.details.candidates as { id: string; verdict: string }[]).map((c) => [c.id, c.verdict])).toEqual([
      ["c1", "winner"],
    ]);
  });

  it("rejects a neutral edit, and the next round never reuses an incumbent run of it", async () => {
    exp = await stochasticExperiment("paired-neutral");
    await benchmarkStep(exp, 1);
    exp.setAgent(stochasticAgent({ variant: "neutral-1" }));
    const first = await runGate(deps(exp));
    expect(first.passed).toBe(false);
    expect(first.improved).toBe(false);
    // A first pass cut short has no val_score: a mean over the few tasks run would read as a change.
    const test = pinnedSplit(exp.journal.pins)!.test;
    const c1 = exp.journal.gateRecords.gateRuns("run-1", 1).filter((r) => r.arm === "c1");
    const covered = new Set(c1.map((r) => r.taskId)).size;
    expect(first.valScore).toBe(covered < test.length ? null : firstPassMean(c1, "c1"));
    // The second round's candidate is a fix: it gets past the train screen to the held-out split.
    exp.setAgent(FIX);
    const second = await runGate(deps(exp, { iteration: 2 }));
    expect(second.testRuns).toBeGreaterThan(0);

    const trials = (it: number) =>
      new Set(
        exp!.journal.gateRecords
          .gateRuns("run-1", it)
          .filter((r) => r.arm === INCUMBENT)
          .map((r) => r.trial),
      );
    const [a, b] = [trials(1), trials(2)];
    expect(a.size).toBeGreaterThan(0);
    expect(b.size).toBeGreaterThan(0);
    for (const t of b) expect(a.has(t)).toBe(false);
    expect(Math.min(...b)).toBe(TRIAL_BASE_START + TRIAL_STRIDE);
    // The night's budget: the second round's share comes after the first's.
    const d1 = exp.journal.gateRecords.gateDecision("run-1", 1)!;
    const d2 = exp.journal.gateRecords.gateDecision("run-1", 2)!;
    expect((d2.details.night as { spentBefore: number }).spentBefore).toBe(d1.details.alphaUsed);
  });

  it("a round interrupted mid-race resumes from its journal: the same decision, no finished run made again", async () => {
    const e = await stochasticExperiment("paired-resume");
    exp = e;
    await benchmarkStep(e, 1);
    e.setAgent(FIX);
    const controller = new AbortController();
    let landed = 0;
    const runner = {
      ...e.runner,
      run: (req: Parameters<typeof e.runner.run>[0]) =>
        e.runner.run({
          ...req,
          onResult: (...a) => {
            req.onResult?.(...a);
            if (req.split === "test" && ++landed === 25) controller.abort();
          },
        }),
    };
    const killed = await runGate(deps(exp, { runner, signal: controller.signal })).catch((e: unknown) => e);
    expect((killed as { code?: string }).code).toBe("ABORTED");
    const before = exp.journal.gateRecords.gateRuns("run-1", 1);
    expect(before.length).toBeGreaterThanOrEqual(25);
    expect(exp.journal.gateRecords.gateDecision("run-1", 1)?.status).toBe("running");

    const ranBefore = exp.executor.ran.length;
    const resumed = await runGate(deps(exp));
    const after = exp.journal.gateRecords.gateRuns("run-1", 1);
    // Kept in order, nothing run twice: every test run the executor made after the resume is a new one.
    expect(after.slice(0, before.length)).toEqual(before);
    const again = exp.executor.ran
      .slice(ranBefore)
      .filter((b) => b.split === "test")
      .flatMap((b) => b.taskIds.map((id) => `${b.agentFile}:${id}:${b.trials.join(",")}`));
    expect(new Set(again).size).toBe(again.length);

    // The same round run whole, from the same journal state, decides the same.
    const other = await stochasticExperiment("paired-whole");
    try {
      await benchmarkStep(other, 1);
      other.setAgent(FIX);
      const whole: GateOutput = await runGate(deps(other));
      expect([resumed.passed, resumed.valScore, resumed.testRuns]).toEqual([
        whole.passed,
        whole.valScore,
        whole.testRuns,
      ]);
    } finally {
      other.close();
    }
  });

  it("gate --explain replays the round: the reward model, the night's budget, the decision", async () => {
    exp = await stochasticExperiment("paired-explain");
    await benchmarkStep(exp, 1);
    exp.setAgent(FIX);
    await runGate(deps(exp));
    const d = exp.journal.gateRecords.gateDecision("run-1", 1)!;
    const text = explainDecision(d, [], exp.journal.gateRecords.gateRuns("run-1", 1));
    expect(text).toMatch(/accepted by the paired rule/);
    expect(text).toMatch(/Rewards: pass\/fail rewards; a run of a task is worth/);
    expect(text).toMatch(/The night's error budget: 0\.1 expected false acceptances/);
    expect(text).toMatch(/c1: winner at \w+ — e-value/);
  });

  it("the bayes rule goes through the same seam: its first pass is the val_score, its pairs are journaled as arms", async () => {
    exp = await stochasticExperiment("bayes-seam", { gate_rule: "bayes" });
    await benchmarkStep(exp, 1);
    exp.setAgent(FIX);
    const out = await runGate(deps(exp));
    expect(out.rule).toBe("bayes");
    expect(out.improved).toBe(out.passed);
    const runs = exp.journal.gateRecords.gateRuns("run-1", 1);
    expect(out.valScore).toBe(firstPassMean(runs, "c1"));
    const d = exp.journal.gateRecords.gateDecision("run-1", 1)!;
    expect(explainDecision(d, [], runs)).toMatch(/order seed \d+/);
  });

  it("suite promotion never takes a train task the winner memorised, however well it passes it", async () => {
    const e = await stochasticExperiment("paired-memorised");
    exp = e;
    await benchmarkStep(e, 1);
    const split = pinnedSplit(e.journal.pins)!;
    const incumbentHash = pinnedBaseline(e.journal.pins)!.agentHash!;
    e.setAgent(FIX);
    const train = (await e.runner.run({ split: "train", runId: "run-1", iteration: 1, writeTraces: false })).results;
    const round = (memorised: string[]) =>
      suiteAfterRound({
        runner: e.runner,
        taskResults: e.journal.taskResults,
        suite: { tasks: [], threshold: 0.8, last_results: {} },
        threshold: 0.8,
        split,
        iteration: 1,
        winner: { train, agentFile: undefined, memorised },
        incumbent: { file: join(e.root, "agent", "agent.ts"), hash: incumbentHash },
        request: { runId: "run-1", iteration: 1 },
      });
    const free = await round([]);
    expect(free.promoted.length).toBeGreaterThan(2);
    const memorised = free.promoted.slice(0, 2);
    const held = await round(memorised);
    expect(held.promoted).toEqual(free.promoted.slice(2));
    for (const id of memorised) expect(held.suite.tasks).not.toContain(id);
  });
});
