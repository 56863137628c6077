import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { EditOutput, GateOutput } from "../../../src/contracts.ts";
import { FileDamagedError } from "../../../src/errors.ts";
import { openRepo } from "../../../src/git/repo.ts";
import { improveMessage, recordIteration } from "../../../src/record/record.ts";
import { readResults } from "../../../src/workspace/files.ts";
import { AGENT_V1, BASELINE_RESULTS, makeRepo, type TempRepo } from "../../fixtures/temp-repo.ts";

let repo: TempRepo | undefined;
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
});

const RESULTS = BASELINE_RESULTS;
// A row the loop records carries its loop iteration in the appended `loop_iteration` column.
const WITH_LOOP_COLUMN = RESULTS.replace(/^([^\n]*)\n/, "$1\tloop_iteration\treason\n");
/** The accepted row's reason column: the gate's val_score against the best before, and the suite. */
const REASON = "val_score 0.7000 (best before 0.6000), suite 4/5 passed";
const CHILD = fileURLToPath(new URL("../../fixtures/record-crash-child.ts", import.meta.url));
const EDITED = "export const prompt = 'ask for the order id';\n";

const edit: EditOutput = {
  changed: true,
  hypothesis: "asking for the order id first avoids wrong refunds",
  changeSummary: "Ask for the order id before any refund.",
  commitMessage: "ask for the order id before refunds",
  pattern: "refund without identification",
  needsFromHuman: "none",
};
const passed: GateOutput = {
  passed: true,
  valScore: 0.7,
  previousBest: 0.6,
  suitePassed: 4,
  suiteTotal: 5,
  promoted: [],
  reasons: [],
};
const failed: GateOutput = { ...passed, passed: false, valScore: 0.5, reasons: ["full test split: ..."] };
const now = () => new Date("2026-03-01T02:00:00.000Z");

function experiment(name: string): TempRepo {
  const r = makeRepo(name);
  r.write("workspace/results.tsv", RESULTS);
  r.write("agent/agent.ts", EDITED);
  return r;
}

const trailerCommits = (r: TempRepo, value: string) =>
  r
    .git("log", "--format=%H %(trailers:key=Harness-Run,valueonly,separator=)")
    .trim()
    .split("\n")
    .filter((l) => l.endsWith(` ${value}`));

