/**
 * Several candidates per round, end to end through the daemon: real SQLite, git worktrees, processes, and the
 * test LLM server playing each candidate's coding session on the stochastic benchmark (known truth). The
 * agents run unsealed (`sandbox: none`): the seal has its own tests.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestLlmServer, type TestLlmServer } from "../../../dev/llm-server/llm-server.ts";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import type { RoundCandidate } from "../../../src/gate/round.ts";
import { pairedRule } from "../../../src/gate/rules/paired.ts";
import type { PairedSetup } from "../../../src/gate/rules/paired-types.ts";
import { driveSync, INCUMBENT, runKey } from "../../../src/gate/rules/types.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { readResults } from "../../../src/workspace/files.ts";
import { REPO_ROOT } from "../../helpers/experiment.ts";
import { prepareRaceExperiment } from "../../helpers/race-campaign.ts";
import { layeredAgent, type Plan, raceCodingModel } from "../../helpers/race-coding-model.ts";
import { resultTimes } from "../../helpers/result-times.ts";
import { stochasticAgent } from "../../helpers/stochastic.ts";
import { tempDir } from "../../helpers/temp.ts";

const CLI = join(REPO_ROOT, "bin", "auto-harness.js");
let server: TestLlmServer;
let prepared = "";

const FIX = { skills: ["alpha", "delta"], variant: "fix-c2" };
/** c2 holds the one real fix; its siblings change only their noise. */
const ONE_FIX: Plan = (s) => (s.candidate === "c2" ? FIX : { variant: `neutral-${s.candidate}-${s.iteration}` });

function daemon(dir: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, "daemon", "--dir", dir], {
      env: { ...process.env, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: "test-key", LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("exit", (code) => done({ code, stderr }));
  });
}

/** Runs the daemon until the run is done (a first exit 0, then "nothing to do"). */
async function finish(dir: string): Promise<void> {
  for (let i = 0; i < 6; i++) {
    const r = await daemon(dir);
    if (r.code === EXIT_NOTHING_TO_DO) return;
    expect(r.code, r.stderr).toBe(0);
  }
  throw new Error("the run did not finish");
}

/**
 * A copy of the prepared experiment with these settings. The run bank gets room for a race in the first
 * round (`gate_bank_slack`): by default a night's held-out runs stay near the original's one pass per
 * iteration, which a first round of three candidates and the incumbent (four passes) would exhaust.
 */
function experiment(config: Record<string, unknown>): string {
  config = { gate_bank_slack: 8, ...config };
  const dir = tempDir("ah-race-");
  cpSync(prepared, dir, { recursive: true });
  const extra = Object.entries(config).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  // A setting given here replaces the prepared one.
  const kept = readFileSync(join(prepared, "experiment_config.yaml"), "utf8")
    .split("\n")
    .filter((l) => l !== "" && !(l.split(":")[0]! in config));
  writeFileSync(join(dir, "experiment_config.yaml"), `${[...kept, ...extra].join("\n")}\n`);
  const git = (...a: string[]) =>
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...a], { cwd: dir });
  git("commit", "-qm", "race settings", "--", "experiment_config.yaml");
  return dir;
}

function facts(dir: string) {
  const j = Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });
  try {
    const run = j.runs.latestRun()!;
    const decisions = j.gateRecords.gateDecisions(run.id);
    const coding = j.ledger.llmCalls(run.id).filter((c) => c.role === "coding");
    return {
      run,
      decisions: decisions.map((d) => ({
        iteration: d.iteration,
        accept: d.accept,
        valScore: d.valScore,
        testRuns: d.testRuns,
        winner: d.details.winner,
        candidates: (d.details.candidates as RoundCandidate[]).map((c) => ({
          id: c.id,
          verdict: c.verdict,
          diff: c.diff,
          regatedFrom: c.regatedFrom,
        })),
        incumbentTrials: [
          ...new Set(
            j.gateRecords
              .gateRuns(run.id, d.iteration)
              .filter((r) => r.arm === INCUMBENT)
              .map((r) => r.trial),
          ),
        ],
      })),
      rounds: decisions.map((d) => ({
        setup: d.details.setup as PairedSetup,
        runs: j.gateRecords.gateRuns(run.id, d.iteration),
      })),
      paid: coding.map((c) => `${c.stepKey}:${c.promptHash}`),
    };
  } finally {
    j.close();
  }
}

