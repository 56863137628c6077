/**
 * The night's held-out bank as a round's facts read it from the journal: a wide round's extra train screens
 * (journaled with its decision) earn the bank the share of a round of one they took, so a night of rounds of
 * K candidates is not starved of held-out runs for train runs that cost none. Real journal on a SQLite file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pinRewardModel } from "../../../src/gate/reward-pin.ts";
import { roundFacts } from "../../../src/gate/round-facts.ts";
import { fitRewardModel } from "../../../src/gate/rules/reward-model.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { ids } from "../../helpers/paired-world.ts";

const START = Date.UTC(2026, 0, 1, 22);
const MIN = 60_000;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Round 2's allowance after a round 1 that reached its gate 28 min into the night, its screens as given. */
function secondRound(screen: { ms: number; arms: number } | null, arms = 4): number {
  const dir = mkdtempSync(join(tmpdir(), "bank-screens-"));
  dirs.push(dir);
  let now = START;
  const journal = Journal.open(join(dir, "journal.sqlite"), { now: () => now });
  try {
    const test = ids(100);
    pinRewardModel(journal.pins, fitRewardModel(Object.fromEntries(test.map((id) => [id, [1, 0]]))));
    now = START + 28 * MIN;
    journal.gateRecords.startGateDecision({
      runId: "run-1",
      iteration: 1,
      rule: "paired",
      candidateHash: "a",
      incumbentHash: "h",
      details: screen ? { screen } : {},
    });
    journal.gateRecords.finishGateDecision("run-1", 1, {
      accept: false,
      stage: "look",
      testRuns: 100,
      infraErrors: 0,
      valScore: null,
      output: null,
      details: { alphaUsed: 0.01 },
    });
    now = START + 56 * MIN;
    const facts = roundFacts({
      journal,
      config: {},
      night: { maxIterations: null, deadline: START + 8 * 60 * MIN, startedAt: START, now },
      runId: "run-1",
      iteration: 2,
      split: {
        seed: 0,
        created_at: "",
        train: ["r0"],
        test,
        excluded: [],
        holdout: [],
        counts: { train: 1, test: 100, train_passing: 0, test_passing: 0, excluded: 0 },
      },
      incumbentHash: "h",
      trainOf: Object.fromEntries(Array.from({ length: arms }, (_, i) => [`c${i + 1}`, {}])),
    });
    return facts.maxRuns;
  } finally {
    journal.close();
  }
}

describe("the held-out bank credits a wide round's train screens", () => {
  it("a round of four whose three extra screens took 12 of its 28 min earns 0.75 of a round more", () => {
    // Per round: N (2 + 1 + 3 slack) - (N baseline + 100 spent) = 400 runs.
    expect(secondRound(null)).toBe(400);
    expect(secondRound({ ms: 16 * MIN, arms: 1 })).toBe(400);
    // Extra screens: 16 min x 3/4 = 12 min of 28; a round of one's work is the other 16: 12/16 of a round.
    expect(secondRound({ ms: 16 * MIN, arms: 4 })).toBe(475);
    // The round's own cap still holds: racing one pair this round may spend at most 4 passes of it (the rule).
    expect(secondRound({ ms: 16 * MIN, arms: 4 }, 1)).toBe(400);
  });

  it("a round earns at most one more per extra candidate, and nothing from screens longer than the round", () => {
    expect(secondRound({ ms: 40 * MIN, arms: 2 })).toBe(500);
    expect(secondRound({ ms: 60 * MIN, arms: 2 })).toBe(400);
  });
});
