import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EditOutput, GateOutput, LearnInput } from "../../../src/contracts.ts";
import { FileDamagedError } from "../../../src/errors.ts";
import {
  appendEntry,
  appendSummary,
  entryFromIteration,
  formatEntry,
  formatSummary,
  type LearningEntry,
  learnIteration,
  learningsDigest,
  parseEntries,
  recentEntries,
  recentRejected,
  writeClosingSummary,
} from "../../../src/learnings/learnings.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ah-learnings-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const entry = (over: Partial<LearningEntry> = {}): LearningEntry & { runId: string } => ({
  iteration: 3,
  before: 0.6,
  after: 0.6667,
  passed: true,
  whatChanged: "Ask for the order id before any refund.",
  pattern: "refund without identification",
  worked: "Worked: two refund tasks now pass.",
  needsFromHuman: "none",
  ...over,
  runId: over.runId ?? "run-1",
});

describe("formatEntry", () => {
  it("writes exactly the DESIGN §7 format behind a hidden marker", () => {
    expect(formatEntry(entry())).toBe(
      [
        "<!-- harness:entry run=run-1 iteration=3 -->",
        "## Iteration 3 — val_score: 0.60 → 0.67 ✓",
        "",
        "**What changed:** Ask for the order id before any refund.",
        "",
        "**Pattern confirmed:** refund without identification",
        "",
        "**What worked / didn't work:** Worked: two refund tasks now pass.",
        "",
        "**Needs from human:** none",
        "",
      ].join("\n"),
    );
  });

  it("marks unmeasured scores n/a and a rejection ✗, and keeps every field on one line", () => {
    const text = formatEntry(
      entry({ before: null, after: null, passed: false, worked: "line one\n\nline two", needsFromHuman: "" }),
    );
    expect(text).toContain("## Iteration 3 — val_score: n/a → n/a ✗\n");
    expect(text).toContain("**What worked / didn't work:** line one line two\n");
    expect(text).toContain("**Needs from human:** none\n");
  });
});

describe("parseEntries", () => {
  it("reads entries back (round trip), including ones without a marker, skipping other sections", () => {
    const a = entry({ iteration: 1, before: 0.5, after: 0.55, passed: true });
    const b = entry({
      iteration: 2,
      before: 0.55,
      after: null,
      passed: false,
      pattern: "none",
      needsFromHuman: "a refund API key",
    });
    const legacy = [
      "## Iteration 7 — val_score: 0.40 → 0.35 ✗",
      "",
      "**What changed:** Tweaked the prompt.",
      "",
      "**Pattern confirmed:** tool misuse",
      "",
      "**What worked / didn't work:** Didn't work.",
      "",
      "**Needs from human:** none",
      "",
    ].join("\n");
    const text = `# Learnings\n\n${formatEntry(a)}\n${formatEntry(b)}\n## Notes\n\n**What changed:** not an entry\n\n${legacy}`;
    const parsed = parseEntries(text);
    expect(parsed).toEqual([
      { ...a, before: 0.5, after: 0.55 },
      { ...b, before: 0.55, after: null },
      {
        runId: null,
        iteration: 7,
        before: 0.4,
        after: 0.35,
        passed: false,
        whatChanged: "Tweaked the prompt.",
        pattern: "tool misuse",
        worked: "Didn't work.",
        needsFromHuman: "none",
      },
    ]);
  });
});

