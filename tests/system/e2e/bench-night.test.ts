/**
 * bench:night's simulated night: the real machine, daemon and journal on simulated time, with a coding model
 * and benchmark of known truth. What would break: a clock that moves while an actor works, a gate that lets
 * no-change edits through, a loop that cannot find a real fix, a night that overruns its hours.
 */
import { describe, expect, it } from "vitest";
import { policyOf } from "../../../bench/night.ts";
import { SimClock, SimPool } from "../../../bench/night-clock.ts";
import { simulateNight } from "../../../bench/night-run.ts";
import type { Policy } from "../../../bench/night-steps.ts";
import { WORLD, type WorldParams } from "../../../bench/night-world.ts";

const k1: Policy = { name: "k1", rule: "paired", k: 1, restart: false };
const k2: Policy = { name: "k2", rule: "paired", k: 2, restart: false };
const original: Policy = { name: "original", rule: "original", k: 1, restart: false };
const night = (o: Partial<WorldParams>): WorldParams => ({ ...WORLD, hours: 2, ...o });

describe("the simulated clock", () => {
  it("moves only when every actor sleeps, to the earliest wake-up, and not while work is held", async () => {
    const clock = new SimClock(1000);
    const woke: [string, number][] = [];
    const actor = async (name: string, ms: number) => {
      await clock.sleep(ms);
      woke.push([name, clock.now()]);
    };
    const release = clock.hold();
    const all = Promise.all([actor("a", 300), actor("b", 100), actor("c", 100)]);
    await new Promise((r) => setTimeout(r, 20));
    expect(clock.now()).toBe(1000);
    release();
    await all;
    expect(woke).toEqual([
      ["b", 1100],
      ["c", 1100],
      ["a", 1300],
    ]);
  });

  it("queues runs beyond the pool's slots: 5 runs of 30 s on 2 slots take 90 s", async () => {
    const clock = new SimClock(0);
    const pool = new SimPool(clock, 2);
    const done = await Promise.all([1, 2, 3, 4, 5].map((i) => pool.run(30_000, () => [i, clock.now()])));
    expect(done.map(([, t]) => t)).toEqual([30_000, 30_000, 60_000, 60_000, 90_000]);
  });
});

describe("bench:night's policies", () => {
  it("reads original, k<K>, k<K>-all, k<K>-w<W> and -restart, and nothing else", () => {
    expect(policyOf("original")).toEqual({ name: "original", rule: "original", k: 1, restart: false, raceAll: false });
    expect(policyOf("k4-all-restart")).toEqual({
      name: "k4-all-restart",
      rule: "paired",
      k: 4,
      restart: true,
      raceAll: true,
    });
    expect(policyOf("k4-w2")).toMatchObject({ k: 4, raceAll: false, raceWidth: 2 });
    for (const bad of ["k0", "k100", "original-all", "k2-restart-all", "K2", "k4-w0", "k4-all-w2"])
      expect(policyOf(bad)).toBeNull();
  });
});

describe("a simulated night through the real loop", () => {
  it("accepts nothing from a coding model whose every edit changes nothing, and keeps to its hours", async () => {
    const params = night({ editMix: [["neutral", 1]] });
    for (const policy of [k1, k2]) {
      const f = await simulateNight(policy, params, 3);
      expect(f.rounds).toBeGreaterThan(2);
      expect(f.accepted).toBe(0);
      expect(f.gain).toBe(0);
      expect(f.hours).toBeLessThanOrEqual(2);
      expect(f.usd).toBeGreaterThan(0);
    }
  });

  it("finds a coding model's one big fix, and the sealed holdout sees it", async () => {
    const f = await simulateNight(k1, night({ editMix: [["fix", 1]], fixSize: 0.15, clusters: 1 }), 5);
    expect(f.accepted).toBeGreaterThanOrEqual(1);
    expect(f.noChange + f.harmful + f.trainOnly).toBe(0);
    expect(f.gain).toBeGreaterThan(10);
    expect(f.holdout).toBeGreaterThan(5);
  });

  it("the original's protocol ratchets on luck where the paired rule does not, on the same nights", async () => {
    const params = night({ editMix: [["neutral", 1]], hours: 4 });
    const noChange = async (policy: Policy) => {
      let n = 0;
      for (const seed of [1, 2, 3]) n += (await simulateNight(policy, params, seed)).noChange;
      return n;
    };
    expect(await noChange(original)).toBeGreaterThan(0);
    expect(await noChange(k1)).toBe(0);
  });

  it("stops at the dollar cap through the machine's own budget rule", async () => {
    const f = await simulateNight(k1, night({ budgetUsd: 20 }), 1);
    expect(f.stopReason).toMatch(/budget/);
    expect(f.usd).toBeLessThanOrEqual(20.01);
  });
});
