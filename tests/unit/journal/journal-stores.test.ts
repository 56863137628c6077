import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { HarnessError } from "../../../src/errors.ts";
import { foldIntoHistory } from "../../../src/gate/history.ts";
import { bestSoFar } from "../../../src/gate/records.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { MIGRATIONS } from "../../../src/journal/migrations.ts";
import type { LlmCallRow } from "../../../src/journal/stores.ts";
import { damageRootPage } from "../../helpers/journal-damage.ts";
import { tempDir } from "../../helpers/temp.ts";

const call = (runId: string, costUsd: number): LlmCallRow => ({
  runId,
  iteration: 1,
  stepKey: null,
  role: "coding",
  model: "m",
  promptHash: null,
  inputTokens: 1,
  outputTokens: 1,
  cacheCreationTokens: 0,
  cacheReadTokens: 0,
  costUsd,
  latencyMs: 1,
  stopReason: null,
  response: null,
});

/** The journal as the release before stores wrote it: schema 6, a decided bayes gate, a rebaseline fact. */
function oldJournal(file: string): void {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  for (const [i, sql] of MIGRATIONS.slice(0, 6).entries()) {
    db.exec(sql);
    db.pragma(`user_version = ${i + 1}`);
  }
  const run = db.prepare(
    "INSERT INTO runs (id, status, created_at, updated_at, config, iteration, accepted, rejected, best_val_score) VALUES (?, 'done', ?, ?, '{}', 2, 1, 0, ?)",
  );
  run.run("run-before", 1_000, 1_000, 0.7);
  run.run("run-after", 3_000, 3_000, 0.55);
  db.prepare("INSERT INTO experiment_facts (key, value, updated_at) VALUES ('rebaselined_at', '2000', 2000)").run();
  db.prepare(
    `INSERT INTO gate_decisions (run_id, iteration, rule, order_seed, candidate_hash, incumbent_hash, setup, status,
       accept, stage, p_good, p_bad, expected_gain, test_runs, infra_errors, val_score, looks, output, created_at, decided_at)
     VALUES (?, ?, 'bayes', 77, 'c', 'i', '{"trials":1}', 'decided', 1, 'full', 0.97, 0.01, 0.05, 12, 1, ?, '{"reason":"clear"}', '{}', ?, ?)`,
  ).run("run-before", 1, 0.7, 1_100, 1_200);
  db.prepare(
    `INSERT INTO gate_decisions (run_id, iteration, rule, order_seed, candidate_hash, incumbent_hash, setup, status,
       accept, stage, test_runs, infra_errors, val_score, looks, output, created_at)
     VALUES ('run-after', 3, 'original', 0, '', '', '{}', 'decided', 1, 'full', 10, 0, 0.55, NULL, '{}', 3100)`,
  ).run();
  db.prepare("INSERT INTO pinned (name, content, sha256, updated_at) VALUES ('baseline', ?, 'x', 2000)").run(
    JSON.stringify({ valScore: 0.5 }),
  );
  db.close();
}

