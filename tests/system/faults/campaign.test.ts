/**
 * A representative slice of the fault campaign (tests/helpers/fault-campaign.ts): a fault of each kind, each at a
 * different step of an iteration, against the real CLI with a real benchmark command, git and SQLite; every
 * invariant holds after the restarts. `npm run bench:crash` sweeps every fault at every step.
 */
import { describe, expect, it } from "vitest";
import { type CampaignStep, FAULTS, runScenario } from "../../helpers/fault-campaign.ts";
import { tempDir } from "../../helpers/temp.ts";

const SLICE: [string, CampaignStep][] = [
  ["SIGKILL", "benchmark"],
  ["SIGHUP", "gate"],
  ["stale index.lock", "record"],
  ["torn results.tsv", "learn"],
  ["invalid config at the restart", "analyze"],
  ["empty PROGRAM.md saved mid-run", "edit"],
  ["full disk", "benchmark"],
];

describe("fault campaign (representative slice)", () => {
  it.each(SLICE)(
    "%s in %s: the run finishes with every invariant, nothing left running",
    async (name, step) => {
      const fault = FAULTS.find((f) => f.name === name);
      if (!fault) throw new Error(`no fault ${name}`);
      const result = await runScenario(fault, step, tempDir("campaign-"));
      expect(result.violations).toEqual([]);
    },
    180_000,
  );
});
