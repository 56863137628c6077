import type { Db } from "./db.ts";

/** A process group the daemon started; the leader's start time tells a reused number apart. */
export interface ProcessGroupRow {
  pgid: number;
  startTicks: number | null;
  ownerPid: number;
  label: string;
}

/** Process groups of benchmark commands while they run, so the next start reaps what a killed daemon left. */
export class ProcessGroupStore {
  constructor(private readonly db: Db) {}

  addProcessGroup(row: ProcessGroupRow): void {
    this.db.write(() => {
      this.db
        .prepare(
          `INSERT OR REPLACE INTO process_groups (pgid, start_ticks, owner_pid, label, created_at)
           VALUES (?, ?, ?, ?, ?)`,
        )
        .run(row.pgid, row.startTicks, row.ownerPid, row.label, this.db.now());
    });
  }

  removeProcessGroup(pgid: number): void {
    this.db.write(() => {
      this.db.prepare("DELETE FROM process_groups WHERE pgid = ?").run(pgid);
    });
  }

  processGroups(): ProcessGroupRow[] {
    return (
      this.db.prepare("SELECT * FROM process_groups ORDER BY created_at").all() as {
        pgid: number;
        start_ticks: number | null;
        owner_pid: number;
        label: string;
      }[]
    ).map((r) => ({ pgid: r.pgid, startTicks: r.start_ticks, ownerPid: r.owner_pid, label: r.label }));
  }
}
