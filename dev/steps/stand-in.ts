import type { Clock } from "../../src/clock.ts";
import type { Steps } from "../../src/contracts.ts";
import type { Stores } from "../../src/journal/stores.ts";
import { learnIteration, writeClosingSummary } from "../../src/learnings/learnings.ts";
import { createCheck } from "../../src/steps/check.ts";
import { appendResult, LOOP_ITERATION_COLUMN } from "../../src/workspace/files.ts";
import type { Paths } from "../../src/workspace/paths.ts";

/**
 * Deterministic stand-in steps with real, idempotent side effects (results.tsv rows, and learnings entries
 * through the real learnings module).
 * They drive the real machine, journal and CLI in crash tests and the orchestrator benchmark.
 */
export function createStandInSteps(opts: {
  paths: Paths;
  journal: Pick<Stores, "runs" | "ledger">;
  clock: Clock;
  delayMs: number;
}): Steps {
  const { paths, journal, clock, delayMs } = opts;
  const pause = (signal: AbortSignal) => (delayMs > 0 ? clock.sleep(delayMs, signal) : Promise.resolve());
  return {
    check: createCheck(journal, clock),
    benchmark: async (_input, signal) => {
      await pause(signal);
      return { agentHash: "stand-in", trainScore: 0.5, passed: 5, total: 10 };
    },
    analyze: async (_input, signal) => {
      await pause(signal);
      return { patterns: ["stand-in pattern"] };
    },
    edit: async ({ iteration }, signal) => {
      await pause(signal);
      return {
        changed: iteration % 5 !== 0,
        hypothesis: `stand-in hypothesis ${iteration}`,
        changeSummary: `stand-in change ${iteration}`,
        commitMessage: `stand-in change ${iteration}`,
        pattern: "stand-in pattern",
        needsFromHuman: "none",
      };
    },
    gate: async ({ iteration, bestValScore }, signal) => {
      await pause(signal);
      const passed = iteration % 2 === 1;
      const valScore = passed ? Math.min(1, (bestValScore ?? 0) + 0.01) : 0;
      return {
        passed,
        valScore,
        previousBest: bestValScore,
        suitePassed: 1,
        suiteTotal: 1,
        promoted: [],
        reasons: passed ? [] : ["stand-in rejection"],
      };
    },
    record: async ({ iteration, gate }, signal) => {
      await pause(signal);
      if (!gate.passed) return { accepted: false, commit: null };
      appendResult(paths.results, {
        valScore: gate.valScore ?? 0,
        commit: `standin${iteration}`,
        evalsPassed: gate.suitePassed,
        evalsTotal: gate.suiteTotal,
        timestamp: new Date(clock.now()).toISOString(),
        extra: { [LOOP_ITERATION_COLUMN]: String(iteration) },
      });
      return { accepted: true, commit: `standin${iteration}` };
    },
    learn: async (input, signal) => {
      await pause(signal);
      const output = learnIteration(paths.root, input);
      journal.runs.putIteration({
        runId: input.runId,
        iteration: input.iteration,
        outcome: input.record ? (input.record.accepted ? "accepted" : "rejected") : "no_change",
        valScore: input.gate?.valScore ?? null,
        bestBefore: input.gate?.previousBest ?? null,
        summary: { reasons: input.gate?.reasons ?? [] },
      });
      return output;
    },
    summarize: async (input, signal) => {
      await pause(signal);
      return { written: writeClosingSummary(paths.root, input) };
    },
  };
}
