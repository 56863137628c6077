import { describe, expect, it } from "vitest";
import { errorHandling, HarnessError } from "../../../src/errors.ts";
import { decideGate, fileGuard, type GateFacts, promote, promotionCandidates } from "../../../src/gate/decide.ts";

const suite = (tasks: string[], threshold = 0.8) => ({ tasks, threshold });

describe("decideGate (steps 3 and 4)", () => {
  const table: {
    name: string;
    facts: GateFacts;
    passed: boolean;
    valScore: number;
    suite: [number, number];
    reasons: RegExp[];
  }[] = [
    {
      name: "empty suite passes; first measurement has nothing to beat",
      facts: { suite: suite([]), suiteResults: {}, testResults: { t1: 0.2, t2: 0.4 }, previousBest: null },
      passed: true,
      valScore: 0.3,
      suite: [0, 0],
      reasons: [],
    },
    {
      name: "tie with the best passes",
      facts: { suite: suite([]), suiteResults: {}, testResults: { t1: 0.5, t2: 0.7 }, previousBest: 0.6 },
      passed: true,
      valScore: 0.6,
      suite: [0, 0],
      reasons: [],
    },
    {
      name: "tie at results.tsv precision passes (2/3 vs the stored 0.6667)",
      facts: { suite: suite([]), suiteResults: {}, testResults: { a: 1, b: 1, c: 0 }, previousBest: 0.6667 },
      passed: true,
      valScore: 2 / 3,
      suite: [0, 0],
      reasons: [],
    },
    {
      name: "just below the best fails",
      facts: { suite: suite([]), suiteResults: {}, testResults: { t1: 0.5999 }, previousBest: 0.6 },
      passed: false,
      valScore: 0.5999,
      suite: [0, 0],
      reasons: [/^full test split: val_score 0\.5999 < best 0\.6000$/],
    },
    {
      name: "nulls are excluded from the test mean",
      facts: { suite: suite([]), suiteResults: {}, testResults: { t1: 1, t2: null, t3: 0.5 }, previousBest: 0.75 },
      passed: true,
      valScore: 0.75,
      suite: [0, 0],
      reasons: [],
    },
    {
      name: "threshold edge: 4/5 = 0.8 at threshold 0.8 passes",
      facts: {
        suite: suite(["a", "b", "c", "d", "e"]),
        suiteResults: { a: 1, b: 1, c: 0.5, d: 0.9, e: 0.49 },
        testResults: { t: 0.9 },
        previousBest: 0.5,
      },
      passed: true,
      valScore: 0.9,
      suite: [4, 5],
      reasons: [],
    },
    {
      name: "threshold edge: 7/10 at threshold 0.7 passes despite float rounding",
      facts: {
        suite: suite(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"], 0.7),
        suiteResults: { 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1, 8: 0, 9: 0, 10: 0 },
        testResults: { t: 0.9 },
        previousBest: 0.5,
      },
      passed: true,
      valScore: 0.9,
      suite: [7, 10],
      reasons: [],
    },
    {
      name: "threshold edge: 3/5 at threshold 0.8 fails",
      facts: {
        suite: suite(["a", "b", "c", "d", "e"]),
        suiteResults: { a: 1, b: 1, c: 1, d: 0.2, e: 0 },
        testResults: { t: 0.9 },
        previousBest: 0.5,
      },
      passed: false,
      valScore: 0.9,
      suite: [3, 5],
      reasons: [/^regression suite: 3\/5 passed \(60\.0%\) < threshold 80\.0%$/],
    },
    {
      name: "suite fails but test passes",
      facts: { suite: suite(["a", "b"]), suiteResults: { a: 0, b: 1 }, testResults: { t: 0.8 }, previousBest: 0.7 },
      passed: false,
      valScore: 0.8,
      suite: [1, 2],
      reasons: [/^regression suite: 1\/2/],
    },
    {
      name: "suite passes but test fails",
      facts: { suite: suite(["a", "b"]), suiteResults: { a: 1, b: 1 }, testResults: { t: 0.6 }, previousBest: 0.7 },
      passed: false,
      valScore: 0.6,
      suite: [2, 2],
      reasons: [/^full test split: val_score 0\.6000 < best 0\.7000$/],
    },
    {
      name: "both fail: both reasons reported",
      facts: { suite: suite(["a"]), suiteResults: { a: 0 }, testResults: { t: 0.1 }, previousBest: 0.7 },
      passed: false,
      valScore: 0.1,
      suite: [0, 1],
      reasons: [/^regression suite/, /^full test split/],
    },
    {
      name: "suite infra errors are left out of the rate",
      facts: {
        suite: suite(["a", "b", "c"]),
        suiteResults: { a: 1, b: null, c: 1 },
        testResults: { t: 1 },
        previousBest: 0,
      },
      passed: true,
      valScore: 1,
      suite: [2, 2],
      reasons: [],
    },
  ];

  it.each(table)("$name", ({ facts, passed, valScore, suite: [sp, st], reasons }) => {
    const { output } = decideGate(facts);
    expect(output.passed).toBe(passed);
    expect(output.valScore).toBeCloseTo(valScore, 10);
    expect(output.previousBest).toBe(facts.previousBest);
    expect([output.suitePassed, output.suiteTotal]).toEqual([sp, st]);
    expect(output.reasons).toHaveLength(reasons.length);
    for (const [i, re] of reasons.entries()) expect(output.reasons[i]).toMatch(re);
  });

  it.each<{ name: string; facts: Omit<GateFacts, "previousBest"> }>([
    { name: "all-null test split", facts: { suite: suite([]), suiteResults: {}, testResults: { t1: null, t2: null } } },
    { name: "empty test split", facts: { suite: suite([]), suiteResults: {}, testResults: {} } },
    {
      name: "all-null non-empty suite",
      facts: { suite: suite(["a", "b"]), suiteResults: { a: null, b: null }, testResults: { t: 1 } },
    },
  ])("$name is an infrastructure failure, not a rejection", ({ facts }) => {
    let caught: unknown;
    try {
      decideGate({ ...facts, previousBest: 0.5 });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(HarnessError);
    expect((caught as HarnessError).code).toBe("INFRA_FAILURE");
    expect(errorHandling(caught)).toBe("resumable");
  });
});

describe("fileGuard", () => {
  it.each([
    { changes: [], passed: true, offending: [] },
    { changes: [{ path: "agent/agent.ts", kind: "modified" as const }], passed: true, offending: [] },
    { changes: [{ path: "PROGRAM.md", kind: "modified" as const }], passed: true, offending: [] },
    { changes: [{ path: "experiment_config.yaml", kind: "modified" as const }], passed: true, offending: [] },
    { changes: [{ path: "workspace/learnings.md", kind: "added" as const }], passed: true, offending: [] },
    {
      changes: [
        { path: "agent/agent.ts", kind: "modified" as const },
        { path: "src/tools.ts", kind: "deleted" as const },
        { path: "agent/helper.ts", kind: "added" as const },
      ],
      passed: false,
      offending: ["agent/helper.ts", "src/tools.ts"],
    },
    {
      changes: [{ path: "agent/agent.ts", kind: "renamed" as const, from: "agent/old.ts" }],
      passed: false,
      offending: ["agent/old.ts"],
    },
    { changes: [{ path: "workspace2/x", kind: "added" as const }], passed: false, offending: ["workspace2/x"] },
  ])("$changes.length change(s) → passed $passed", ({ changes, passed, offending }) => {
    expect(fileGuard(changes)).toEqual({ passed, offending });
  });
});

describe("promotion", () => {
  it("takes previously failing train tasks outside the suite that now pass", () => {
    const before = { a: 0, b: 0.3, c: 1, d: null, e: 0.1 };
    const candidates = promotionCandidates(before, ["e"]);
    expect(candidates).toEqual(["a", "b"]);
    expect(promote(candidates, { a: 0.5, b: 0.2 })).toEqual(["a"]);
    expect(promotionCandidates(null, [])).toEqual([]);
  });
});
