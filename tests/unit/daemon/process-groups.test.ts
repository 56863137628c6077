import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_NOTHING_TO_DO } from "../../../src/cli/run.ts";
import { procStat } from "../../../src/daemon/lock.ts";
import { Journal } from "../../../src/journal/journal.ts";
import { preparedExperiment, REPO_ROOT, spawnCli } from "../../helpers/experiment.ts";
import { tempDir } from "../../helpers/temp.ts";

const CHILD = join(REPO_ROOT, "tests", "fixtures", "command-group-child.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Members of the group that are not zombies (a container's init may never reap the killed ones). */
function groupAlive(pgid: number): boolean {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .some((pid) => {
      const stat = procStat(Number(pid));
      return stat !== null && stat.pgrp === pgid && stat.state !== "Z";
    });
}

/** Starts the daemon stand-in and waits until its benchmark command is running; returns the group id. */
async function startCommand(journal: string, out: string) {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, journal, out], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const pgid = await new Promise<number>((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const m = /RUNNING (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", () => reject(new Error("the child exited before its command ran")));
  });
  return { child, pgid, exited };
}

/** The command's output still grows: something of it is still running (given 3 s, for a loaded machine). */
async function stillWriting(out: string): Promise<boolean> {
  const before = statSync(out).size;
  for (let waited = 0; waited < 3000; waited += 100) {
    await sleep(100);
    if (statSync(out).size > before) return true;
  }
  return false;
}

describe("nothing outlives the daemon: benchmark command process groups", () => {
  it("a SIGKILLed daemon's command dies with it: its keeper kills the whole group, background children included", async () => {
    const dir = preparedExperiment(tempDir("pgroup-"), { max_iterations: 1 });
    const journal = join(dir, "workspace", "journal.sqlite");
    const out = join(dir, "ticks.txt");
    const { child, pgid, exited } = await startCommand(journal, out);
    expect(groupAlive(pgid)).toBe(true);
    child.kill("SIGKILL");
    await exited;
    // No start of the daemon needed: the group goes with the daemon, whoever (or nothing) restarts it.
    for (let i = 0; i < 250 && groupAlive(pgid); i++) await sleep(20);
    expect(groupAlive(pgid)).toBe(false);
    expect(await stillWriting(out)).toBe(false);
  }, 60_000);

  it("a group whose keeper was SIGKILLed with the daemon is reaped from the journal by the next start", async () => {
    const dir = preparedExperiment(tempDir("pgroup-"), { max_iterations: 1 });
    const journal = join(dir, "workspace", "journal.sqlite");
    const out = join(dir, "ticks.txt");
    const { child, pgid, exited } = await startCommand(journal, out);
    const j = Journal.open(journal, { readonly: true });
    expect(j.processGroups.processGroups().map((g) => g.pgid)).toEqual([pgid]);
    j.close();

    // The keeper leads the group: its number is the group's. Killed first, it cannot take the group down. The
    // daemon is stopped meanwhile: alive, it would see its keeper exit and kill the group itself, as it should.
    const daemonPid = child.pid as number;
    child.kill("SIGSTOP");
    for (let i = 0; i < 250 && procStat(daemonPid)?.state !== "T"; i++) await sleep(20);
    expect(procStat(daemonPid)?.state).toBe("T");
    process.kill(pgid, "SIGKILL");
    for (let i = 0; i < 250 && procStat(pgid) !== null && procStat(pgid)?.state !== "Z"; i++) await sleep(20);
    child.kill("SIGKILL");
    await exited;
    expect(groupAlive(pgid)).toBe(true);
    expect(await stillWriting(out)).toBe(true);

    const daemon = spawnCli(["daemon", "--dir", dir], { STAND_IN_DELAY_MS: "5" });
    const { code } = await daemon.exited;
    expect(code, daemon.stderr()).toBe(EXIT_NOTHING_TO_DO);
    expect(daemon.stderr()).toMatch(
      new RegExp(
        `workspace check: process group ${pgid} \\(benchmark command: .*\\): \\d+ process\\(es\\) a killed daemon left; killed`,
      ),
    );
    expect(groupAlive(pgid)).toBe(false);
    expect(await stillWriting(out)).toBe(false);
    const after = Journal.open(journal, { readonly: true });
    expect(after.processGroups.processGroups()).toEqual([]);
    after.close();
  }, 60_000);

  it("a daemon that exits while its command runs takes the whole group with it", async () => {
    const dir = preparedExperiment(tempDir("pgroup-"));
    const journal = join(dir, "workspace", "journal.sqlite");
    const out = join(dir, "ticks.txt");
    const { child, pgid, exited } = await startCommand(journal, out);
    child.stdin.write("exit\n");
    await exited;
    expect(groupAlive(pgid)).toBe(false);
    expect(await stillWriting(out)).toBe(false);
  }, 60_000);

  it("a recorded group whose number now belongs to a process started before it was recorded is left alone", async () => {
    const dir = tempDir("pgroup-");
    const journal = Journal.open(join(dir, "journal.sqlite"));
    try {
      const { reapProcessGroups } = await import("../../../src/daemon/process-groups.ts");
      // Our own group, recorded as if started far in the future by a dead owner: not ours to kill.
      journal.processGroups.addProcessGroup({
        pgid: process.pid,
        startTicks: Number.MAX_SAFE_INTEGER,
        ownerPid: 2 ** 22 + 9,
        label: "x",
      });
      expect(reapProcessGroups(journal.processGroups)).toEqual([]);
      expect(journal.processGroups.processGroups()).toEqual([]);
    } finally {
      journal.close();
    }
  });
});
