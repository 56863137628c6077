import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { EXIT_RESUMABLE } from "../../../src/errors.ts";
import { expectInvariants } from "../../helpers/expect-invariants.ts";
import {
  preparedExperiment,
  REAL_RECORD_CLI,
  readState,
  resume,
  spawnCli,
  stoppedAt,
} from "../../helpers/experiment.ts";
import { fill } from "../../helpers/fault-campaign.ts";
import { tempDir } from "../../helpers/temp.ts";

const ITERATIONS = 3;

/** A small tmpfs of our own (root only), so a full or read-only disk is real, not simulated. */
function smallDisk(): string | null {
  if (process.getuid?.() !== 0) {
    process.stderr.write("SKIP: mounting a small tmpfs needs root: the disk-full and read-only tests are skipped\n");
    return null;
  }
  const dir = tempDir("disk-");
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    process.stderr.write(`SKIP: cannot mount a tmpfs (${(error as Error).message.split("\n")[0]}): skipped\n`);
    return null;
  }
  mounted.push(dir);
  // Unmount (bind mounts first), then remove the mount point.
  onTestFinished(() => {
    for (const m of mounted.splice(0)) execFileSync("umount", ["-l", m], { stdio: "pipe" });
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
const mounted: string[] = [];

async function finish(dir: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const cli = spawnCli(["daemon", "--dir", dir], { STAND_IN_DELAY_MS: "5" }, REAL_RECORD_CLI);
    const { code } = await cli.exited;
    if (code === EXIT_NOTHING_TO_DO) return;
    expect(code, cli.stderr()).toBe(0);
  }
  throw new Error("the run did not finish");
}

describe("storage faults pause the run cleanly (exit 75) and it resumes once the disk is back", () => {
  it.each(["gate", "learn", "edit"])(
    "the disk fills up while the daemon is in %s",
    async (state) => {
      const disk = smallDisk();
      if (!disk) return;
      const dir = preparedExperiment(join(disk, "exp"), { max_iterations: ITERATIONS, patience: 50 });
      const journal = join(dir, "workspace", "journal.sqlite");
      const cli = spawnCli(["daemon", "--dir", dir], { AUTO_HARNESS_STOP_AT: state }, REAL_RECORD_CLI);
      expect(await stoppedAt(cli), `never stopped in ${state}`).toBe(true);
      expect(readState(journal).state).toBe(state);
      fill(join(disk, "filler"));
      resume(cli);
      const { code, signal } = await cli.exited;
      expect({ code, signal }, cli.stderr()).toEqual({ code: EXIT_RESUMABLE, signal: null });
      expect(cli.stderr()).toMatch(/disk full .*(ENOSPC|SQLITE_FULL).*free space/);
      expect(cli.stderr()).not.toMatch(/this is a bug/);

      rmSync(join(disk, "filler"));
      await finish(dir);
      expect(readState(journal)).toEqual({ state: "done", status: "done" });
      expect(expectInvariants(dir, ITERATIONS, `full in ${state}`)).toEqual([1, 3]);
    },
    120_000,
  );

  it("the workspace turns read-only mid-run, then writable again", async () => {
    const disk = smallDisk();
    if (!disk) return;
    const dir = preparedExperiment(join(disk, "exp"), { max_iterations: ITERATIONS, patience: 50 });
    const workspace = join(dir, "workspace");
    const journal = join(workspace, "journal.sqlite");
    const cli = spawnCli(["daemon", "--dir", dir], { AUTO_HARNESS_STOP_AT: "gate" }, REAL_RECORD_CLI);
    expect(await stoppedAt(cli), "never stopped in gate").toBe(true);
    expect(readState(journal).state).toBe("gate");
    // A read-only bind mount over the workspace: files the daemon opens from now on are EROFS. (A remount of the
    // whole tmpfs is refused while the journal is open for writing.)
    execFileSync("mount", ["--bind", workspace, workspace]);
    mounted.unshift(workspace);
    execFileSync("mount", ["-o", "remount,bind,ro", workspace]);
    resume(cli);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(EXIT_RESUMABLE);
    expect(cli.stderr()).toMatch(/read-only file system .*(EROFS|SQLITE_READONLY)/);
    expect(cli.stderr()).not.toMatch(/this is a bug/);

    execFileSync("umount", [workspace]);
    mounted.shift();
    await finish(dir);
    expect(expectInvariants(dir, ITERATIONS, "read-only")).toEqual([1, 3]);
  }, 120_000);
});
