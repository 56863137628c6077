import { join } from "node:path";
import Database from "better-sqlite3";

/** When each task result row was written, by (agent, split, task, trial): a task run again rewrites it. */
export function resultTimes(dir: string): Map<string, number> {
  const db = new Database(join(dir, "workspace", "journal.sqlite"), { readonly: true });
  try {
    const rows = db
      .prepare(
        "SELECT agent_hash || ':' || split || ':' || task_id || ':' || trial AS k, created_at AS c FROM task_results",
      )
      .all() as { k: string; c: number }[];
    return new Map(rows.map((r) => [r.k, r.c]));
  } finally {
    db.close();
  }
}
