import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { createStandInSteps } from "../../../dev/steps/stand-in.ts";
import { main } from "../../../src/cli/program.ts";
import { EXIT_NOTHING_TO_DO, type StepsFactory } from "../../../src/cli/run.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { Capture } from "../../helpers/capture.ts";
import { preparedExperiment, sandboxLineHere, spawnCli, waitForState } from "../../helpers/experiment.ts";
import { until } from "../../helpers/processes.ts";
import { tempDir } from "../../helpers/temp.ts";

const stepsFactory: StepsFactory = (exp, opened, clock) =>
  createStandInSteps({ paths: exp.paths, journal: opened.journal, clock, delayMs: 0 });
const standIn = { stepsFactory };
const limitsOfRun = (snapshot: unknown): number | null | undefined =>
  (snapshot as { context?: { limits?: { deadline: number | null } } } | null)?.context?.limits?.deadline;

async function cli(args: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(["node", "auto-harness", ...args], { stdout, stderr, ...standIn });
  return { code, out: stdout.text, err: stderr.text };
}

describe("run, resume, stop and status through the CLI", () => {
  it("refuses a second run while one is unfinished, and --new abandons it", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 2 });
    const journal = Journal.open(join(dir, "workspace", "journal.sqlite"));
    journal.runs.createRun("run-old", {});
    journal.close();

    const refused = await cli(["run", "--dir", dir]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(
      /run run-old \(running, not started, iteration 0\) is unfinished; `auto-harness resume` continues it/,
    );

    const fresh = await cli(["run", "--new", "--dir", dir]);
    expect(fresh.code, fresh.err).toBe(0);
    expect(fresh.err).toMatch(/run done: max_iterations reached: 2/);
    const after = Journal.open(join(dir, "workspace", "journal.sqlite"), { readonly: true });
    expect(after.runs.getRun("run-old")?.status).toBe("abandoned");
    expect(after.runs.latestRun()?.status).toBe("done");
    after.close();

    const human = await cli(["status", "--dir", dir]);
    expect(human.out).toMatch(/^run {8}run-\S+ {2}done {2}\(no daemon running\)\nstate {6}done, iteration 2\n/);
    expect(human.out).toMatch(/\nbest {7}val_score 0\.5100 \(baseline 0\.5000\)\n/);
    expect(human.out).toMatch(/\nchanges {4}1 accepted, 1 rejected, 0 unchanged\n/);
    expect(human.out).toMatch(/\nstopped {4}max_iterations reached: 2\nlast error none\n$/);
    const status = await cli(["status", "--json", "--dir", dir]);
    const report = JSON.parse(status.out);
    expect(report).toMatchObject({ status: "done", state: "done", iteration: 2, accepted: 1, rejected: 1 });
    expect(report.stopReason).toMatch(/max_iterations/);

    // The daemon mode does not start another run over a finished one.
    const daemon = await cli(["daemon", "--dir", dir]);
    expect(daemon.code).toBe(EXIT_NOTHING_TO_DO);
    expect(daemon.err).toMatch(/has finished; start a new one with `auto-harness run`/);
  });

  it("`stop` is a stop rule: the running daemon finishes its iteration, summarizes and exits 0", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 50 });
    const daemon = spawnCli(["run", "--dir", dir], { STAND_IN_DELAY_MS: "100" });
    await waitForState(join(dir, "workspace", "journal.sqlite"), "analyze");
    const stop = await cli(["stop", "--dir", dir]);
    expect(stop.code).toBe(0);
    expect(stop.out).toMatch(/stop requested for run-\S+: it finishes the current iteration.*\(daemon pid \d+\)/);
    const { code } = await daemon.exited;
    expect(code, daemon.stderr()).toBe(0);
    const report = JSON.parse((await cli(["status", "--json", "--dir", dir])).out);
    expect(report).toMatchObject({ status: "done", stopReason: "operator requested stop", iteration: 1 });
    expect(readFileSync(join(dir, "workspace", "learnings.md"), "utf8")).toMatch(/harness:summary/);
  });

  it("a resumed run takes its limits from the config as it is now", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 2 });
    const daemon = spawnCli(["run", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
    await waitForState(join(dir, "workspace", "journal.sqlite"), "benchmark");
    daemon.child.kill("SIGTERM");
    expect((await daemon.exited).code).toBe(0);
    writeFileSync(join(dir, "experiment_config.yaml"), `benchmark: "example"\nmax_iterations: 3\n${sandboxLineHere()}`);
    // The config change is the operator's and stays uncommitted; a resumed run does not require a clean tree.
    const resumed = await cli(["resume", "--dir", dir]);
    expect(resumed.code, resumed.err).toBe(0);
    expect(resumed.err).toMatch(/limits from the config now: maxIterations 2 -> 3/);
    expect(resumed.err).toMatch(/run done: max_iterations reached: 3/);
  });

  it("a resume under max_hours reports no limits change nobody made, and counts the interrupted step once more", async () => {
    const dir = preparedExperiment(tempDir(), { max_iterations: 2, max_hours: 8 });
    const file = join(dir, "workspace", "journal.sqlite");
    const started = spawnCli(["run", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
    await waitForState(file, "benchmark");
    started.child.kill("SIGTERM");
    expect((await started.exited).code, started.stderr()).toBe(0);
    const resumed = spawnCli(["resume", "--dir", dir], { STAND_IN_DELAY_MS: "60000" });
    for (let i = 0; i < 2000 && !/resuming run/.test(resumed.stderr()); i++) await new Promise((r) => setTimeout(r, 5));
    // Stopped while its benchmark step runs again: the second attempt, journaled as such.
    const attempts = () => {
      const j = Journal.open(file, { readonly: true });
      try {
        return j.runs.getStep(j.runs.latestRun()!.id, 1, "benchmark")?.attempts ?? 0;
      } finally {
        j.close();
      }
    };
    await until("the benchmark step's second attempt", () => attempts() === 2, 30_000);
    resumed.child.kill("SIGTERM");
    expect((await resumed.exited).code, resumed.stderr()).toBe(0);
    expect(resumed.stderr()).toMatch(/resuming run run-\S+ at benchmark, iteration 1/);
    expect(resumed.stderr()).not.toMatch(/limits from the config now/);
    const journal = Journal.open(file, { readonly: true });
    try {
      const run = journal.runs.latestRun()!;
      expect(journal.runs.getStep(run.id, 1, "benchmark")).toMatchObject({ status: "started", attempts: 2 });
      // The deadline counts from the run's own start, on the clock the run keeps.
      expect(limitsOfRun(run.snapshot)).toBe(run.createdAt + 8 * 3_600_000);
    } finally {
      journal.close();
    }
  });

  it("status answers while a daemon is still creating the journal", async () => {
    const dir = preparedExperiment(tempDir());
    // An empty database file: what a reader may see before the first migration commits.
    new Database(join(dir, "workspace", "journal.sqlite")).close();
    const status = await cli(["status", "--dir", dir]);
    expect(status.code, status.err).toBe(0);
    expect(status.out).toBe("no run yet (baseline val_score 0.5000); start one with `auto-harness run`\n");
  });

  it("resume without an unfinished run says how to start one", async () => {
    const dir = preparedExperiment(tempDir());
    const r = await cli(["resume", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no run to resume; start one with `auto-harness run`/);
  });

  it("a run refuses to start on a dirty tree, with the fix", async () => {
    const dir = preparedExperiment(tempDir());
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, "agent", "agent.ts"), "export default { run: async () => 'changed' };\n");
    const r = await cli(["run", "--dir", dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/agent\/agent\.ts/);
  });
});
