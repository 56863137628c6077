import { describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "../../../src/clock.ts";

describe("the injected clock: wall time for deadlines, monotonic time for durations", () => {
  it("an NTP step moves the wall clock only: a backoff sleeping on the clock neither ends early nor late", async () => {
    const clock = new ManualClock(Date.parse("2026-11-24T22:00:00Z"));
    let woke = false;
    const backoff = clock.sleep(60_000).then(() => {
      woke = true;
    });
    clock.stepWall(3_600_000);
    await Promise.resolve();
    expect(woke).toBe(false);
    clock.stepWall(-7_200_000);
    clock.advance(59_999);
    await Promise.resolve();
    expect(woke).toBe(false);
    clock.advance(1);
    await backoff;
    expect(woke).toBe(true);
    expect(clock.monotonic()).toBe(60_000);
    expect(clock.now()).toBe(Date.parse("2026-11-24T21:01:00Z"));
  });

  it("the system clock's monotonic time never goes back", () => {
    let last = systemClock.monotonic();
    for (let i = 0; i < 10_000; i++) {
      const t = systemClock.monotonic();
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });
});
