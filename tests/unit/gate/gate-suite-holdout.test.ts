import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pairedHoldout } from "../../../src/gate/holdout.ts";
import { bestSoFar, pinSplit, saveSuite, trustedSplit, trustedSuite } from "../../../src/gate/records.ts";
import { flakySuiteVerdict, nextSuite, promoteByRuns } from "../../../src/gate/suite.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { createLogger } from "../../../src/log.ts";
import type { Suite } from "../../../src/workspace/files.ts";
import { tempDir } from "../../helpers/temp.ts";

const suite = (over: Partial<Suite> = {}): Suite => ({
  tasks: ["a", "b", "c", "d", "e"],
  threshold: 0.8,
  last_results: {},
  rates: {
    a: { passes: 6, runs: 6 },
    b: { passes: 6, runs: 6 },
    c: { passes: 6, runs: 6 },
    d: { passes: 6, runs: 6 },
    e: { passes: 3, runs: 6 },
  },
  quarantined: [],
  ...over,
});

describe("the flake-aware suite", () => {
  it("allows the failures the incumbent's own rates predict, not more", () => {
    const ok = flakySuiteVerdict(suite(), { a: 1, b: 1, c: 1, d: 1, e: 0 }, {});
    expect(ok.passed).toBe(true);
    expect(ok.failed).toEqual(["e"]);
    const bad = flakySuiteVerdict(suite(), { a: 0, b: 0, c: 0, d: 1, e: 0 }, { a: 1, b: 1, c: 1, e: 1 });
    expect(bad.passed).toBe(false);
    expect(bad.failed).toEqual(["a", "b", "c", "e"]);
    expect(bad.allowedFailures).toBeLessThan(4);
  });

  it("a member that ended in an infrastructure error counts as failed: provoking one hides no break", () => {
    const broken = flakySuiteVerdict(suite(), { a: 0, b: 0, c: 0, d: 1, e: 1 }, { a: 1, b: 1, c: 1 });
    // The same breaks, each turned into a rate-limit error by flooding the endpoint.
    const hidden = flakySuiteVerdict(suite(), { a: null, b: null, c: null, d: 1, e: 1 }, { a: 1, b: 1, c: 1 });
    expect(broken.passed).toBe(false);
    expect(hidden.passed).toBe(false);
    expect(hidden.failed).toEqual(["a", "b", "c"]);
    expect(hidden.infraErrors).toBe(3);
    expect(hidden.quarantined).toEqual([]);
  });

  it("a member the incumbent also fails on a re-run flipped with no edit: quarantined, not charged", () => {
    const v = flakySuiteVerdict(suite(), { a: 0, b: 0, c: 0, d: 1, e: 1 }, { a: 0, b: 0, c: 0 });
    expect(v.quarantined).toEqual(["a", "b", "c"]);
    expect(v.failed).toEqual([]);
    expect(v.passed).toBe(true);
    const next = nextSuite(suite(), 0.8, v, null);
    expect(next.quarantined).toEqual(["a", "b", "c"]);
    // A quarantined task is never checked again.
    expect(flakySuiteVerdict(next, { a: 0, b: 0, c: 0, d: 1, e: 1 }, {}).total).toBe(2);
  });

  it("a task joins after passing 2 of 3 runs, and the accepted agent's runs count into the rates", () => {
    expect(promoteByRuns({ x: [1, 0, 1], y: [1, 0, 0], z: [1, null, 1] })).toEqual(["x", "z"]);
    const next = nextSuite(suite(), 0.9, null, { results: { a: 1, e: 0, x: 1 }, promotionRuns: { x: [1, 1, 0] } });
    expect(next.tasks).toContain("x");
    expect(next.rates?.x).toEqual({ passes: 2, runs: 3 });
    expect(next.rates?.a).toEqual({ passes: 7, runs: 7 });
    expect(next.rates?.e).toEqual({ passes: 3, runs: 7 });
    expect(next.threshold).toBe(0.9);
  });
});