describe("appendEntry", () => {
  it("creates the file, appends once per (run, iteration), and never twice", () => {
    const file = join(dir, "learnings.md");
    expect(appendEntry(file, entry({ iteration: 1 }))).toBe(true);
    expect(appendEntry(file, entry({ iteration: 1, worked: "a resumed step's different wording" }))).toBe(false);
    expect(appendEntry(file, entry({ iteration: 10 }))).toBe(true);
    expect(appendEntry(file, entry({ iteration: 1, runId: "run-2" }))).toBe(true);
    const text = readFileSync(file, "utf8");
    expect(text.startsWith("# Learnings\n\n<!-- harness:entry run=run-1 iteration=1 -->\n")).toBe(true);
    expect(parseEntries(text).map((e) => [e.runId, e.iteration])).toEqual([
      ["run-1", 1],
      ["run-1", 10],
      ["run-2", 1],
    ]);
    expect(text).not.toContain("different wording");
    expect(text).toContain("**Needs from human:** none\n\n<!-- harness:entry run=run-1 iteration=10 -->");
  });

  it("appends after an operator's text that lacks a trailing newline", () => {
    const file = join(dir, "learnings.md");
    writeFileSync(file, "# Learnings\n\nOperator note");
    appendEntry(file, entry());
    expect(readFileSync(file, "utf8")).toContain("Operator note\n\n<!-- harness:entry run=run-1 iteration=3 -->\n");
  });

  it("recentEntries and recentRejected feed the coding agent's digest", () => {
    const file = join(dir, "learnings.md");
    appendEntry(file, entry({ iteration: 1, passed: false, whatChanged: "Longer system prompt." }));
    appendEntry(file, entry({ iteration: 2, passed: false, after: null, whatChanged: "No change to agent/agent.ts." }));
    appendEntry(file, entry({ iteration: 3, passed: true }));
    appendEntry(file, entry({ iteration: 4, passed: false, whatChanged: "Retry tool calls." }));
    expect(recentEntries(file, 2).map((e) => e.iteration)).toEqual([3, 4]);
    expect(recentRejected(file, 5).map((e) => e.whatChanged)).toEqual(["Longer system prompt.", "Retry tool calls."]);
    expect(recentEntries(join(dir, "missing.md"), 3)).toEqual([]);
  });

  it("the digest lists rejected edits (not no-change iterations) and the last entries, without markers", () => {
    const file = join(dir, "learnings.md");
    appendEntry(file, entry({ iteration: 1, passed: false, whatChanged: "Longer system prompt." }));
    appendEntry(file, entry({ iteration: 2, passed: false, after: null, whatChanged: "No change to agent/agent.ts." }));
    appendEntry(file, entry({ iteration: 3, passed: true, whatChanged: "Check the refund window." }));
    const digest = learningsDigest(file, 2);
    expect(digest).toMatch(
      /^Recently rejected changes:\n- Longer system prompt\.\n\nLast learnings entries:\n## Iteration 2 /,
    );
    expect(digest).toContain("## Iteration 3 — val_score: 0.60 → 0.67 ✓\n\n**What changed:** Check the refund window.");
    expect(digest).not.toContain("## Iteration 1 ");
    expect(digest).not.toContain("harness:entry");
    expect(learningsDigest(file, 3, 40)).toMatch(/\n\[learnings cut; view workspace\/learnings\.md\]$/);
    expect(learningsDigest(join(dir, "missing.md"))).toBe("");
  });
});

