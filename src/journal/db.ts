import type Database from "better-sqlite3";
import { classifyFault } from "../errors.ts";

/**
 * The one SQLite connection every store shares, so writes of several stores can commit in one transaction
 * (a transition, its step outcome and the ledger rows). Writes are short synchronous IMMEDIATE transactions:
 * better-sqlite3 transactions cannot span an await, so callers do async work first and write its outcome here.
 */
export class Db {
  constructor(
    readonly sqlite: Database.Database,
    readonly path: string,
    readonly now: () => number,
  ) {}

  private readonly statements = new Map<string, Database.Statement>();

  /** Each statement is compiled once: a paid call's row is written on the path of the agent's next call. */
  prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.sqlite.prepare(sql);
      if (this.statements.size < 500) this.statements.set(sql, statement);
    }
    return statement;
  }

  /** A nested call runs as a savepoint of the outer transaction: one fsync for the whole group. */
  write<T>(fn: () => T): T {
    try {
      return this.sqlite.transaction(fn).immediate();
    } catch (error) {
      // Disk full, read-only, I/O error or damage: typed where it happens, so the run pauses with the fix.
      throw classifyFault(error, this.path) ?? error;
    }
  }

  /**
   * A write that must survive the process (a SIGKILL, a crash) at once, and a power loss by the next full
   * write: committed to the WAL without its fsync, which the next `write` (synchronous = FULL) makes for it.
   * A paid call is journaled this way the moment it is paid: an fsync per call would stall the harness for
   * every agent's next call.
   */
  writeSoon<T>(fn: () => T): T {
    this.sqlite.pragma("synchronous = NORMAL");
    try {
      return this.write(fn);
    } finally {
      this.sqlite.pragma("synchronous = FULL");
    }
  }

  /** A read-only reader of a journal not yet migrated this far (status during an upgrade) finds no table. */
  hasTable(name: string): boolean {
    return this.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  }

  hasColumn(table: string, column: string): boolean {
    return (this.sqlite.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === column);
  }
}

export const toJson = (value: unknown): string | null =>
  value === undefined || value === null ? null : JSON.stringify(value);
export const fromJson = (text: unknown): unknown => (typeof text === "string" ? JSON.parse(text) : null);
