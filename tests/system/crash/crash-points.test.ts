import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { CRASH_POINTS } from "../../../src/crash-point.ts";
import { expectInvariants } from "../../helpers/expect-invariants.ts";
import { preparedExperiment, REAL_RECORD_CLI, REPO_ROOT, readState, spawnCli } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

// Iterations 1 and 3 are accepted, 2 is rejected (the restore path): every crash point is reached.
const ITERATIONS = 3;

/**
 * Points inside the real gate and the race, which the stand-in steps never reach: the race's end-to-end test kills
 * the real loop at each of them (checked below, so a point cannot go untested).
 */
const IN_THE_RACE_TEST = ["race:candidate-edited", "gate:screened", "gate:run-landed"];
const RACE_TEST = join(REPO_ROOT, "tests", "system", "e2e", "race-e2e.test.ts");

/** Every named point at its first hit, and the transitions again deeper into the run. */
const SCENARIOS = [
  ...CRASH_POINTS.filter((p) => !IN_THE_RACE_TEST.includes(p)).map((p) => `${p}:1`),
  "transition:before-commit:9",
  "transition:after-commit:14",
  "record:after-commit:2",
  "learn:after-entry:3",
];

describe("deterministic crash points (SIGKILL at each named point, then resume)", () => {
  it("the points the stand-in steps cannot reach are killed at by the race's end-to-end test", () => {
    const text = readFileSync(RACE_TEST, "utf8");
    for (const point of IN_THE_RACE_TEST) expect(text, point).toMatch(new RegExp(`"${point}:\\d+"`));
  });

  it.each(SCENARIOS)(
    "killed at %s: the run resumes to the end with every invariant",
    async (at) => {
      const dir = preparedExperiment(tempDir("crashpt-"), { max_iterations: ITERATIONS, patience: 50 });
      const env = { STAND_IN_DELAY_MS: "5" };
      const crashed = spawnCli(["daemon", "--dir", dir], { ...env, AUTO_HARNESS_CRASH_AT: at }, REAL_RECORD_CLI);
      const first = await crashed.exited;
      expect(first.signal, crashed.stderr()).toBe("SIGKILL");
      expect(crashed.stderr()).toContain(`crash point ${at.slice(0, at.lastIndexOf(":"))}`);

      let code: number | null = null;
      for (let round = 0; round < 3 && code !== EXIT_NOTHING_TO_DO; round++) {
        const resumed = spawnCli(["daemon", "--dir", dir], env, REAL_RECORD_CLI);
        ({ code } = await resumed.exited);
        expect([0, EXIT_NOTHING_TO_DO], resumed.stderr()).toContain(code);
      }
      expect(readState(join(dir, "workspace", "journal.sqlite"))).toEqual({ state: "done", status: "done" });
      expect(expectInvariants(dir, ITERATIONS, at)).toEqual([1, 3]);
    },
    120_000,
  );
});
