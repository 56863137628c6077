/**
 * The orchestrator's own cost per iteration with zero-cost steps: milliseconds per transition
 * (each one a committed FULL-sync transaction plus the step's `started` row) and journal bytes per iteration.
 * Run directly: `tsx bench/orchestrator.ts`.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../src/clock.ts";
import { Daemon, type Steps } from "../src/daemon/daemon.ts";
import { Journal } from "../src/journal/journal.ts";
import { createLogger } from "../src/log.ts";

const ITERATIONS = 300;

function zeroCostSteps(): Steps {
  const edit = {
    changed: true,
    hypothesis: "h",
    changeSummary: "c",
    commitMessage: "m",
    pattern: "p",
    needsFromHuman: "none",
  };
  return {
    check: async () => ({ now: Date.now(), spentUsd: 0, stopRequested: false }),
    benchmark: async () => ({ agentHash: "h", trainScore: 0.5, passed: 1, total: 2 }),
    analyze: async () => ({ patterns: ["p"] }),
    edit: async () => edit,
    gate: async ({ iteration, bestValScore }) => ({
      passed: iteration % 2 === 0,
      valScore: (bestValScore ?? 0) + 0.0001,
      previousBest: bestValScore,
      suitePassed: 1,
      suiteTotal: 1,
      promoted: [],
      reasons: [],
    }),
    record: async ({ gate }) => ({ accepted: gate.passed, commit: gate.passed ? "abc" : null }),
    learn: async () => ({ written: true }),
    summarize: async () => ({ written: true }),
  };
}

export async function benchOrchestrator(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "bench-orchestrator-"));
  const file = join(dir, "journal.sqlite");
  const journal = Journal.open(file);
  const { log, place } = createLogger({ stdout: false, level: "warn" });
  try {
    journal.createRun("bench", {});
    let transitions = 0;
    const daemon = new Daemon("bench", { journal, log, place, steps: zeroCostSteps(), clock: systemClock });
    const t0 = performance.now();
    const result = await daemon.start({
      input: {
        runId: "bench",
        lastIteration: 0,
        bestValScore: 0,
        limits: { patience: ITERATIONS + 1, maxIterations: ITERATIONS, budgetUsd: null, deadline: null },
        stepAttempts: 1,
      },
    });
    const ms = performance.now() - t0;
    transitions = journal.steps("bench").length;
    journal.close();
    const size = statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    // A checkpointed file is what stays on disk.
    const db = Journal.open(file);
    db.close();
    const settled = statSync(file).size;
    return {
      iterations: result.context.finished,
      transitions,
      ms_per_transition: Math.round((ms / transitions) * 1000) / 1000,
      ms_per_iteration: Math.round((ms / result.context.finished) * 100) / 100,
      journal_bytes_per_iteration: Math.round(settled / result.context.finished),
      journal_bytes_with_wal: size,
    };
  } finally {
    journal.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [k, v] of Object.entries(await benchOrchestrator())) process.stdout.write(`${k.padEnd(32)} ${v}\n`);
}
