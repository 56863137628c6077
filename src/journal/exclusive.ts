import Database from "better-sqlite3";

/**
 * An exclusive SQLite transaction on `file`, held until `close()`: an OS-level lock (fcntl underneath) that the
 * kernel drops the moment the process dies. "busy" when another process holds it past `timeoutMs`.
 */
export function holdExclusive(file: string, timeoutMs: number): { close(): void } | "busy" {
  const db = new Database(file, { timeout: timeoutMs });
  try {
    db.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === "SQLITE_BUSY") return "busy";
    throw error;
  }
  return { close: () => db.close() };
}
