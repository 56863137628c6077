import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Journal } from "../../../src/journal/journal.ts";
import { angleKey } from "../../../src/journal/pins.ts";
import { readEntries } from "../../../src/learnings/learnings.ts";
import { createLogger } from "../../../src/log.ts";
import { type AngleInput, angleHistory, decideAngle, triedPatterns } from "../../../src/steps/angle.ts";
import { Capture } from "../../helpers/capture.ts";
import { llmCallRow } from "../../helpers/ledger.ts";
import { tempDir } from "../../helpers/temp.ts";

const RUN = "run-angle";

/** A journal whose run finished the given rounds, 20 minutes and $5 each, in order. */
function night(outcomes: ("accepted" | "rejected")[]) {
  const dir = tempDir("ah-angle-");
  let now = 0;
  const journal = Journal.open(join(dir, "journal.sqlite"), { now: () => now });
  journal.runs.createRun(RUN, {});
  outcomes.forEach((outcome, i) => {
    now = (i + 1) * 20 * 60_000;
    journal.ledger.recordLlmCall(llmCallRow({ runId: RUN, iteration: i + 1, role: "coding", costUsd: 5 }));
    journal.runs.putIteration({
      runId: RUN,
      iteration: i + 1,
      outcome,
      valScore: 0.5,
      bestBefore: 0.5,
      summary: { spentUsd: 5, pattern: `pattern ${i % 3}` },
    });
  });
  const capture = new Capture();
  const { log } = createLogger({ stdout: false, stream: capture, level: "info" });
  const input = (iteration: number, o: Partial<AngleInput> = {}): AngleInput => ({
    journal,
    runId: RUN,
    iteration,
    now,
    startedAt: 0,
    deadline: null,
    budgetUsd: null,
    plateauRounds: 4,
    codingModels: ["model-a", "model-b"],
    log,
    learningsFile: join(dir, "learnings.md"),
    ...o,
  });
  return { dir, journal, input, logged: () => capture.text, close: () => journal.close() };
}

describe("the proposer's angle, journaled once per round", () => {
  it("keeps the angle while rounds are accepted or too few have failed", () => {
    const n = night(["accepted", "rejected", "rejected", "rejected"]);
    const angle = decideAngle(n.input(5));
    expect(angle.restart).toBe(false);
    expect(angle.restarts).toBe(0);
    expect(angle.codingModel).toBeNull();
    expect(n.journal.pins.fact(angleKey(RUN, 5))).toEqual(angle);
    n.close();
  });

  it("changes the angle after a plateau: logged, noted in learnings.md once, next coding model, decided once", () => {
    const n = night(["accepted", "rejected", "rejected", "rejected", "rejected"]);
    const angle = decideAngle(n.input(6));
    expect(angle.restart).toBe(true);
    expect(angle.restarts).toBe(1);
    expect(angle.codingModel).toBe("model-a");
    expect(angle.reason).toMatch(/^plateau: 4 rounds on this angle without an acceptance/);
    expect(n.logged()).toContain("angle changed before iteration 6: plateau");
    // The round re-run after a crash: the same angle, no second restart, no second note.
    expect(decideAngle(n.input(6, { plateauRounds: 1 }))).toEqual(angle);
    const text = readFileSync(join(n.dir, "learnings.md"), "utf8");
    expect(text.match(/Angle changed before iteration 6/g)).toHaveLength(1);
    expect(readEntries(join(n.dir, "learnings.md"))).toEqual([]);
    // The round after the restart is on the new angle: not restarted again, the model stays.
    n.journal.runs.putIteration({
      runId: RUN,
      iteration: 6,
      outcome: "rejected",
      valScore: 0.5,
      bestBefore: 0.5,
      summary: { spentUsd: 5 },
    });
    const next = decideAngle(n.input(7));
    expect(next).toMatchObject({ restart: false, restarts: 1, codingModel: "model-a" });
    // A second plateau on the new angle: the next coding model of the list.
    for (const i of [7, 8, 9, 10])
      n.journal.runs.putIteration({
        runId: RUN,
        iteration: i,
        outcome: "rejected",
        valScore: 0.5,
        bestBefore: 0.5,
        summary: { spentUsd: 5 },
      });
    expect(decideAngle(n.input(11))).toMatchObject({ restart: true, restarts: 2, codingModel: "model-b" });
    n.close();
  });

  it("changes the angle when the next acceptance is forecast to cost more than the night has left", () => {
    const n = night(["accepted", "rejected", "rejected"]);
    expect(decideAngle(n.input(4, { budgetUsd: 1000 })).restart).toBe(false);
    const m = night(["accepted", "rejected", "rejected"]);
    const angle = decideAngle(m.input(4, { budgetUsd: 15 + 3 * 5 }));
    expect(angle.restart).toBe(true);
    expect(angle.reason).toMatch(/more than the night has left \(\$15\.00\)/);
    n.close();
    m.close();
  });

  it("never restarts with plateau_rounds 0, and keeps the configured coding model without a list", () => {
    const n = night(["rejected", "rejected", "rejected", "rejected", "rejected", "rejected"]);
    const angle = decideAngle(n.input(7, { plateauRounds: 0, codingModels: [] }));
    expect(angle).toMatchObject({ restart: false, restarts: 0, codingModel: null });
    n.close();
  });
});

describe("the history the coding model reads", () => {
  it("withholds the learnings on a restart and names the patterns tried, so the next one is taken", () => {
    const n = night(["accepted", "rejected", "rejected", "rejected", "rejected"]);
    const angle = decideAngle(n.input(6));
    const learnings = "Last learnings entries:\n## Iteration 1 — anchored on pattern 0";
    const fresh = angleHistory(angle, learnings, triedPatterns(n.journal, RUN));
    expect(fresh).not.toContain("anchored");
    expect(fresh).toContain("Fresh angle (plateau: 4 rounds");
    expect(fresh).toContain("take a different one: pattern 0; pattern 1; pattern 2");
    expect(angleHistory({ ...angle, restart: false }, learnings, [])).toBe(learnings);
    expect(angleHistory(null, learnings, [])).toBe(learnings);
    n.close();
  });
});