describe("pairedHoldout", () => {
  it("pairs by task, leaves out infrastructure errors, and gives a 95% interval", () => {
    const h = pairedHoldout("r", { a: 0, b: 0, c: 1, d: 1, e: null }, { a: 1, b: 1, c: 1, d: 0, e: 1 });
    expect(h).toMatchObject({ tasks: 4, baseline: 0.5, final: 0.75, diff: 0.25 });
    expect(h!.low).toBeLessThan(0.25);
    expect(h!.high).toBeGreaterThan(0.25);
    expect(h!.high - 0.25).toBeCloseTo(0.25 - h!.low, 12);
  });
  it("weighs a final agent's null as a fail, so a broken task cannot hide as an infrastructure error", () => {
    const honest = pairedHoldout("r", { a: 1, b: 1, c: 1 }, { a: 1, b: 1, c: 0 });
    const hidden = pairedHoldout("r", { a: 1, b: 1, c: 1 }, { a: 1, b: 1, c: null });
    expect(honest).toMatchObject({ tasks: 3, final: 2 / 3 });
    expect(hidden).toEqual(honest);
    expect(hidden!.diff).toBeCloseTo(-1 / 3, 12);
  });
  it("nothing paired: no result", () => {
    expect(pairedHoldout("r", { a: null }, { a: 1 })).toBeNull();
  });
});

describe("records pinned in the journal", () => {
  it("a rewritten suite.json or split.json is reported and ignored; the journal's copy is used and written back", () => {
    const dir = tempDir("ah-records-");
    const journal = Journal.open(join(dir, "journal.sqlite"));
    const lines: string[] = [];
    const log = createLogger({
      stdout: false,
      stream: { write: (s: string) => lines.push(s) } as never,
      level: "debug",
    }).log;
    try {
      const suiteFile = join(dir, "suite.json");
      const splitFile = join(dir, "split.json");
      saveSuite(journal, suiteFile, suite());
      pinSplit(journal, splitFile, {
        seed: 1,
        created_at: "2026-01-01T00:00:00.000Z",
        train: ["a"],
        test: ["b"],
        excluded: [],
        holdout: ["h"],
        counts: { train: 1, test: 1, train_passing: 0, test_passing: 0, excluded: 0 },
      });
      // A hostile rewrite: an empty suite, and the held-out task moved into train.
      writeFileSync(suiteFile, JSON.stringify({ tasks: [], threshold: 0, last_results: {} }));
      writeFileSync(splitFile, readFileSync(splitFile, "utf8").replace('"test": [\n    "b"\n  ]', '"test": []'));
      const s = trustedSuite(journal, suiteFile, 0.8, log);
      expect(s.value.tasks).toEqual(["a", "b", "c", "d", "e"]);
      expect(s.restored).toMatch(/differs from the journal's pinned copy/);
      expect(JSON.parse(readFileSync(suiteFile, "utf8")).tasks).toHaveLength(5);
      const sp = trustedSplit(journal, splitFile, log);
      expect(sp.value.test).toEqual(["b"]);
      expect(sp.restored).not.toBeNull();
      expect(lines.join("")).toMatch(/ignored, rewritten from the journal/);
      // Unchanged files are taken as they are.
      expect(trustedSuite(journal, suiteFile, 0.8, log).restored).toBeNull();
    } finally {
      journal.close();
    }
  });

  it("the best score comes from the journal: the baseline, then accepted decisions", () => {
    const dir = tempDir("ah-best-");
    const journal = Journal.open(join(dir, "journal.sqlite"));
    try {
      expect(bestSoFar(journal)).toBeNull();
      journal.pins.pin("baseline", JSON.stringify({ valScore: 0.4, agentHash: "h0" }));
      expect(bestSoFar(journal)).toBe(0.4);
      for (const [iteration, accept, valScore] of [
        [1, true, 0.6],
        [2, false, 0.9],
      ] as const) {
        journal.gateRecords.startGateDecision({
          runId: "r",
          iteration,
          rule: "bayes",
          candidateHash: "c",
          incumbentHash: "i",
          details: { orderSeed: 1, setup: {} },
        });
        journal.gateRecords.finishGateDecision("r", iteration, {
          accept,
          stage: "full",
          testRuns: 10,
          infraErrors: 0,
          valScore,
          output: {},
          details: { pGood: 0.9, pBad: 0, expectedGain: 0.1, looks: [] },
        });
      }
      expect(bestSoFar(journal)).toBe(0.6);
      expect(journal.gateRecords.gateTestRuns("r")).toBe(20);
    } finally {
      journal.close();
    }
  });
});
