/**
 * A coding model that memorises the gate's questions: a candidate naming a held-out task id, or pasting a
 * held-out input, is rejected before any task runs, nothing is committed, and the reason quotes nothing held out.
 */
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createLocalAdapter } from "../../../src/benchmark/adapters/local.ts";
import { type GateStepReport, runGate } from "../../../src/gate/gate.ts";
import { checkHardcoding, type HeldOutTasks, normalizeText } from "../../../src/gate/hardcode.ts";
import { heldOutOf } from "../../../src/gate/held-out.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { createLogger } from "../../../src/log.ts";
import { recordIteration } from "../../../src/record/record.ts";
import { writeSplit } from "../../../src/workspace/files.ts";
import { fakeRunner, makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

const HELD_OUT_INPUT =
  "Hi, I'm Dana Oyelaran (dana.o@example.com). My order O7731 arrived crushed; refund it to my card please.";
const TRAIN_INPUT =
  "Hello, this is Kim Lee (kim@example.com). Please cancel my order O1001, I no longer need it at all.";
const heldOut: HeldOutTasks = {
  ids: ["ho-test-0042", "ho-test-0043"],
  inputs: [HELD_OUT_INPUT],
  trainInputs: [TRAIN_INPUT],
};
const ACCEPTED = "export default { run: async (task: { id: string; input: unknown }) => 'I can help with that.' };\n";

describe("checkHardcoding", () => {
  it.each([
    ["a general improvement", "export const SYSTEM = `Check the refund window before refunding.`;\n", true, 0, 0],
    ["a held-out id", "if (task.id === 'ho-test-0042') return 'refunded';\n", false, 1, 0],
    ["two held-out ids", "const special = ['ho-test-0042', \"ho-test-0043\"];\n", false, 2, 0],
    ["a longer id that merely contains one", "const x = 'ho-test-00421';\n", true, 0, 0],
    ["a held-out input pasted verbatim", `const example = "${HELD_OUT_INPUT.slice(10, 70)}";\n`, false, 0, 1],
    [
      "a held-out input split over lines and escapes",
      `const example = "My order O7731 arrived crushed;\\n   refund it to my card please.";\n`,
      false,
      0,
      1,
    ],
    ["a shorter stretch than 40 characters", `const s = "${HELD_OUT_INPUT.slice(20, 55)}";\n`, true, 0, 0],
    ["a stretch that is in a train input too", `const s = "${TRAIN_INPUT.slice(0, 60)}";\n`, true, 0, 0],
  ])("%s", (_name, added, passed, idHits, fragmentHits) => {
    const verdict = checkHardcoding({ candidate: `${ACCEPTED}${added}`, accepted: ACCEPTED, heldOut });
    expect({ passed: verdict.passed, idHits: verdict.idHits, fragmentHits: verdict.fragmentHits }).toEqual({
      passed,
      idHits,
      fragmentHits,
    });
    if (!passed) {
      expect(verdict.reason).toMatch(/^hard-coding check: the change adds /);
      for (const id of heldOut.ids) expect(verdict.reason).not.toContain(id);
      expect(verdict.reason).not.toContain("O7731");
    }
  });

  it("does not hold the incumbent's text against the change", () => {
    const accepted = `${ACCEPTED}// ho-test-0042 ${HELD_OUT_INPUT}\n`;
    expect(checkHardcoding({ candidate: `${accepted}const y = 1;\n`, accepted, heldOut }).passed).toBe(true);
  });

  it("normalises whitespace and literal escapes", () => {
    expect(normalizeText('a\\n  b\\tc\n\n d \\"e\\"', true)).toBe('a b c d "e"');
  });
});

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

const quietLog = () =>
  createLogger({
    stdout: false,
    stream: new Writable({
      write(_c, _e, cb) {
        cb();
      },
    }),
  }).log;

describe("a hostile edit through the real gate", () => {
  it.each([
    ["a test task id", "if (task.id === 'ho-test-0042') return 'Your refund for O7731 is on its way.';"],
    ["a test task's input", `if (String(task.input).includes("${HELD_OUT_INPUT.slice(0, 50)}")) return 'refunded';`],
  ])("embedding %s is rejected unrun, and nothing is committed", async (_name, hostile) => {
    repo = makeRepo("hardcode", {
      "bench/tasks.jsonl": `${[
        { id: "tr-0001", input: TRAIN_INPUT, expected: "x" },
        { id: "ho-test-0042", input: HELD_OUT_INPUT, expected: "y" },
      ]
        .map((t) => JSON.stringify(t))
        .join("\n")}\n`,
      "bench/scorer.ts": "export default () => 0;\n",
    });
    repo.write(
      "workspace/results.tsv",
      "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\n0\t0.5000\tbaseline\t0\t0\t2026-01-01T00:00:00.000Z\n",
    );
    writeSplit(`${repo.root}/workspace/split.json`, {
      seed: 1,
      created_at: "2026-01-01T00:00:00.000Z",
      train: ["tr-0001"],
      test: ["ho-test-0042"],
      excluded: [],
      counts: { train: 1, test: 1, train_passing: 0, test_passing: 0, excluded: 0 },
    });
    const accepted = repo.read("agent/agent.ts");
    const commitsBefore = repo.git("rev-list", "--count", "HEAD").trim();
    repo.write(
      "agent/agent.ts",
      `${accepted}export function shortcut(task: { id: string; input: unknown }) {\n  ${hostile}\n}\n`,
    );

    const runner = fakeRunner({ train: {}, test: { "ho-test-0042": 1 } });
    const checked: string[] = [];
    const steps: GateStepReport[] = [];
    const r = openRepo(repo.root);
    const adapter = createLocalAdapter({
      tasksFile: `${repo.root}/bench/tasks.jsonl`,
      scorerFile: `${repo.root}/bench/scorer.ts`,
    });
    const gate = await runGate({
      root: repo.root,
      config: { threshold: 0.8 },
      log: quietLog(),
      runner,
      repo: r,
      checkAgent: async (file) => {
        checked.push(file);
        return { ok: true };
      },
      heldOut: heldOutOf(adapter, `${repo.root}/workspace/split.json`),
      runId: "run-h",
      iteration: 1,
      onStep: (s) => steps.push(s),
    });

    expect(gate.passed).toBe(false);
    expect(gate.reasons).toHaveLength(1);
    expect(gate.reasons[0]).toMatch(/^hard-coding check: the change adds /);
    expect(gate.reasons[0]).not.toContain("ho-test-0042");
    expect(gate.reasons[0]).not.toContain("O7731");
    // Rejected without running it: no load, no task of either split.
    expect(checked).toEqual([]);
    expect(runner.calls).toEqual([]);
    expect(steps.map((s) => s.step)).toEqual(["file_guard", "hardcode"]);

    const record = await recordIteration({
      root: repo.root,
      repo: r,
      runId: "run-h",
      iteration: 1,
      edit: {
        changed: true,
        hypothesis: "h",
        changeSummary: "s",
        commitMessage: "m",
        pattern: "p",
        needsFromHuman: "none",
      },
      gate,
      now: () => new Date(0),
    });
    expect(record).toEqual({ accepted: false, commit: null });
    expect(repo.git("rev-list", "--count", "HEAD").trim()).toBe(commitsBefore);
    expect(repo.read("agent/agent.ts")).toBe(accepted);
  });
});