describe("entryFromIteration", () => {
  const edit: EditOutput = {
    changed: true,
    hypothesis: "the agent refunds without checking identity",
    changeSummary: "Require the customer's email before refunds.",
    commitMessage: "require email before refunds",
    pattern: "missing identity check",
    needsFromHuman: "",
  };
  const gate: GateOutput = {
    passed: true,
    valScore: 0.72,
    previousBest: 0.6,
    suitePassed: 5,
    suiteTotal: 5,
    promoted: ["t9"],
    reasons: [],
  };
  const base: LearnInput = {
    runId: "run-1",
    iteration: 4,
    edit,
    gate,
    record: { accepted: true, commit: "abc" },
    bestBefore: 0.6,
    trainScore: 0.5,
  };

  it("an accepted change", () => {
    const e = entryFromIteration(base);
    expect(e).toMatchObject({
      iteration: 4,
      before: 0.6,
      after: 0.72,
      passed: true,
      pattern: "missing identity check",
    });
    expect(e.whatChanged).toBe("Require the customer's email before refunds.");
    expect(e.worked).toBe(
      "Worked: val_score 0.7200 (best before 0.6000), suite 5/5 passed; 1 task(s) promoted into the suite. Hypothesis: the agent refunds without checking identity",
    );
    expect(e.needsFromHuman).toBe("none");
    expect(formatEntry(e)).toContain("## Iteration 4 — val_score: 0.60 → 0.72 ✓");
  });

  it("an accepted change under the bayes rule says how sure the gate was", () => {
    const e = entryFromIteration({ ...base, gate: { ...gate, rule: "bayes", pGood: 0.9371, testRuns: 23 } });
    expect(e.worked).toMatch(/^Worked: P\(improvement\) 0\.937 with 23 held-out run\(s\), val_score 0\.7200/);
  });

  it("a failed load check: nothing measured, the reason kept", () => {
    const failedGate: GateOutput = {
      ...gate,
      passed: false,
      valScore: null,
      promoted: [],
      reasons: ["load check: agent/agent.ts does not load: TS1005"],
    };
    const e = entryFromIteration({ ...base, gate: failedGate, record: { accepted: false, commit: null } });
    expect(formatEntry(e)).toContain("## Iteration 4 — val_score: 0.60 → n/a ✗");
    expect(e.worked).toBe(
      "Didn't work: load check: agent/agent.ts does not load: TS1005. Hypothesis: the agent refunds without checking identity",
    );
  });

  it("learnIteration writes the entry into workspace/learnings.md once", () => {
    mkdirSync(join(dir, "workspace"));
    expect(learnIteration(dir, base)).toEqual({ written: true });
    expect(learnIteration(dir, base)).toEqual({ written: false });
    expect(parseEntries(readFileSync(join(dir, "workspace/learnings.md"), "utf8"))).toHaveLength(1);
  });

  it("a no-change iteration", () => {
    const e = entryFromIteration({ ...base, edit: { ...edit, changed: false }, gate: null, record: null });
    expect(e).toMatchObject({ after: null, passed: false, whatChanged: "No change to agent/agent.ts." });
    expect(e.worked).toContain('Not tested: no edit was made for the hypothesis "the agent refunds');
  });
});