describe("the journal's stores", () => {
  it("migrates an older journal: rule fields into details, runs after the rebaseline into the second generation", () => {
    const file = join(tempDir(), "journal.sqlite");
    oldJournal(file);
    const journal = Journal.open(file);
    try {
      expect(journal.schemaVersion()).toBe(MIGRATIONS.length);
      const bayes = journal.gateRecords.gateDecision("run-before", 1)!;
      expect(bayes).toMatchObject({ rule: "bayes", accept: true, stage: "full", testRuns: 12, infraErrors: 1 });
      expect(bayes.valScore).toBe(0.7);
      expect(bayes.details).toEqual({
        orderSeed: 77,
        setup: { trials: 1 },
        pGood: 0.97,
        pBad: 0.01,
        expectedGain: 0.05,
        looks: { reason: "clear" },
      });
      // A rule that kept none of them still reads.
      expect(journal.gateRecords.gateDecision("run-after", 3)!.details).toMatchObject({ orderSeed: 0, looks: null });
      expect(journal.runs.generations().map((g) => [g.id, g.openedAt])).toEqual([
        [1, 1_000],
        [2, 2_000],
      ]);
      expect(journal.runs.getRun("run-before")!.generation).toBe(1);
      expect(journal.runs.getRun("run-after")!.generation).toBe(2);
      expect(journal.pins.fact("rebaselined_at")).toBeUndefined();
      // The old scorer's 0.7 is history; the current generation's best is its own.
      expect(bestSoFar(journal)).toBe(0.55);
      expect(journal.integrityCheck()).toBe("ok");
    } finally {
      journal.close();
    }
  });

  it("a transition, its step outcome and the ledger rows commit together, or not at all", () => {
    const journal = Journal.open(join(tempDir(), "journal.sqlite"));
    try {
      journal.runs.createRun("r", {});
      const transition = {
        runId: "r",
        snapshot: { value: "analyze" },
        state: "analyze",
        iteration: 1,
        bestValScore: 0.5,
        accepted: 0,
        rejected: 0,
        ended: { iteration: 1, step: "benchmark", status: "done" as const, outcome: { trainScore: 0.4 } },
        started: { iteration: 1, step: "analyze" },
      };
      expect(() =>
        journal.transaction(() => {
          journal.runs.commitTransition(transition);
          journal.ledger.recordLlmCall(call("r", 0.25));
          throw new Error("the process dies between the writes");
        }),
      ).toThrow(/dies/);
      expect(journal.runs.getStep("r", 1, "benchmark")).toBeUndefined();
      expect(journal.runs.getRun("r")!.state).toBeNull();
      expect(journal.ledger.spend("r").calls).toBe(0);

      journal.transaction(() => {
        journal.runs.commitTransition(transition);
        journal.ledger.recordLlmCall(call("r", 0.25));
      });
      expect(journal.runs.getStep("r", 1, "benchmark")).toMatchObject({ status: "done", outcome: { trainScore: 0.4 } });
      expect(journal.runs.getStep("r", 1, "analyze")).toMatchObject({ status: "started", attempts: 1 });
      expect(journal.runs.getRun("r")!.state).toBe("analyze");
      expect(journal.ledger.spend("r").totalUsd).toBe(0.25);
    } finally {
      journal.close();
    }
  });

  it("a task result and its agent calls are one write; a second delivery of it writes nothing", () => {
    const journal = Journal.open(join(tempDir(), "journal.sqlite"));
    try {
      const row = {
        agentHash: "h",
        split: "test" as const,
        taskId: "t1",
        trial: 0,
        reward: 1,
        durationMs: 5,
        error: "held-out text",
        runId: "r",
      };
      expect(journal.taskResults.putTaskResult(row, [call("r", 0.1), call("r", 0.2)], "delivery-1")).toBe(true);
      expect(journal.taskResults.putTaskResult(row, [call("r", 0.1), call("r", 0.2)], "delivery-1")).toBe(false);
      expect(journal.ledger.spend("r")).toMatchObject({ calls: 2 });
      expect(journal.ledger.spend("r").totalUsd).toBeCloseTo(0.3, 10);
      // A test task's error text could carry its content: never kept.
      expect(journal.taskResults.getTaskResult("h", "test", "t1")).toMatchObject({ reward: 1, error: null });
    } finally {
      journal.close();
    }
  });

  it("generations: a new one holds the runs started after it; the best score looks at the current one only", () => {
    const journal = Journal.open(join(tempDir(), "journal.sqlite"));
    try {
      journal.pins.pin("baseline", JSON.stringify({ valScore: 0.4 }));
      expect(journal.runs.currentGeneration()).toBe(1);
      journal.runs.createRun("old", {});
      journal.gateRecords.startGateDecision({
        runId: "old",
        iteration: 1,
        rule: "original",
        candidateHash: "",
        incumbentHash: "",
        details: {},
      });
      journal.gateRecords.finishGateDecision("old", 1, {
        accept: true,
        stage: "full",
        testRuns: 4,
        infraErrors: 0,
        valScore: 0.9,
        output: {},
        details: { looks: { reason: "better" } },
      });
      expect(bestSoFar(journal)).toBe(0.9);

      expect(journal.runs.openGeneration("rebaseline")).toBe(2);
      journal.pins.pin("baseline", JSON.stringify({ valScore: 0.3 }));
      expect(bestSoFar(journal)).toBe(0.3);
      journal.runs.createRun("new", {});
      expect(journal.runs.runs(1).map((r) => r.id)).toEqual(["old"]);
      expect(journal.runs.runs(2).map((r) => r.id)).toEqual(["new"]);
      expect(journal.runs.latestRun(1)!.id).toBe("old");
      expect(journal.runs.latestRun()!.id).toBe("new");
      // Earlier generations stay queryable.
      expect(journal.gateRecords.generationDecisions(1).map((d) => d.valScore)).toEqual([0.9]);
      expect(journal.gateRecords.generationDecisions(2)).toEqual([]);
      // The details a rule starts with and those it ends with are one object.
      expect(journal.gateRecords.gateDecision("old", 1)!.details).toEqual({ looks: { reason: "better" } });
    } finally {
      journal.close();
    }
  });

  it("the incumbent's history counts each journaled result once, and an infrastructure error not at all", () => {
    const journal = Journal.open(join(tempDir(), "journal.sqlite"));
    try {
      const put = (taskId: string, trial: number, reward: number | null) =>
        journal.taskResults.putTaskResult({
          agentHash: "inc",
          split: "test",
          taskId,
          trial,
          reward,
          durationMs: 1,
          error: null,
          runId: null,
        });
      put("a", 0, 1);
      put("a", 1, 0);
      put("b", 0, null);
      put("stray", 0, 1);
      const splitOf = (id: string) => (id === "stray" ? null : "test");
      expect(foldIntoHistory(journal.gateRecords, "inc", splitOf)).toBe(2);
      expect(foldIntoHistory(journal.gateRecords, "inc", splitOf)).toBe(0);
      expect(journal.gateRecords.gateHistory("test")).toEqual({ a: { s: 1, f: 1 } });
      put("a", 2, 1);
      expect(foldIntoHistory(journal.gateRecords, "inc", splitOf)).toBe(1);
      expect(journal.gateRecords.gateHistory("test")).toEqual({ a: { s: 2, f: 1 } });
    } finally {
      journal.close();
    }
  });

  it("a damaged journal is refused as found: neither the file nor its WAL is rewritten", () => {
    const dir = tempDir();
    const file = join(dir, "journal.sqlite");
    const writer = Journal.open(file);
    writer.runs.createRun("r", {});
    writer.close();
    // A second writer's commits stay in the WAL: copied while it is open, as a killed daemon leaves them.
    const live = Journal.open(file);
    live.runs.createRun("r2", {});
    const evidence = join(dir, "evidence.sqlite");
    copyFileSync(file, evidence);
    copyFileSync(`${file}-wal`, `${evidence}-wal`);
    live.close();
    damageRootPage(evidence, "process_groups");
    const before = [readFileSync(evidence), readFileSync(`${evidence}-wal`)];
    expect(before[1]!.length).toBeGreaterThan(0);

    let refused: unknown;
    try {
      Journal.open(evidence).close();
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(HarnessError);
    expect((refused as HarnessError).code).toBe("JOURNAL_CORRUPT");
    expect(readFileSync(evidence).equals(before[0]!)).toBe(true);
    expect(existsSync(`${evidence}-wal`)).toBe(true);
    expect(readFileSync(`${evidence}-wal`).equals(before[1]!)).toBe(true);
  });
});