describe("recordIteration", () => {
  it("on pass commits only agent/agent.ts with message and trailer, and appends the row; a re-run changes nothing", async () => {
    repo = experiment("rec-pass");
    repo.write("README.md", "# operator's unrelated edit\n");
    const deps = { root: repo.root, repo: openRepo(repo.root), runId: "run-7", iteration: 1, edit, gate: passed, now };

    const out = await recordIteration(deps);
    expect(out.accepted).toBe(true);
    expect(out.commit).toBe(repo.git("rev-parse", "HEAD").trim());
    expect(repo.git("log", "-1", "--format=%B").trim()).toBe(
      "improve: ask for the order id before refunds\n\nHarness-Run: run-7/1",
    );
    expect(repo.git("show", "--name-only", "--format=", "HEAD").trim()).toBe("agent/agent.ts");
    expect(repo.git("status", "--porcelain").trim()).toBe("M README.md");
    const resultsFile = join(repo.root, "workspace/results.tsv");
    expect(readFileSync(resultsFile, "utf8")).toBe(
      `${WITH_LOOP_COLUMN}1\t0.7000\t${out.commit!.slice(0, 7)}\t4\t5\t2026-03-01T02:00:00.000Z\t1\t${REASON}\n`,
    );

    const again = await recordIteration(deps);
    expect(again).toEqual(out);
    expect(trailerCommits(repo, "run-7/1")).toHaveLength(1);
    expect(readResults(resultsFile).filter((r) => r.iteration === 1)).toHaveLength(1);
  });

  it("survives a SIGKILL between the commit and the row: resume gives one commit and one row", async () => {
    repo = experiment("rec-crash");
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, repo.root, "run-9", "4"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.on("exit", (code, signal) => resolve(signal ?? code)),
    );
    let committed: string | undefined;
    for await (const line of createInterface({ input: child.stdout })) {
      if (line.startsWith("COMMITTED ")) {
        committed = line.slice("COMMITTED ".length);
        child.kill("SIGKILL");
        break;
      }
    }
    expect(await exited, stderr).toBe("SIGKILL");
    expect(committed).toMatch(/^[0-9a-f]{40}$/);
    // The crash window: committed, no row yet.
    expect(repo.git("rev-parse", "HEAD").trim()).toBe(committed);
    const resultsFile = join(repo.root, "workspace/results.tsv");
    expect(readFileSync(resultsFile, "utf8")).toBe(RESULTS);

    const out = await recordIteration({
      root: repo.root,
      repo: openRepo(repo.root),
      runId: "run-9",
      iteration: 4,
      edit,
      gate: passed,
      now,
    });
    expect(out).toEqual({ accepted: true, commit: committed });
    expect(trailerCommits(repo, "run-9/4")).toEqual([`${committed} run-9/4`]);
    expect(repo.git("rev-list", "--count", "HEAD").trim()).toBe("2");
    expect(readFileSync(resultsFile, "utf8")).toBe(
      // Row 1 (numbered as record.py numbers rows), made by loop iteration 4.
      `${WITH_LOOP_COLUMN}1\t0.7000\t${committed!.slice(0, 7)}\t4\t5\t2026-03-01T02:00:00.000Z\t4\t${REASON}\n`,
    );
  });

  it("on fail restores agent/agent.ts to the last accepted commit, past later steering commits", async () => {
    repo = makeRepo("rec-revert");
    repo.write("workspace/results.tsv", RESULTS);
    const r = openRepo(repo.root);
    repo.write("agent/agent.ts", "export const prompt = 'accepted';\n");
    const accepted = await r.commitFile("agent/agent.ts", "improve: accepted");
    repo.write("PROGRAM.md", "# steering\n");
    await r.commitFile("PROGRAM.md", "steer: PROGRAM.md updated");
    const head = repo.git("rev-parse", "HEAD").trim();
    repo.write("agent/agent.ts", "export const prompt = 'rejected edit';\n");

    const out = await recordIteration({
      root: repo.root,
      repo: r,
      runId: "run-1",
      iteration: 2,
      edit,
      gate: failed,
      now,
    });
    expect(out).toEqual({ accepted: false, commit: null });
    expect(repo.read("agent/agent.ts")).toBe("export const prompt = 'accepted';\n");
    expect(repo.git("show", `${accepted}:agent/agent.ts`)).toBe(repo.read("agent/agent.ts"));
    expect(repo.git("rev-parse", "HEAD").trim()).toBe(head);
    expect(repo.git("status", "--porcelain").trim()).toBe("");
    expect(readFileSync(join(repo.root, "workspace/results.tsv"), "utf8")).toBe(RESULTS);
  });

  it("on fail with no accepted change yet restores the template version from HEAD", async () => {
    repo = experiment("rec-revert-initial");
    await recordIteration({
      root: repo.root,
      repo: openRepo(repo.root),
      runId: "r",
      iteration: 1,
      edit,
      gate: failed,
      now,
    });
    expect(repo.read("agent/agent.ts")).toBe(AGENT_V1);
  });

  it("a truncated results.tsv stops the step before committing, naming the file and line", async () => {
    repo = experiment("rec-damaged");
    const file = join(repo.root, "workspace/results.tsv");
    const damaged = `${RESULTS}1\t0.7000\tabc12`;
    writeFileSync(file, damaged);
    const head = repo.git("rev-parse", "HEAD").trim();
    const err = await recordIteration({
      root: repo.root,
      repo: openRepo(repo.root),
      runId: "r",
      iteration: 2,
      edit,
      gate: passed,
      now,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileDamagedError);
    expect((err as FileDamagedError).message).toBe(`${file}:3: expected 6 tab-separated columns, found 3`);
    expect(readFileSync(file, "utf8")).toBe(damaged);
    expect(repo.git("rev-parse", "HEAD").trim()).toBe(head);
    expect(repo.read("agent/agent.ts")).toBe(EDITED);
  });
});

describe("improveMessage", () => {
  it.each([
    [{ commitMessage: "ask first\n\nbody", changeSummary: "x", hypothesis: "h" }, "improve: ask first"],
    [{ commitMessage: "", changeSummary: "Shorter prompt.", hypothesis: "h" }, "improve: Shorter prompt."],
    [{ commitMessage: "improve: already prefixed", changeSummary: "", hypothesis: "" }, "improve: already prefixed"],
    [{ commitMessage: "", changeSummary: "", hypothesis: "" }, "improve: agent change"],
  ])("%j → %s", (e, expected) => {
    expect(improveMessage(e)).toBe(expected);
  });
});
