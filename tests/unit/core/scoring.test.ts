import { describe, expect, it } from "vitest";
import { bestValScore, formatScore, meanReward, nextBest, passes, round4 } from "../../../src/scoring.ts";

describe("scoring", () => {
  it.each([
    [0.5, true],
    [0.4999, false],
    [1, true],
    [0, false],
    [null, false],
    [undefined, false],
  ])("passes(%j) is %j", (reward, expected) => {
    expect(passes(reward)).toBe(expected);
  });

  it.each([
    [{ a: 1, b: 0 }, 0.5],
    [{ a: 1, b: null }, 1],
    [{ a: null }, null],
    [{}, null],
  ])("meanReward(%j) is %j, infrastructure errors excluded", (results, expected) => {
    expect(meanReward(results)).toBe(expected);
  });

  it("compares at results.tsv precision", () => {
    expect(round4(2 / 3)).toBe(0.6667);
    expect(formatScore(2 / 3)).toBe("0.6667");
  });

  it.each([
    [null, 0.4, true, 0.4],
    [0.5, 0.6, true, 0.6],
    [0.5, 0.6, false, 0.5],
    [0.5, 0.4, true, 0.5],
    [0.5, null, true, 0.5],
  ])("nextBest(%j, %j, accepted %j) is %j", (best, score, accepted, expected) => {
    expect(nextBest(best, score, accepted)).toBe(expected);
  });

  it("the best recorded score is the highest row", () => {
    expect(bestValScore([])).toBeNull();
    expect(bestValScore([{ valScore: 0.3 }, { valScore: 0.7 }, { valScore: 0.5 }])).toBe(0.7);
  });
});
