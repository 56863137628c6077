/**
 * The orchestrator's own cost per iteration with zero-cost steps: milliseconds per transition
 * (each one a committed FULL-sync transaction plus the step's `started` row) and journal bytes per iteration,
 * broken down by phase so a regression shows where it is: the journal's commit, its reads, the snapshot
 * xstate persists, and the rest (the machine, promise hops, logging). The reference is one fsync'd commit of
 * a one-row transaction on the same disk. Run directly: `tsx bench/orchestrator.ts`.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Actor } from "xstate";
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

/** Wraps `obj[name]` to add its synchronous time to `spent[label]`. */
function timed<T extends object>(obj: T, name: keyof T & string, spent: Record<string, number>, label: string): void {
  const original = (obj as Record<string, unknown>)[name] as (...args: unknown[]) => unknown;
  (obj as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      spent[label] = (spent[label] ?? 0) + performance.now() - t;
    }
  };
}

/** One fsync'd commit of a one-row transaction, as the journal's pragmas set it up: the disk's floor. */
function commitFloorMs(dir: string, n = 300): number {
  const db = new Database(join(dir, "floor.sqlite"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  const commit = db.transaction((v: string) => insert.run(v));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) commit(`row ${i}`);
  const ms = (performance.now() - t0) / n;
  db.close();
  return ms;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export async function benchOrchestrator(): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), "bench-orchestrator-"));
  const file = join(dir, "journal.sqlite");
  const journal = Journal.open(file);
  const { log, place } = createLogger({ stdout: false, level: "warn" });
  try {
    journal.runs.createRun("bench", {});
    let transitions = 0;
    const spent: Record<string, number> = {};
    timed(journal.runs, "commitTransition", spent, "journal_commit");
    for (const read of ["getStep", "stepStarted", "getRun"] as const) timed(journal.runs, read, spent, "journal_other");
    timed(journal.ledger, "spend", spent, "journal_other");
    const actorProto = Actor.prototype as unknown as Record<string, unknown>;
    const persisted = actorProto.getPersistedSnapshot;
    timed(actorProto, "getPersistedSnapshot", spent, "snapshot");
    const daemon = new Daemon("bench", {
      journal: journal.runs,
      log,
      place,
      steps: zeroCostSteps(),
      clock: systemClock,
    });
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
    actorProto.getPersistedSnapshot = persisted;
    transitions = journal.runs.steps("bench").length;
    journal.close();
    const size = statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    // A checkpointed file is what stays on disk.
    const db = Journal.open(file);
    db.close();
    const settled = statSync(file).size;
    return {
      iterations: result.context.finished,
      transitions,
      ms_per_transition: round3(ms / transitions),
      "  journal commit (FULL)": round3((spent.journal_commit ?? 0) / transitions),
      "  journal reads and started rows": round3((spent.journal_other ?? 0) / transitions),
      "  xstate persisted snapshot": round3((spent.snapshot ?? 0) / transitions),
      "  machine, promise hops, logging": round3(
        (ms - (spent.journal_commit ?? 0) - (spent.journal_other ?? 0) - (spent.snapshot ?? 0)) / transitions,
      ),
      fsync_commit_floor_ms: round3(commitFloorMs(dir)),
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
