import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { classifyFault, HarnessError, journalCorrupt } from "../errors.ts";
import { redact } from "../secrets.ts";
import { Db } from "./db.ts";
import { GateRecordStore } from "./gate-records.ts";
import { LlmLedger } from "./ledger.ts";
import { MIGRATIONS } from "./migrations.ts";
import { PinStore } from "./pins.ts";
import { ProcessGroupStore } from "./process-groups.ts";
import { RunStore } from "./runs.ts";
import type { Stores } from "./stores.ts";
import { TaskResultStore } from "./task-results.ts";

/**
 * The run's source of truth (DESIGN §4): one SQLite file, opened here, checked, migrated, and handed out as
 * the stores its consumers use. All stores share one connection, so their writes can commit together.
 */
export class Journal implements Stores {
  readonly runs: RunStore;
  readonly taskResults: TaskResultStore;
  readonly ledger: LlmLedger;
  readonly gateRecords: GateRecordStore;
  readonly pins: PinStore;
  readonly processGroups: ProcessGroupStore;
  private readonly db: Db;

  private constructor(db: Db) {
    this.db = db;
    this.runs = new RunStore(db);
    this.ledger = new LlmLedger(db);
    this.taskResults = new TaskResultStore(db, this.ledger);
    this.gateRecords = new GateRecordStore(db);
    this.pins = new PinStore(db);
    this.processGroups = new ProcessGroupStore(db);
  }

  get path(): string {
    return this.db.path;
  }

  static open(path: string, options: { readonly?: boolean; now?: () => number } = {}): Journal {
    const readonly = options.readonly ?? false;
    if (!readonly) mkdirSync(dirname(path), { recursive: true });
    refuseTruncatedWithWal(path);
    // Checked through a read-only connection first: a damaged journal is refused as it was found, its WAL
    // not merged into it, so what the operator sends for recovery is the evidence itself.
    if (!readonly && (sizeOf(path) ?? 0) > 0) refuseDamaged(path);
    let sqlite: Database.Database | null = null;
    try {
      sqlite = new Database(path, { readonly, fileMustExist: readonly, timeout: 5000 });
      if (!readonly) {
        sqlite.pragma("journal_mode = WAL");
        // WAL's default NORMAL can roll back the last commits on power loss.
        sqlite.pragma("synchronous = FULL");
        migrate(sqlite);
      }
      sqlite.pragma("foreign_keys = ON");
    } catch (cause) {
      sqlite?.close();
      throw openFault(cause, path);
    }
    redactWrites(sqlite);
    return new Journal(new Db(sqlite, path, options.now ?? Date.now));
  }

  close(): void {
    if (this.db.sqlite.open) this.db.sqlite.close();
  }

  integrityCheck(): string {
    return String(this.db.sqlite.pragma("integrity_check", { simple: true }));
  }

  schemaVersion(): number {
    return Number(this.db.sqlite.pragma("user_version", { simple: true }));
  }

  /** Writes of several stores in one transaction: one fsync for what finished together. */
  transaction<T>(fn: () => T): T {
    return this.db.write(fn);
  }
}

function sizeOf(file: string): number | null {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}

/** A truncated file or a bad header is damage, with recovery steps; a full disk pauses, never "a bug". */
function openFault(cause: unknown, path: string): unknown {
  if (cause instanceof HarnessError) return cause;
  const code = (cause as { code?: unknown }).code;
  const sqlite = typeof code === "string" && code.startsWith("SQLITE_") && !/^SQLITE_(BUSY|LOCKED)/.test(code);
  return classifyFault(cause, path) ?? (sqlite ? journalCorrupt(path, cause, "cannot be opened") : cause);
}

/** The integrity check on a read-only connection, which never checkpoints the WAL into the file. */
function refuseDamaged(path: string): void {
  let sqlite: Database.Database | null = null;
  try {
    sqlite = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
    const check = sqlite.pragma("integrity_check", { simple: true });
    if (check !== "ok") throw journalCorrupt(path, `integrity_check: ${String(check)}`, "failed its integrity check");
  } catch (cause) {
    throw openFault(cause, path);
  } finally {
    sqlite?.close();
  }
}

/**
 * A zero-length journal with a WAL beside it lost its main file: opening it would start an empty journal and
 * truncate the WAL, the last copy of what it held. Refused, and the WAL left untouched.
 */
function refuseTruncatedWithWal(path: string): void {
  const wal = sizeOf(`${path}-wal`);
  if (sizeOf(path) === 0 && wal !== null && wal > 0) {
    throw journalCorrupt(
      path,
      `the file is empty (0 bytes) while ${path}-wal holds ${wal} bytes`,
      "lost its contents; it was not re-created and its WAL was left untouched",
    );
  }
}

function migrate(db: Database.Database): void {
  const current = Number(db.pragma("user_version", { simple: true }));
  if (current > MIGRATIONS.length) {
    throw new HarnessError(
      "JOURNAL_CORRUPT",
      `journal schema version ${current} is newer than this auto-harness knows (${MIGRATIONS.length}); upgrade auto-harness`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

const redactParam = (p: unknown): unknown =>
  typeof p === "string"
    ? redact(p)
    : p !== null && typeof p === "object" && !Buffer.isBuffer(p)
      ? Object.fromEntries(Object.entries(p).map(([k, v]) => [k, typeof v === "string" ? redact(v) : v]))
      : p;

/**
 * Every string bound into a statement passes through the secrets filter: error texts, LLM replies and
 * snapshots come from outside (an endpoint echoing the Authorization header), so the journal file never holds the key.
 */
function redactWrites(db: Database.Database): void {
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const statement = prepare(sql);
    if (statement.reader) return statement;
    const run = statement.run.bind(statement);
    statement.run = ((...params: unknown[]) => run(...params.map(redactParam))) as typeof statement.run;
    return statement;
  }) as typeof db.prepare;
}