const cli = (dir: string, ...a: string[]) =>
  execFileSync(process.execPath, [CLI, ...a, "--dir", dir], {
    encoding: "utf8",
    env: { ...process.env, LOG_LEVEL: "warn" },
  });

/** The working tree clean, and no candidate's copy left (git forgot them too). */
function expectNothingLeft(dir: string): void {
  expect(git(dir, "status", "--porcelain")).toBe("");
  expect(git(dir, "worktree", "list").trim().split("\n")).toHaveLength(1);
  expect(existsSync(join(dir, "workspace", "candidates"))).toBe(false);
}

const git = (dir: string, ...a: string[]) => execFileSync("git", a, { cwd: dir, encoding: "utf8" });

describe("a race of candidates, through the daemon", () => {
  beforeAll(async () => {
    server = await startTestLlmServer({ responder: raceCodingModel(ONE_FIX) });
    // Each test's settings are added to a copy (`experiment`).
    prepared = await prepareRaceExperiment(server, {});
  }, 300_000);
  afterAll(async () => {
    rmSync(prepared, { recursive: true, force: true });
    await server?.close();
  });

  it("edits three candidates at once, each in its own copy, and the race picks the one real fix", {
    timeout: 300_000,
  }, async () => {
    const model = raceCodingModel(ONE_FIX);
    server.setResponder(model);
    const dir = experiment({ candidates: 3, max_iterations: 1 });
    await finish(dir);
    const f = facts(dir);
    expect(f.decisions).toHaveLength(1);
    const d = f.decisions[0]!;
    expect([d.accept, d.winner]).toEqual([true, "c2"]);
    // Each copy holds its own edit only: the diffs journaled with the round name each one's variant alone.
    const byId = new Map(d.candidates.map((c) => [c.id, c]));
    expect(byId.get("c1")!.diff).toContain("neutral-c1-1");
    expect(byId.get("c2")!.diff).toContain("fix-c2");
    expect(byId.get("c3")!.diff).toContain("neutral-c3-1");
    for (const [id, c] of byId)
      for (const other of ["neutral-c1-1", "fix-c2", "neutral-c3-1"].filter((v) => !v.includes(id)))
        expect(c.diff).not.toContain(other);
    // At once: every candidate's session had started before the first one finished.
    const edits = model.sessions.filter((s) => s.candidate !== null).map((s) => s.candidate);
    const lastFirst = Math.max(...["c1", "c2", "c3"].map((c) => edits.indexOf(c)));
    expect(lastFirst).toBeLessThan(edits.lastIndexOf("c1"));
    // The winner is committed in the working tree; its copies are gone; nothing is left modified.
    expect(readFileSync(join(dir, "agent", "agent.ts"), "utf8")).toBe(stochasticAgent(FIX));
    expect(git(dir, "status", "--porcelain")).toBe("");
    expect(git(dir, "worktree", "list").trim().split("\n")).toHaveLength(1);
    expect(existsSync(join(dir, "workspace", "candidates", f.run.id, "1"))).toBe(false);
    const rows = readResults(join(dir, "workspace", "results.tsv"));
    expect(rows.at(-1)!.valScore.toFixed(4)).toBe(d.valScore!.toFixed(4));
    // gate --explain tells each candidate: what it tried, where it stopped and why, and why the winner won.
    const explained = cli(dir, "gate", "--explain", "1");
    expect(explained).toMatch(/c2 won: /);
    for (const id of ["c1", "c2", "c3"])
      expect(explained).toMatch(new RegExp(`\\n  ${id}: (winner|rejected), stopped at`));
    expect(explained).toContain("hypothesis: ");
    expect(explained).toContain("fix-c2");
  });

  it("a neutral race accepts nothing", { timeout: 300_000 }, async () => {
    server.setResponder(raceCodingModel((s) => ({ variant: `neutral-${s.candidate}` })));
    const dir = experiment({ candidates: 3, max_iterations: 1 });
    const before = readFileSync(join(dir, "agent", "agent.ts"), "utf8");
    await finish(dir);
    const d = facts(dir).decisions[0]!;
    expect(d.accept).toBe(false);
    expect(d.winner).toBeNull();
    expect(d.candidates.map((c) => c.verdict)).toEqual(["rejected", "rejected", "rejected"]);
    expect(readFileSync(join(dir, "agent", "agent.ts"), "utf8")).toBe(before);
    expect(git(dir, "log", "--format=%s")).not.toMatch(/improve:/);
  });

  it("killed at every phase of a race (mid-edit, mid-screen, mid-race, mid-record), resumes exactly", {
    timeout: 600_000,
  }, async () => {
    server.setResponder(raceCodingModel(ONE_FIX));
    const whole = experiment({ candidates: 3, max_iterations: 1 });
    await finish(whole);
    const killed = experiment({ candidates: 3, max_iterations: 1 });
    const kept = new Map<string, number>();
    for (const point of ["race:candidate-edited:1", "gate:screened:2", "gate:run-landed:15", "record:before-commit"]) {
      const r = await daemon(killed, { AUTO_HARNESS_CRASH_AT: point });
      expect(r.code, `${point}: ${r.stderr}`).toBeNull();
      expect(r.stderr).toContain(`crash point ${point.split(":").slice(0, 2).join(":")}`);
      for (const [k, c] of resultTimes(killed)) if (!kept.has(k)) kept.set(k, c);
      // status shows where each candidate of the round stands.
      const stages = (JSON.parse(cli(killed, "status", "--json")).candidates as { stage: string }[]).map(
        (c) => c.stage,
      );
      if (point.startsWith("race:")) expect(stages.filter((x) => x === "editing")).toHaveLength(2);
      if (point.startsWith("gate:run")) expect(stages[1]).toBe("racing");
    }
    await finish(killed);
    // Each run's held-out order is seeded by its own run id: the two runs agree on the decision, and the
    // resumed one made exactly the runs an uninterrupted drive of its own journaled setup makes.
    const [a, b] = [facts(whole), facts(killed)];
    const verdicts = (x: typeof a) => x.decisions.map((d) => [d.accept, d.winner, d.candidates]);
    expect(verdicts(b)).toEqual(verdicts(a));
    const round = b.rounds[0]!;
    const truth = new Map(round.runs.map((r) => [runKey(r), r.reward]));
    const drive = driveSync(pairedRule, round.setup, (r) => {
      expect(truth.has(runKey(r)), `run ${runKey(r)} was never made`).toBe(true);
      return truth.get(runKey(r))!;
    });
    expect(drive.results.length).toBe(round.runs.length);
    expect([drive.decision.winner, drive.decision.heldOutRuns]).toEqual(["c2", b.decisions[0]!.testRuns]);
    // Finished task results were reused, never run again (their journal rows keep their first time).
    const after = resultTimes(killed);
    for (const [k, c] of kept) expect(after.get(k), k).toBe(c);
    // No coding call paid twice: each (session, prompt) once in the ledger, as many as the whole run paid.
    expect(new Set(b.paid).size).toBe(b.paid.length);
    expect(b.paid.length).toBe(a.paid.length);
    // One winner, committed once.
    expect(git(killed, "log", "--format=%s").match(/improve:/g)).toHaveLength(1);
    expect(readFileSync(join(killed, "agent", "agent.ts"), "utf8")).toBe(stochasticAgent(FIX));
  });

  it("a budget that runs out while the candidates edit ends the run cleanly: within budget, no copy or half edit left", {
    timeout: 300_000,
  }, async () => {
    server.setResponder(raceCodingModel(ONE_FIX));
    // A whole race costs about $0.10 here, but each coding call reserves its worst case (~$0.22) until it
    // is paid, the sessions' reservations counted together: the analysis fits, the race's edits do not.
    const dir = experiment({ candidates: 3, max_iterations: 1, budget_usd: 0.27 });
    const before = readFileSync(join(dir, "agent", "agent.ts"), "utf8");
    await finish(dir);
    const j = Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });
    try {
      const run = j.runs.latestRun()!;
      expect([run.status, run.stopReason]).toEqual(["done", expect.stringMatching(/budget/)]);
      expect(j.ledger.spend(run.id).totalUsd).toBeLessThanOrEqual(0.27);
      expect(j.runs.steps(run.id).map((st) => [st.step, st.status])).toContainEqual(["edit", "failed"]);
      expect(j.gateRecords.gateDecisions(run.id)).toEqual([]);
    } finally {
      j.close();
    }
    expect(readFileSync(join(dir, "agent", "agent.ts"), "utf8")).toBe(before);
    expectNothingLeft(dir);
  });

  it("a deadline passed mid-race lets the round finish to its decision, and starts no other", {
    timeout: 300_000,
  }, async () => {
    server.setResponder(raceCodingModel(ONE_FIX));
    const dir = experiment({ candidates: 3, max_iterations: 3 });
    const r = await daemon(dir, { AUTO_HARNESS_CRASH_AT: "gate:run-landed:5" });
    expect(r.code, r.stderr).toBeNull();
    // The operator sets a deadline that has already passed; the run resumes mid-race.
    writeFileSync(
      join(dir, "experiment_config.yaml"),
      `${readFileSync(join(dir, "experiment_config.yaml"), "utf8")}deadline: "2020-01-01T00:00:00Z"\n`,
    );
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "deadline"], { cwd: dir });
    await finish(dir);
    const f = facts(dir);
    expect(f.decisions.map((d) => [d.iteration, d.accept, d.winner])).toEqual([[1, true, "c2"]]);
    expect(f.run.stopReason).toMatch(/deadline/);
    expect(git(dir, "log", "--format=%s").match(/improve:/g)).toHaveLength(1);
    expectNothingLeft(dir);
  });

  it("a runner-up is re-gated against the new champion the next round, never merged blind", {
    timeout: 300_000,
  }, async () => {
    // The agent as two skill lines apart (answering as v0 did). Round 1: c1 sets one line, c2 the other, to
    // the same large fix: their runs agree draw for draw, so both beat the old champion at the same look and
    // one wins. Round 2: the runner-up's change, applied three-way on the new champion, races as c1 against
    // it (c2 a neutral fresh session); it adds nothing there, so it is not merged. Both race (by default only
    // the best on train does, and there is no runner-up).
    const dir = experiment({ candidates: 2, max_iterations: 2, gate_race_width: 2 });
    writeFileSync(join(dir, "agent", "agent.ts"), layeredAgent([], []));
    execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "layered agent"], { cwd: dir });
    const FIXED = ["alpha", "beta", "delta"];
    const plan: Plan = (s) =>
      s.iteration === 1
        ? {
            variant: `r1-${s.candidate}`,
            source: s.candidate === "c1" ? layeredAgent(FIXED, []) : layeredAgent([], FIXED),
          }
        : { variant: `neutral-${s.candidate}-${s.iteration}` };
    const model = raceCodingModel(plan);
    server.setResponder(model);
    await finish(dir);
    const f = facts(dir);
    const [r1, r2] = f.decisions;
    expect(r1!.accept).toBe(true);
    const verdicts = r1!.candidates.map((c) => c.verdict).sort();
    expect(verdicts).toEqual(["runner-up", "winner"]);
    const up = r1!.candidates.find((c) => c.verdict === "runner-up")!;
    // Round 2's c1 is the runner-up's change on the new champion: no coding session made it.
    const regated = r2!.candidates.find((c) => c.id === "c1")!;
    expect(regated.regatedFrom).toBe(1);
    expect(model.sessions.filter((s) => s.iteration === 2 && s.candidate === "c1")).toEqual([]);
    const changed = up.id === "c1" ? "const ONE" : "const TWO";
    const kept = up.id === "c1" ? "const TWO" : "const ONE";
    expect(regated.diff).toContain(`+${changed}`);
    expect(regated.diff).not.toContain(`+${kept}`);
    expect(r2!.candidates.find((c) => c.id === "c1")!.verdict).toBe("rejected");
    // Incumbent runs never shared between rounds; the committed agent is round 1's winner alone.
    for (const t of r2!.incumbentTrials) expect(r1!.incumbentTrials).not.toContain(t);
    const winner = r1!.candidates.find((c) => c.verdict === "winner")!.id;
    expect(readFileSync(join(dir, "agent", "agent.ts"), "utf8")).toBe(
      winner === "c1" ? layeredAgent(FIXED, []) : layeredAgent([], FIXED),
    );
    expect(git(dir, "log", "--format=%s").match(/improve:/g)).toHaveLength(1);
  });
});
