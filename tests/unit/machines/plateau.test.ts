import { describe, expect, it } from "vitest";
import { DEFAULT_PLATEAU, forecast, plateauVerdict, type RoundRecord } from "../../../machines/plateau.ts";

const round = (accepted: boolean, o: Partial<RoundRecord> = {}): RoundRecord => ({
  accepted,
  costUsd: 10,
  durationMs: 20 * 60_000,
  restart: false,
  ...o,
});
const rounds = (...xs: boolean[]) => xs.map((a) => round(a));
const noLimits = { usd: null, ms: null };

describe("the forecast of the next acceptance", () => {
  it("starts from the prior: 1 in 4 rounds, at the night's cost per round", () => {
    const f = forecast([]);
    expect(f.acceptRate).toBeCloseTo(0.25);
    expect(f.rounds).toBeCloseTo(4);
    expect(f.usd).toBe(0);
    expect(forecast([round(false)]).usd).toBeCloseTo((1 / (1 / 5)) * 10);
  });

  it("learns the angle's rate from its own rounds, and forgets the rounds before a restart", () => {
    const busy = forecast(rounds(true, false, true, false, true, false));
    const dry = forecast(rounds(false, false, false, false, false, false));
    expect(busy.acceptRate).toBeCloseTo(4 / 10);
    expect(dry.acceptRate).toBeCloseTo(1 / 10);
    expect(dry.usd).toBeGreaterThan(busy.usd);
    const restarted = forecast([...rounds(false, false, false, false, false), round(false, { restart: true })]);
    expect(restarted.angleRounds).toBe(1);
    expect(restarted.acceptRate).toBeCloseTo(1 / 5);
  });

  it("prices a round by the latest rounds only", () => {
    const early = Array.from({ length: 10 }, () => round(false, { costUsd: 100 }));
    const late = Array.from({ length: DEFAULT_PLATEAU.window }, () => round(false, { costUsd: 2 }));
    const f = forecast([...early, ...late]);
    expect(f.usd).toBeCloseTo(f.rounds * 2);
  });
});

describe("the plateau verdict", () => {
  it("restarts after `rounds` rounds on one angle without an acceptance, not before", () => {
    expect(plateauVerdict(rounds(true, false, false, false), noLimits).restart).toBe(false);
    const v = plateauVerdict(rounds(true, false, false, false, false), noLimits);
    expect(v.restart).toBe(true);
    expect(v.reason).toMatch(/^plateau: 4 rounds on this angle without an acceptance/);
  });

  it("counts only the rounds since the last restart", () => {
    const history = [...rounds(false, false, false, false), round(false, { restart: true }), round(false)];
    expect(plateauVerdict(history, noLimits).restart).toBe(false);
  });

  it("restarts when the next acceptance costs more than the night has left, once the angle had its chance", () => {
    const tight = { usd: 15, ms: null };
    expect(plateauVerdict(rounds(true, false), tight).restart).toBe(false);
    const v = plateauVerdict(rounds(true, false, false), tight);
    expect(v.restart).toBe(true);
    expect(v.reason).toMatch(/more than the night has left \(\$15\.00\)/);
    expect(plateauVerdict(rounds(true, false, false), { usd: null, ms: 30 * 60_000 }).reason).toMatch(/\(30 min\)/);
    expect(plateauVerdict(rounds(true, false, false), { usd: 1e6, ms: 1e9 }).restart).toBe(false);
  });
});
