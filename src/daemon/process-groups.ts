import { readdirSync } from "node:fs";
import type { ProcessGroupTracker } from "../benchmark/adapters/types.ts";
import type { ProcessGroupRow, ProcessGroupStore } from "../journal/stores.ts";
import type { Logger } from "../log.ts";
import { processAlive, procStat } from "./lock.ts";

/**
 * Nothing outlives the daemon. A benchmark command runs in its own process group; the group is journaled while
 * it runs, killed when the daemon exits (normally or by an uncaught error), and, when the daemon itself was
 * SIGKILLed, reaped by the next start. Agent processes die with their sandbox (bubblewrap --die-with-parent).
 */
export function createProcessGroupTracker(journal: Pick<ProcessGroupStore, "addProcessGroup" | "removeProcessGroup">) {
  const live = new Set<number>();
  let hooked = false;
  const killAll = () => {
    for (const pgid of live) killGroup(pgid);
  };
  const tracker: ProcessGroupTracker = {
    track(pgid, label) {
      if (!hooked) {
        hooked = true;
        process.once("exit", killAll);
      }
      live.add(pgid);
      try {
        journal.addProcessGroup({ pgid, startTicks: procStat(pgid)?.startTicks ?? null, ownerPid: process.pid, label });
      } catch {
        // Not journaled (disk full): it still dies with this process; only a SIGKILL would leave it behind.
      }
      return () => {
        live.delete(pgid);
        try {
          journal.removeProcessGroup(pgid);
        } catch {
          // A stale row is harmless: the next start finds the group gone.
        }
      };
    },
  };
  return tracker;
}

function killGroup(pgid: number): boolean {
  try {
    process.kill(-pgid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

/** Live members of process group `pgid` that started no earlier than its leader did. */
function membersOf(row: ProcessGroupRow): number[] {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const pid of pids) {
    const stat = procStat(Number(pid));
    if (!stat || stat.pgrp !== row.pgid || stat.state === "Z") continue;
    if (row.startTicks !== null && stat.startTicks < row.startTicks) continue;
    members.push(Number(pid));
  }
  return members;
}

/**
 * On start and resume: kills the process groups a previous daemon journaled and never saw end. A group is
 * only ours while its owner is dead and its members started after the leader we recorded (a number the
 * kernel reused for someone else's group is left alone). Returns what was reaped.
 */
export function reapProcessGroups(
  journal: Pick<ProcessGroupStore, "processGroups" | "removeProcessGroup">,
  log?: Logger,
): { pgid: number; label: string; processes: number }[] {
  const reaped: { pgid: number; label: string; processes: number }[] = [];
  for (const row of journal.processGroups()) {
    if (row.ownerPid === process.pid) continue;
    if (processAlive(row.ownerPid)) continue;
    const members = membersOf(row);
    if (members.length > 0 && killGroup(row.pgid)) {
      reaped.push({ pgid: row.pgid, label: row.label, processes: members.length });
      log?.warn(
        { pgid: row.pgid, label: row.label, processes: members.length },
        "reaped a process group a killed daemon left",
      );
    }
    journal.removeProcessGroup(row.pgid);
  }
  return reaped;
}
