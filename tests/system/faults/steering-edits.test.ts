/**
 * Steering edits are validated before they are pinned: an experiment_config.yaml that does not load, or an empty
 * PROGRAM.md, saved during a run is not committed; it is set aside, logged and shown by `status` with the field
 * and the fix; the run goes on with the last accepted version, and no later start (pm2's restart) exits 2 on it.
 * Real daemon processes, git and SQLite.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import type { StatusReport } from "../../../src/cli/status.ts";
import { REFUSED_DIR } from "../../../src/steering/steering.ts";
import { expectInvariants } from "../../helpers/expect-invariants.ts";
import { preparedExperiment, REAL_RECORD_CLI, spawnCli, waitForState } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const ITERATIONS = 3;
const SLOW = { STAND_IN_DELAY_MS: "150" };
const BAD_CONFIG = 'benchmark: "example"\nmax_iterations: -3\npatience: 50\n';

const daemon = (dir: string) => spawnCli(["daemon", "--dir", dir], SLOW, REAL_RECORD_CLI);
const git = (dir: string, ...args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8" });

async function statusJson(dir: string): Promise<StatusReport> {
  const cli = spawnCli(["status", "--json", "--dir", dir]);
  expect((await cli.exited).code, cli.stderr()).toBe(0);
  return JSON.parse(cli.stdout()) as StatusReport;
}

function setAside(dir: string, file: string): string[] {
  return readdirSync(join(dir, REFUSED_DIR))
    .filter((f) => f.startsWith(`${file}.`))
    .map((f) => readFileSync(join(dir, REFUSED_DIR, f), "utf8"));
}

describe("steering edits that cannot be used are rejected, never pinned", () => {
  it("an invalid config and an empty PROGRAM.md saved mid-run: not committed, set aside, shown by status; the run finishes", async () => {
    const dir = preparedExperiment(tempDir("steer-"), { max_iterations: ITERATIONS, patience: 50 });
    const config = readFileSync(join(dir, "experiment_config.yaml"), "utf8");
    const program = readFileSync(join(dir, "PROGRAM.md"), "utf8");
    const cli = daemon(dir);
    // Past iteration 1's look at the steering files: the next look is iteration 2's.
    await waitForState(join(dir, "workspace", "journal.sqlite"), "analyze");
    writeFileSync(join(dir, "experiment_config.yaml"), BAD_CONFIG);
    writeFileSync(join(dir, "PROGRAM.md"), "  \n");
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(EXIT_NOTHING_TO_DO);

    expect(git(dir, "log", "--format=%s")).not.toMatch(/^steer:/m);
    expect(readFileSync(join(dir, "experiment_config.yaml"), "utf8")).toBe(config);
    expect(readFileSync(join(dir, "PROGRAM.md"), "utf8")).toBe(program);
    expect(setAside(dir, "experiment_config.yaml")).toEqual([BAD_CONFIG]);
    expect(setAside(dir, "PROGRAM.md")).toEqual(["  \n"]);
    expect(cli.stdout()).toMatch(/experiment_config\.yaml edit rejected, not committed: max_iterations: got -3; /);

    const status = await statusJson(dir);
    expect(status.steeringRejected?.map((r) => [r.file, r.problems[0]])).toEqual([
      ["PROGRAM.md", expect.stringMatching(/^PROGRAM\.md: empty; write what the coding agent should aim for/)],
      ["experiment_config.yaml", expect.stringMatching(/^max_iterations: got -3; .*>=1/)],
    ]);
    const text = spawnCli(["status", "--dir", dir]);
    await text.exited;
    expect(text.stdout()).toMatch(
      /steering +experiment_config\.yaml edit rejected at \S+, not committed: max_iterations: got -3; .*your text is in workspace\/steering-refused\/experiment_config\.yaml\./,
    );
    expect(expectInvariants(dir, ITERATIONS)).toEqual([1, 3]);
  }, 120_000);

  it("an invalid config found at a restart (pm2's, after a crash) does not exit 2: the run goes on with the accepted one", async () => {
    const dir = preparedExperiment(tempDir("steer-"), { max_iterations: ITERATIONS, patience: 50 });
    const config = readFileSync(join(dir, "experiment_config.yaml"), "utf8");
    const first = daemon(dir);
    await waitForState(join(dir, "workspace", "journal.sqlite"), "analyze");
    first.child.kill("SIGKILL");
    await first.exited;
    // Saved while no daemon ran: the next start is the first to see it.
    writeFileSync(join(dir, "experiment_config.yaml"), BAD_CONFIG);

    const restarted = daemon(dir);
    const { code } = await restarted.exited;
    expect(code, restarted.stderr()).toBe(EXIT_NOTHING_TO_DO);
    expect(restarted.stderr()).toMatch(
      /experiment_config\.yaml edit rejected: max_iterations: got -3; .*the run goes on with the last accepted version; your text is in workspace\/steering-refused\//,
    );
    expect(readFileSync(join(dir, "experiment_config.yaml"), "utf8")).toBe(config);
    expect(git(dir, "log", "--format=%s")).not.toMatch(/^steer:/m);
    expect((await statusJson(dir)).steeringRejected?.map((r) => r.file)).toEqual(["experiment_config.yaml"]);
    expect(expectInvariants(dir, ITERATIONS)).toEqual([1, 3]);

    // A fixed edit is committed as steering, and the rejection is no longer shown.
    writeFileSync(join(dir, "experiment_config.yaml"), config.replace("patience: 50", "patience: 40"));
    const next = spawnCli(["daemon", "--new", "--dir", dir], { ...SLOW, STAND_IN_DELAY_MS: "5" }, REAL_RECORD_CLI);
    expect((await next.exited).code, next.stderr()).toBe(EXIT_NOTHING_TO_DO);
    expect(git(dir, "log", "--format=%s")).toMatch(/^steer: experiment_config\.yaml updated$/m);
    expect((await statusJson(dir)).steeringRejected).toEqual([]);
  }, 120_000);

  it("`run` with a config that does not load still refuses at once, naming the field (the operator is at the terminal)", async () => {
    const dir = preparedExperiment(tempDir("steer-"), { max_iterations: 1 });
    writeFileSync(join(dir, "experiment_config.yaml"), BAD_CONFIG);
    const cli = spawnCli(["run", "--dir", dir], SLOW, REAL_RECORD_CLI);
    expect((await cli.exited).code).toBe(2);
    expect(cli.stderr()).toMatch(/max_iterations: got -3/);
  }, 60_000);
});
