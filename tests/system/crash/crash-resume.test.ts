import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { loopIterationOf, readResults } from "../../../src/workspace/files.ts";
import { preparedExperiment, readState, spawnCli, stoppedAt, waitForState } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const ITERATIONS = 6;
const STATES = ["check", "benchmark", "analyze", "edit", "gate", "record", "learn", "summarize"] as const;

/** A seeded PRNG, so a failing sequence of kill moments can be replayed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("crash and resume with real processes", () => {
  it("SIGKILL at every state and at random moments loses and duplicates nothing", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: ITERATIONS, patience: 50 });
    const journalFile = join(dir, "workspace", "journal.sqlite");
    const random = prng(20261124);
    const env = { STAND_IN_DELAY_MS: "40" };
    const targets: (string | number)[] = [
      ...STATES.filter((s) => s !== "summarize"),
      ...Array(20)
        .fill(0)
        .map(() => 50 + Math.floor(random() * 900)),
    ];
    const killedAt: string[] = [];
    let finished = false;

    for (const target of targets) {
      if (finished) break;
      // A state-targeted kill lands as the daemon enters the state (it stops itself there): polling the journal
      // missed short states on a loaded machine.
      const cli = spawnCli(
        ["daemon", "--dir", dir],
        typeof target === "string" ? { ...env, AUTO_HARNESS_STOP_AT: target } : env,
      );
      let exited = false;
      void cli.exited.then(() => {
        exited = true;
      });
      if (typeof target === "string") await stoppedAt(cli);
      else await sleep(target);
      if (!exited) {
        killedAt.push(`${target}@${readState(journalFile).state}`);
        cli.child.kill("SIGKILL");
      }
      const { code } = await cli.exited;
      if (code === EXIT_NOTHING_TO_DO && readState(journalFile).status === "done") finished = true;
    }
    // Let it finish undisturbed.
    while (!finished) {
      const cli = spawnCli(["daemon", "--dir", dir], env);
      const { code } = await cli.exited;
      expect(code, cli.stderr()).toBe(EXIT_NOTHING_TO_DO);
      finished = readState(journalFile).status === "done";
    }
    expect(killedAt.length).toBeGreaterThanOrEqual(20);
    // Every state-targeted kill landed in its state.
    const hit = new Set(killedAt.filter((k) => k.split("@")[0] === k.split("@")[1]).map((k) => k.split("@")[0]));
    expect(hit.size, killedAt.join(" ")).toBe(STATES.length - 1);

    const journal = Journal.open(journalFile);
    try {
      expect(journal.integrityCheck()).toBe("ok");
      const run = journal.runs.latestRun()!;
      expect(run.status).toBe("done");
      const steps = journal.runs.steps(run.id);
      expect(steps.filter((s) => s.status === "started")).toEqual([]);
      // Every iteration ran each of its steps to `done`, exactly once per key.
      for (let i = 1; i <= ITERATIONS; i++) {
        const names = steps.filter((s) => s.iteration === i && s.status === "done").map((s) => s.step);
        const changed = i % 5 !== 0;
        const expected = changed
          ? ["benchmark", "analyze", "edit", "gate", "record", "learn"]
          : ["benchmark", "analyze", "edit", "learn"];
        for (const step of expected) expect(names, `iteration ${i}`).toContain(step);
        if (!changed) expect(names).not.toContain("gate");
      }
      expect(new Set(steps.map((s) => s.key)).size).toBe(steps.length);
      const iterations = journal.runs.iterations(run.id);
      expect(iterations.map((r) => r.iteration)).toEqual([1, 2, 3, 4, 5, 6]);
      const accepted = iterations.filter((r) => r.outcome === "accepted").map((r) => r.iteration);
      expect(accepted).toEqual([1, 3]);

      // results.tsv: the baseline plus exactly one row per accepted iteration.
      const rows = readResults(join(dir, "workspace", "results.tsv"));
      expect(rows.map((r) => r.iteration)).toEqual(rows.map((_r, i) => i));
      expect(rows.map(loopIterationOf)).toEqual([0, ...accepted]);
      // learnings.md: exactly one entry per finished iteration and one closing summary.
      const learnings = readFileSync(join(dir, "workspace", "learnings.md"), "utf8");
      for (let i = 1; i <= ITERATIONS; i++) {
        expect(learnings.split(`run=${run.id} iteration=${i} -->`).length - 1, `entry ${i}`).toBe(1);
      }
      expect(learnings.split(`harness:summary run=${run.id}`).length - 1).toBe(1);
    } finally {
      journal.close();
    }
  }, 300_000);

  it("a second daemon on the same workspace refuses with exit 2", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 1 });
    const first = spawnCli(["run", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
    const journalFile = join(dir, "workspace", "journal.sqlite");
    await waitForState(journalFile, "benchmark");
    const second = spawnCli(["resume", "--dir", dir]);
    const { code } = await second.exited;
    expect(code).toBe(2);
    expect(second.stderr()).toMatch(/another auto-harness \(pid \d+/);
    first.child.kill("SIGKILL");
    await first.exited;
  }, 60_000);

  it("SIGTERM stops within the kill timeout with exit 0 and the state persisted; resume completes", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 1 });
    const journalFile = join(dir, "workspace", "journal.sqlite");
    const cli = spawnCli(["run", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
    await waitForState(journalFile, "benchmark");
    cli.child.kill("SIGTERM");
    // pm2's kill_timeout (10 s, ecosystem.config.cjs) is the bound that matters: past it the daemon would be
    // SIGKILLed. 8 s leaves a loaded machine its margin.
    const outcome = await Promise.race([cli.exited, sleep(8000).then(() => "still running" as const)]);
    expect(outcome, cli.stderr()).toEqual({ code: 0, signal: null });
    expect(readState(journalFile)).toEqual({ state: "benchmark", status: "stopped" });

    const resumed = spawnCli(["resume", "--dir", dir], { STAND_IN_DELAY_MS: "5" });
    const { code } = await resumed.exited;
    expect(code, resumed.stderr()).toBe(0);
    expect(resumed.stderr()).toMatch(/resuming run run-\S+ at benchmark, iteration 1/);
    expect(readState(journalFile)).toEqual({ state: "done", status: "done" });
  }, 60_000);
});