describe("closing summary", () => {
  it("leads with the sealed holdout when there is one", () => {
    const text = formatSummary({
      runId: "run-1",
      stopReason: "max_iterations reached: 4",
      bestValScore: 0.72,
      bestCommit: "abc1234",
      baselineScore: 0.55,
      accepted: 1,
      rejected: 3,
      iterations: 4,
      entries: [],
      holdout: "0.4000 → 0.5500 (+0.1500, 95% interval +0.0200 to +0.2800) on 16 sealed task(s) no gate ever saw",
    });
    const lines = text.split("\n");
    expect(lines[3]).toBe(
      "**Sealed holdout:** 0.4000 → 0.5500 (+0.1500, 95% interval +0.0200 to +0.2800) on 16 sealed task(s) no gate ever saw",
    );
    expect(text.indexOf("Sealed holdout")).toBeLessThan(text.indexOf("Stopped because"));
  });

  it("formats best score and commit, counts, frequent patterns and what to look at", () => {
    const entries = [
      entry({ iteration: 1, pattern: "tool misuse" }),
      entry({ iteration: 2, pattern: "missing identity check", needsFromHuman: "the refund policy is ambiguous" }),
      entry({ iteration: 3, pattern: "tool misuse" }),
      entry({ iteration: 4, pattern: "none" }),
    ];
    expect(
      formatSummary({
        runId: "run-1",
        stopReason: "patience: 5 iterations without improvement",
        bestValScore: 0.72,
        bestCommit: "abc1234",
        baselineScore: 0.55,
        accepted: 2,
        rejected: 2,
        iterations: 4,
        entries,
      }),
    ).toBe(
      [
        "<!-- harness:summary run=run-1 -->",
        "## Run summary — run-1",
        "",
        "**Stopped because:** patience: 5 iterations without improvement",
        "",
        "**Best val_score:** 0.7200 (commit abc1234), baseline 0.5500",
        "",
        "**Iterations:** 4 — 2 accepted, 2 rejected",
        "",
        "**Most frequent patterns:** tool misuse (2), missing identity check (1)",
        "",
        "**Look at:**",
        "",
        "- the best change: `git show abc1234 -- agent/agent.ts`",
        "- iteration 2 asked: the refund policy is ambiguous",
        "",
      ].join("\n"),
    );
  });

  it("writeClosingSummary reads results.tsv and learnings.md, appends once, and entries still parse", () => {
    const root = dir;
    const ws = join(root, "workspace");
    const learnings = join(ws, "learnings.md");
    rmSync(ws, { recursive: true, force: true });
    mkdirSync(ws, { recursive: true });
    writeFileSync(
      join(ws, "results.tsv"),
      "iteration\tval_score\tcommit\tevals_passed\tevals_total\ttimestamp\n0\t0.5000\tbaseline\t0\t0\t2026-01-01T00:00:00Z\n2\t0.6000\tfeed123\t1\t1\t2026-01-01T01:00:00Z\n",
    );
    appendEntry(learnings, entry({ iteration: 1, passed: false }));
    appendEntry(learnings, entry({ iteration: 2, passed: true }));
    const input = {
      runId: "run-1",
      stopReason: "max iterations",
      bestValScore: 0.6,
      accepted: 1,
      rejected: 1,
      iterations: 2,
    };
    expect(writeClosingSummary(root, input)).toBe(true);
    expect(writeClosingSummary(root, input)).toBe(false);
    const text = readFileSync(learnings, "utf8");
    expect(text.match(/harness:summary run=run-1/g)).toHaveLength(1);
    expect(text).toContain("**Best val_score:** 0.6000 (commit feed123), baseline 0.5000");
    expect(parseEntries(text).map((e) => e.iteration)).toEqual([1, 2]);
    // A later entry after the summary (another run) still parses.
    appendEntry(learnings, entry({ runId: "run-2", iteration: 1 }));
    expect(parseEntries(readFileSync(learnings, "utf8")).map((e) => `${e.runId}/${e.iteration}`)).toEqual([
      "run-1/1",
      "run-1/2",
      "run-2/1",
    ]);
  });

  it("with no accepted change, points the operator at PROGRAM.md; appendSummary is idempotent", () => {
    const file = join(dir, "learnings.md");
    const facts = {
      runId: "r",
      stopReason: "deadline",
      bestValScore: 0.5,
      bestCommit: "baseline",
      baselineScore: 0.5,
      accepted: 0,
      rejected: 3,
      iterations: 3,
      entries: [],
    };
    expect(appendSummary(file, facts)).toBe(true);
    expect(appendSummary(file, facts)).toBe(false);
    const text = readFileSync(file, "utf8");
    expect(text).toContain("**Best val_score:** 0.5000 (baseline; no accepted change beat it), baseline 0.5000");
    expect(text).toContain("- no change passed the gate: review PROGRAM.md and the rejected hypotheses above");
    expect(text).toContain("**Most frequent patterns:** none named");
  });

  it("a damaged results.tsv stops the summary and leaves learnings.md untouched", () => {
    const ws = join(dir, "workspace");
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, "results.tsv"), "iteration\tval_score\n");
    const input = { runId: "r", stopReason: "x", bestValScore: null, accepted: 0, rejected: 0, iterations: 0 };
    expect(() => writeClosingSummary(dir, input)).toThrow(FileDamagedError);
    expect(() => readFileSync(join(ws, "learnings.md"))).toThrow();
  });
});
