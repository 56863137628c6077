/**
 * What `status` and a run's last line say in the morning: the holdout's verdict, val_score and best, the
 * spend beside the budget, the time left, and (in the log) why each change was accepted.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createStandInSteps } from "../../../dev/steps/stand-in.ts";
import { main } from "../../../src/cli/program.ts";
import { formatStatus, readStatus } from "../../../src/cli/status.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { paths } from "../../../src/workspace/paths.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment } from "../../helpers/experiment.ts";
import { buildNight, RUN } from "../../helpers/night.ts";
import { tempDir } from "../../helpers/temp.ts";

describe("status in the morning", () => {
  it("the holdout's verdict, val_score, best and the spend beside the budget, in text and JSON", async () => {
    const root = tempDir("status-night-");
    await buildNight(root);
    const s = readStatus(root);
    expect(s.run).toBe(RUN);
    expect(s.valScore).toBe(0.5);
    expect(s.holdout?.verdict).toBe("too small to tell");
    expect(s.spendUsd.total.toFixed(2)).toBe("1.07");
    expect(s.budgetUsd).toBe(20);
    // A finished run has no time left.
    expect(s.secondsLeft).toBeNull();
    const text = formatStatus(s);
    expect(text).toMatch(/\nval_score {2}0\.5000 \(the accepted agent's, on the test split\)\n/);
    expect(text).toMatch(/\nholdout {4}too small to tell: 0\.3750 → 0\.5000 .* on 8 sealed task\(s\)/);
    expect(text).toMatch(/\nspend {6}\$1\.07 of \$20\.00 /);
  });

  it("the time left before max_hours, counted from the run's start", () => {
    const dir = preparedExperiment(tempDir());
    const started = Date.parse("2026-01-01T22:00:00.000Z");
    const journal = Journal.open(paths(dir).journal, { now: () => started });
    journal.runs.createRun("run-t", { max_hours: 8, deadline: null, budget_usd: 5 });
    journal.close();
    const s = readStatus(dir, started + 90 * 60_000);
    expect(s.endsAt).toBe("2026-01-02T06:00:00.000Z");
    expect(s.secondsLeft).toBe(6.5 * 3600);
    expect(formatStatus(s, started)).toMatch(
      /\ntime {7}6h 30m left, ends 2026-01-02T06:00:00\.000Z \(deadline \/ max_hours\)\n/,
    );
  });

  it("a run's last line says the night, and the log says why each change was accepted", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 2, budget_usd: 3 });
    const stderr = new Capture();
    const code = await main(["node", "auto-harness", "run", "--dir", dir], {
      stdout: new Capture(),
      stderr,
      stepsFactory: (exp, opened, clock) =>
        createStandInSteps({ paths: exp.paths, journal: opened.journal, clock, delayMs: 0 }),
    });
    expect(code, stderr.text).toBe(0);
    expect(stderr.text).toMatch(
      /run done: max_iterations reached: 2; val_score 0\.5100 \(best 0\.5100, baseline 0\.5000\); 1 accepted, 1 rejected; sealed holdout none sealed .*; spend \$0\.00 of \$3\.00\n/,
    );
    const logs = join(dir, "workspace", "logs");
    const log = readFileSync(join(logs, readdirSync(logs)[0]!), "utf8");
    expect(log).toContain('"msg":"accepted: val_score 0.5100 (best before 0.5000), suite 1/1 passed"');
    // The last change was rejected: status says why, in text and JSON.
    const s = readStatus(dir);
    expect(s.lastIteration).toMatchObject({ iteration: 2, outcome: "rejected", reason: "stand-in rejection" });
    expect(formatStatus(s)).toMatch(/\nlast gate {2}iteration 2 rejected .*\nwhy {8}stand-in rejection\n/);
  });
});
