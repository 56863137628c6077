import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Limits } from "../../../machines/stop-rules.ts";
import { stopReason } from "../../../machines/stop-rules.ts";
import { ManualClock } from "../../../src/clock.ts";
import type { GateOutput } from "../../../src/contracts.ts";
import { Daemon, type Steps } from "../../../src/daemon/daemon.ts";
import { AbortedError, HarnessError } from "../../../src/errors.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import { createCheck } from "../../../src/steps/check.ts";
import { tempDir } from "../../helpers/temp.ts";

const noLimits: Limits = { patience: 100, maxIterations: null, budgetUsd: null, deadline: null };

interface Fakes {
  gate?: (iteration: number, best: number | null) => GateOutput;
  changed?: (iteration: number) => boolean;
  failing?: Partial<Record<keyof Steps, (iteration: number, attempt: number) => Error | null>>;
  spend?: (iteration: number) => number;
  onStep?: (step: keyof Steps, iteration: number) => void;
  /** This step never finishes on its own: it waits to be aborted. */
  hangAt?: keyof Steps;
  editSaw?: (input: Parameters<Steps["edit"]>[0] extends infer I ? Omit<I, "runId"> : never) => void;
}

function fakeSteps(clock: ManualClock, calls: string[], fakes: Fakes = {}): Steps {
  const attempts = new Map<string, number>();
  const maybeFail = (step: keyof Steps, iteration: number) => {
    const key = `${step}:${iteration}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    calls.push(key);
    fakes.onStep?.(step, iteration);
    const error = fakes.failing?.[step]?.(iteration, attempt);
    if (error) throw error;
  };
  const pass = (valScore: number, best: number | null): GateOutput => ({
    passed: true,
    valScore,
    previousBest: best,
    suitePassed: 1,
    suiteTotal: 1,
    promoted: [],
    reasons: [],
  });
  return {
    check: async ({ iteration }) => {
      maybeFail("check", iteration);
      return { now: clock.now(), spentUsd: fakes.spend?.(iteration) ?? 0, stopRequested: false };
    },
    benchmark: async ({ iteration }) => {
      maybeFail("benchmark", iteration);
      return { agentHash: "h", trainScore: 0.5, passed: 1, total: 2 };
    },
    analyze: async ({ iteration }) => {
      maybeFail("analyze", iteration);
      return { patterns: [`pattern ${iteration}`], notes: `notes ${iteration}` };
    },
    edit: async ({ iteration, trainScore, analysis }) => {
      maybeFail("edit", iteration);
      fakes.editSaw?.({ iteration, trainScore, analysis });
      return {
        changed: fakes.changed?.(iteration) ?? true,
        hypothesis: `h${iteration}`,
        changeSummary: "c",
        commitMessage: "m",
        pattern: "p",
        needsFromHuman: "none",
      };
    },
    gate: async ({ iteration, bestValScore }, signal) => {
      maybeFail("gate", iteration);
      if (fakes.hangAt === "gate") {
        await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new AbortedError())));
      }
      return fakes.gate?.(iteration, bestValScore) ?? pass((bestValScore ?? 0) + 0.1, bestValScore);
    },
    record: async ({ iteration, gate }) => {
      maybeFail("record", iteration);
      return { accepted: gate.passed, commit: gate.passed ? `c${iteration}` : null };
    },
    learn: async ({ iteration }) => {
      maybeFail("learn", iteration);
      return { written: true };
    },
    summarize: async () => {
      calls.push("summarize");
      return { written: true };
    },
  };
}

function setup(limits: Partial<Limits> = {}, fakes: Fakes = {}, stepAttempts = 3) {
  const dir = tempDir();
  const journal = Journal.open(join(dir, "journal.sqlite"));
  const clock = new ManualClock(Date.parse("2026-11-24T20:00:00Z"), true);
  const { log, place } = createLogger({ stdout: false });
  const calls: string[] = [];
  const steps = fakeSteps(clock, calls, fakes);
  journal.runs.createRun("run-1", {});
  const daemon = new Daemon("run-1", { journal: journal.runs, log, place, steps, clock, retryBaseMs: 10 });
  const start = () =>
    daemon.start({
      input: {
        runId: "run-1",
        lastIteration: 0,
        bestValScore: 0.5,
        limits: { ...noLimits, ...limits },
        stepAttempts,
      },
    });
  return { journal, clock, calls, daemon, start };
}

describe("loop machine driven with fake steps", () => {
  it("runs N iterations through every step in order, then summarizes", async () => {
    const { start, calls, journal } = setup({ maxIterations: 3 });
    const result = await start();
    expect(result.status).toBe("done");
    expect(result.context.stopReason).toMatch(/max_iterations reached: 3/);
    expect(calls.filter((c) => c !== "summarize" && !c.startsWith("check"))).toEqual(
      [1, 2, 3].flatMap((i) => ["benchmark", "analyze", "edit", "gate", "record", "learn"].map((s) => `${s}:${i}`)),
    );
    expect(calls.at(-1)).toBe("summarize");
    const run = journal.runs.getRun("run-1")!;
    expect(run.status).toBe("done");
    expect(run.accepted).toBe(3);
    expect(run.bestValScore).toBeCloseTo(0.8);
    const steps = journal.runs.steps("run-1");
    expect(steps.filter((s) => s.status !== "done")).toEqual([]);
    expect(steps.filter((s) => s.step === "gate").map((s) => s.iteration)).toEqual([1, 2, 3]);
  });

  it("hands each iteration's train score and analysis to its edit through the context", async () => {
    const seen: unknown[] = [];
    const { start } = setup({ maxIterations: 2 }, { editSaw: (input) => seen.push(input) });
    await start();
    expect(seen).toEqual([
      { iteration: 1, trainScore: 0.5, analysis: { patterns: ["pattern 1"], notes: "notes 1" } },
      { iteration: 2, trainScore: 0.5, analysis: { patterns: ["pattern 2"], notes: "notes 2" } },
    ]);
  });

  it("counts alternating gate passes and failures", async () => {
    const { start } = setup(
      { maxIterations: 6 },
      {
        gate: (i, best) => ({
          passed: i % 2 === 1,
          valScore: i % 2 === 1 ? (best ?? 0) + 0.05 : 0.1,
          previousBest: best,
          suitePassed: 1,
          suiteTotal: 1,
          promoted: [],
          reasons: i % 2 === 1 ? [] : ["val_score below best"],
        }),
      },
    );
    const { context } = await start();
    expect(context.accepted).toBe(3);
    expect(context.rejected).toBe(3);
    expect(context.bestValScore).toBeCloseTo(0.65);
  });

  it("stops after `patience` flat iterations", async () => {
    const { start, calls } = setup(
      { patience: 5 },
      {
        gate: (_i, best) => ({
          passed: true,
          valScore: best,
          previousBest: best,
          suitePassed: 1,
          suiteTotal: 1,
          promoted: [],
          reasons: [],
        }),
      },
    );
    const { context, status } = await start();
    expect(status).toBe("done");
    expect(context.finished).toBe(5);
    expect(context.stopReason).toMatch(/patience exhausted: 5/);
    expect(calls.filter((c) => c.startsWith("benchmark"))).toHaveLength(5);
  });

  it("resets patience on a new best", async () => {
    const { start } = setup(
      { patience: 2 },
      {
        gate: (i, best) => ({
          passed: true,
          valScore: i === 2 ? (best ?? 0) + 0.1 : best,
          previousBest: best,
          suitePassed: 1,
          suiteTotal: 1,
          promoted: [],
          reasons: [],
        }),
      },
    );
    const { context } = await start();
    // 1 flat, 2 new best (reset), 3 and 4 flat.
    expect(context.finished).toBe(4);
  });

  it("a rule that judges improvement (bayes, paired): an accepted change resets patience even when its one pass scored below the best", async () => {
    const { start } = setup(
      { patience: 2 },
      {
        gate: (i, best) => ({
          passed: i <= 3,
          valScore: (best ?? 0.5) - 0.05,
          previousBest: best,
          suitePassed: 1,
          suiteTotal: 1,
          promoted: [],
          reasons: i <= 3 ? [] : ["held-out split: P(improvement) 0.1 is not above 0.55"],
          rule: "bayes",
          improved: i <= 3,
          pGood: i <= 3 ? 0.9 : 0.1,
        }),
      },
    );
    const { context } = await start();
    // 1-3 accepted (each judged a real improvement), 4 and 5 rejected: patience runs out after 5.
    expect(context.accepted).toBe(3);
    expect(context.finished).toBe(5);
    expect(context.stopReason).toMatch(/patience exhausted: 2/);
  });

  it("an edit that changes nothing skips the gate and the record", async () => {
    const { start, calls } = setup({ maxIterations: 2 }, { changed: (i) => i !== 1 });
    const { context } = await start();
    expect(calls).not.toContain("gate:1");
    expect(calls).not.toContain("record:1");
    expect(calls).toContain("learn:1");
    expect(calls).toContain("gate:2");
    expect(context.noChange).toBe(1);
  });

  it("stops when the budget is reached", async () => {
    const { start, calls } = setup({ budgetUsd: 1 }, { spend: (i) => i * 0.4 });
    const { context } = await start();
    expect(context.stopReason).toMatch(/budget reached: \$1\.20 of \$1\.00/);
    // Spend seen before iterations 1..4: 0, 0.4, 0.8, 1.2.
    expect(calls.filter((c) => c.startsWith("benchmark"))).toHaveLength(3);
  });

  it("stops at the deadline on the injected clock", async () => {
    const deadline = Date.parse("2026-11-24T20:30:00Z");
    let clockRef: ManualClock | null = null;
    const { start, clock, calls } = setup(
      { deadline },
      { onStep: (step) => step === "learn" && clockRef?.advance(10 * 60_000) },
    );
    clockRef = clock;
    const { context } = await start();
    expect(context.stopReason).toMatch(/deadline reached: 2026-11-24T20:30:00.000Z/);
    expect(calls.filter((c) => c.startsWith("benchmark"))).toHaveLength(3);
  });

  it("a deadline is on the wall clock: an NTP step past it stops the run at the next check, no duration passed", async () => {
    const deadline = Date.parse("2026-11-24T20:30:00Z");
    const dir = tempDir();
    const journal = Journal.open(join(dir, "journal.sqlite"));
    const clock = new ManualClock(Date.parse("2026-11-24T20:00:00Z"));
    const { log, place } = createLogger({ stdout: false });
    const calls: string[] = [];
    const fakes: Fakes = { onStep: (step, i) => step === "learn" && i === 2 && clock.stepWall(3_600_000) };
    // The production stop check: the wall clock, the ledger and the stop request.
    const steps = { ...fakeSteps(clock, calls, fakes), check: createCheck(journal, clock) };
    journal.runs.createRun("run-1", {});
    const daemon = new Daemon("run-1", { journal: journal.runs, log, place, steps, clock });
    const limits = { ...noLimits, deadline };
    const { context } = await daemon.start({
      input: { runId: "run-1", lastIteration: 0, bestValScore: 0.5, limits, stepAttempts: 3 },
    });
    expect(context.stopReason).toMatch(/deadline reached: 2026-11-24T20:30:00.000Z/);
    expect(calls.filter((c) => c.startsWith("benchmark"))).toHaveLength(2);
    expect(clock.monotonic()).toBe(0);
    journal.close();
  });

  it("retries a failing step, then succeeds", async () => {
    const { start, calls, journal } = setup(
      { maxIterations: 1 },
      { failing: { analyze: (_i, attempt) => (attempt < 3 ? new Error("flaky") : null) } },
    );
    const { status } = await start();
    expect(status).toBe("done");
    expect(calls.filter((c) => c === "analyze:1")).toHaveLength(3);
    expect(journal.runs.getStep("run-1", 1, "analyze")).toMatchObject({ status: "done", attempts: 3 });
  });

  it("pauses the run with the reason once the attempts are used up, and resume continues at that step", async () => {
    const { start, calls, journal } = setup(
      { maxIterations: 3 },
      { failing: { gate: () => new Error("gate exploded") } },
      2,
    );
    const { status, context } = await start();
    expect(status).toBe("paused");
    expect(context.lastError).toMatchObject({ step: "gate", message: "gate exploded", kind: "retryable" });
    expect(context.pausedIn).toBe("gate");
    expect(calls.filter((c) => c === "gate:1")).toHaveLength(2);
    expect(calls).not.toContain("record:1");
    const run = journal.runs.getRun("run-1")!;
    expect(run.status).toBe("paused");
    expect(run.lastError).toBe("gate exploded");
    expect(journal.runs.getStep("run-1", 1, "gate")?.status).toBe("failed");
  });

  it("a step that runs out of budget ends the run cleanly, with the closing summary", async () => {
    const { start, calls, journal } = setup(
      { maxIterations: 5 },
      {
        failing: {
          edit: (i) => (i === 2 ? new HarnessError("BUDGET_EXHAUSTED", "budget_usd 5 reached: $5.00 spent") : null),
        },
      },
    );
    const { status, context } = await start();
    expect(status).toBe("done");
    expect(context.stopReason).toBe("budget_usd 5 reached: $5.00 spent");
    // Not retried, nothing gated, and the summary still written.
    expect(calls.filter((c) => c === "edit:2")).toHaveLength(1);
    expect(calls).not.toContain("gate:2");
    expect(calls.at(-1)).toBe("summarize");
    expect(journal.runs.getRun("run-1")).toMatchObject({
      status: "done",
      stopReason: "budget_usd 5 reached: $5.00 spent",
    });
  });

  it("an error retrying cannot fix (a rejected API key) pauses at once for the operator, without retries", async () => {
    const { start, calls } = setup(
      { maxIterations: 3 },
      { failing: { analyze: () => new HarnessError("LLM_REJECTED", "401: check ANTHROPIC_API_KEY") } },
      3,
    );
    const { status, context } = await start();
    expect(status).toBe("paused");
    expect(context.pausedIn).toBe("analyze");
    expect(calls.filter((c) => c === "analyze:1")).toHaveLength(1);
    expect(context.lastError).toMatchObject({ step: "analyze", code: "LLM_REJECTED", kind: "fatal" });
  });

  it("pauses on an outage and continues from the same step on resume", async () => {
    let outage = true;
    const { start, calls, journal } = setup(
      { maxIterations: 1 },
      {
        failing: {
          edit: () => (outage ? new HarnessError("LLM_UNAVAILABLE", "API down for 30 min") : null),
        },
      },
    );
    const paused = await start();
    expect(paused.status).toBe("paused");
    expect(paused.context.pausedIn).toBe("edit");
    expect(calls.filter((c) => c === "edit:1")).toHaveLength(1);
    const run = journal.runs.getRun("run-1")!;
    expect(run.status).toBe("paused");

    outage = false;
    const clock = new ManualClock(0, true);
    const { log, place } = createLogger({ stdout: false });
    const resumedCalls: string[] = [];
    const again = new Daemon("run-1", {
      journal: journal.runs,
      log,
      place,
      clock,
      steps: fakeSteps(clock, resumedCalls),
    });
    const result = await again.start({ snapshot: run.snapshot });
    expect(result.status).toBe("done");
    expect(resumedCalls.filter((c) => !c.startsWith("check") && c !== "summarize")).toEqual([
      "edit:1",
      "gate:1",
      "record:1",
      "learn:1",
    ]);
  });

  it.each([
    [
      "check, whose actor was observe",
      '{"status":"active","value":"check","historyValue":{},"context":{"runId":"run-1","iteration":0,"bestValScore":0.5,"limits":{"patience":5,"maxIterations":1,"budgetUsd":null,"deadline":null},"stepAttempts":3,"attempt":0,"finished":0,"flat":0,"accepted":0,"rejected":0,"noChange":0,"spentUsd":0,"stopReason":null,"lastError":null,"pausedIn":null,"trainScore":null,"bestBefore":null,"edit":null,"gate":null,"record":null},"children":{"0.loop.check":{"snapshot":{"status":"active","input":{"runId":"run-1","iteration":0}},"src":"observe","syncSnapshot":false}}}',
      ["check:0", "benchmark:1", "analyze:1", "edit:1", "gate:1", "record:1", "learn:1", "check:1", "summarize"],
    ],
    [
      "closing, now summarize",
      '{"status":"active","value":"closing","historyValue":{},"context":{"runId":"run-1","iteration":0,"bestValScore":0.5,"limits":{"patience":5,"maxIterations":1,"budgetUsd":null,"deadline":null},"stepAttempts":3,"attempt":0,"finished":0,"flat":0,"accepted":0,"rejected":0,"noChange":0,"spentUsd":0,"stopReason":"operator requested stop","lastError":null,"pausedIn":null,"trainScore":null,"bestBefore":null,"edit":null,"gate":null,"record":null},"children":{"0.loop.closing":{"snapshot":{"status":"active","input":{"runId":"run-1","stopReason":"operator requested stop","bestValScore":0.5,"accepted":0,"rejected":0,"iterations":0}},"src":"summarize","syncSnapshot":false}}}',
      ["summarize"],
    ],
  ])("a snapshot persisted under the old names resumes: %s", async (_name, persisted, expected) => {
    const journal = Journal.open(join(tempDir(), "journal.sqlite"));
    journal.runs.createRun("run-1", {});
    const clock = new ManualClock(0, true);
    const { log, place } = createLogger({ stdout: false });
    const calls: string[] = [];
    const daemon = new Daemon("run-1", { journal: journal.runs, log, place, clock, steps: fakeSteps(clock, calls) });
    const result = await daemon.start({ snapshot: JSON.parse(persisted) });
    expect(result.status).toBe("done");
    expect(calls).toEqual(expected);
    expect(journal.runs.getRun("run-1")!.state).toBe("done");
    journal.close();
  });

  it("a restored snapshot re-runs only the step that was in flight", async () => {
    let reachedGate: () => void = () => {};
    const atGate = new Promise<void>((resolve) => {
      reachedGate = resolve;
    });
    const { start, daemon, journal } = setup(
      { maxIterations: 1 },
      { hangAt: "gate", onStep: (step) => step === "gate" && reachedGate() },
    );
    const first = start();
    await atGate;
    await daemon.close();
    expect((await first).status).toBe("stopped");
    const run = journal.runs.getRun("run-1")!;
    expect(run.state).toBe("gate");
    const clock = new ManualClock(0, true);
    const { log, place } = createLogger({ stdout: false });
    const calls: string[] = [];
    const again = new Daemon("run-1", { journal: journal.runs, log, place, clock, steps: fakeSteps(clock, calls) });
    const result = await again.start({ snapshot: run.snapshot });
    expect(result.status).toBe("done");
    expect(calls.filter((c) => !c.startsWith("check") && c !== "summarize")).toEqual(["gate:1", "record:1", "learn:1"]);
    expect(journal.runs.steps("run-1").filter((s) => s.status === "started")).toEqual([]);
  });
});

describe("stop rules", () => {
  const seen = { now: 0, spentUsd: 0, stopRequested: false };
  it.each([
    ["nothing reached", noLimits, { finished: 3, flat: 2 }, seen, null],
    [
      "operator stop wins",
      { ...noLimits, budgetUsd: 1 },
      { finished: 0, flat: 0 },
      { ...seen, stopRequested: true, spentUsd: 5 },
      /operator/,
    ],
    [
      "budget at exactly the limit",
      { ...noLimits, budgetUsd: 2 },
      { finished: 0, flat: 0 },
      { ...seen, spentUsd: 2 },
      /budget/,
    ],
    ["budget just under", { ...noLimits, budgetUsd: 2 }, { finished: 0, flat: 0 }, { ...seen, spentUsd: 1.99 }, null],
    ["deadline passed", { ...noLimits, deadline: 100 }, { finished: 0, flat: 0 }, { ...seen, now: 100 }, /deadline/],
    ["deadline ahead", { ...noLimits, deadline: 100 }, { finished: 0, flat: 0 }, { ...seen, now: 99 }, null],
    ["max iterations", { ...noLimits, maxIterations: 4 }, { finished: 4, flat: 0 }, seen, /max_iterations/],
    ["patience", { ...noLimits, patience: 5 }, { finished: 9, flat: 5 }, seen, /patience/],
    ["patience not yet", { ...noLimits, patience: 5 }, { finished: 9, flat: 4 }, seen, null],
  ] as const)("%s", (_name, limits, progress, observation, expected) => {
    const reason = stopReason(limits, progress, observation);
    if (expected === null) expect(reason).toBeNull();
    else expect(reason).toMatch(expected);
  });
});
