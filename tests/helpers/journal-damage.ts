import { readFileSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";

/**
 * Gives the root page of `table` in the journal file an invalid b-tree page type, as a bad sector would. The
 * table must be one the WAL does not hold a newer copy of, so the file's page is the one SQLite reads.
 */
export function damageRootPage(file: string, table: string): void {
  const inspect = new Database(file, { readonly: true });
  const { rootpage } = inspect.prepare("SELECT rootpage FROM sqlite_master WHERE name = ?").get(table) as {
    rootpage: number;
  };
  const pageSize = Number(inspect.pragma("page_size", { simple: true }));
  inspect.close();
  const bytes = readFileSync(file);
  if (bytes.length < rootpage * pageSize) throw new Error(`${file}: page ${rootpage} lives in the WAL only`);
  bytes[(rootpage - 1) * pageSize] = 0x01;
  writeFileSync(file, bytes);
}
