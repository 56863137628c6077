import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pauseBackoffMs, underPm2 } from "../../../src/cli/run-start.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { tempDir } from "../../helpers/temp.ts";

describe("the daemon's own restart backoff under pm2 (pm2 is given no restart delay)", () => {
  it("5 s, doubling per pause in a row, at most 5 min; a pause an hour after the last starts over; per run", () => {
    const journal = Journal.open(join(tempDir(), "journal.sqlite"));
    try {
      const t0 = Date.parse("2026-11-24T23:00:00Z");
      const waits = Array.from({ length: 9 }, (_, i) => pauseBackoffMs(journal.pins, "run-a", t0 + i * 60_000));
      expect(waits).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
      expect(pauseBackoffMs(journal.pins, "run-b", t0)).toBe(5_000);
      expect(pauseBackoffMs(journal.pins, "run-a", t0 + 8 * 60_000 + 3_600_000)).toBe(5_000);
    } finally {
      journal.close();
    }
  });

  it("pm2 is recognised by the pm_id it sets in its apps' environment", () => {
    expect(underPm2({ pm_id: "0" })).toBe(true);
    expect(underPm2({})).toBe(false);
  });
});
