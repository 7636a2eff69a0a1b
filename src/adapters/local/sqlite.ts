import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { PipelineError, StoreUnavailableError } from "../../core/errors.ts";

/** A better-sqlite3 connection. */
export type Database = BetterSqlite3.Database;

/** How long a connection waits for another process's write lock before giving up. */
export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

/**
 * SQLite result codes that say "try again later" rather than "your statement is wrong":
 * lock contention, I/O trouble, a full disk, a file that can't be opened right now.
 */
const UNAVAILABLE_CODE =
  /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|NOMEM|READONLY_RECOVERY|READONLY_CANTLOCK)/;

/**
 * Turn a better-sqlite3 error into the project's hierarchy: busy/locked/I/O
 * failures become a retryable StoreUnavailableError; pipeline errors and anything
 * else (constraint violations, SQL bugs) come back unchanged.
 */
export function mapSqliteError(err: unknown, context: string): unknown {
  if (err instanceof PipelineError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && UNAVAILABLE_CODE.test(code)) {
    const message = err instanceof Error ? err.message : String(err);
    return new StoreUnavailableError(`${context}: SQLite ${code}: ${message}`, {
      cause: err,
      details: { sqliteCode: code },
    });
  }
  return err;
}

/**
 * Open (creating if needed) a SQLite file that several processes share.
 *
 * The parent directory is created 0o700 and the file 0o600 before SQLite sees it,
 * because SQLite copies the main file's mode to its -wal and -shm files. WAL lets
 * readers proceed while one process writes; `busy_timeout` makes writers queue
 * for the lock instead of failing at once.
 */
export function openDatabase(path: string, options: { busyTimeoutMs?: number } = {}): Database {
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  try {
    if (path !== ":memory:" && path !== "") {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      closeSync(openSync(path, "a", 0o600));
    }
    const db = new BetterSqlite3(path, { timeout: busyTimeoutMs });
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  } catch (err) {
    const mapped = mapSqliteError(err, `opening SQLite database ${path}`);
    if (mapped !== err) throw mapped;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EIO" || code === "ENOSPC" || code === "EMFILE" || code === "ENFILE") {
      throw new StoreUnavailableError(`opening SQLite database ${path}: ${code}`, { cause: err });
    }
    throw err;
  }
}

/**
 * Run `fn` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so
 * a read-modify-write never races another process (a deferred transaction would
 * fail with SQLITE_BUSY_SNAPSHOT on upgrade instead of waiting).
 */
export function immediate<T>(db: Database, context: string, fn: () => T): T {
  try {
    return db.transaction(fn).immediate();
  } catch (err) {
    throw mapSqliteError(err, context);
  }
}

/** Run a single statement (or a read) with errors mapped like {@link immediate}. */
export function guarded<T>(context: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw mapSqliteError(err, context);
  }
}

/** A prepared statement with positional parameters and row type `R`. */
export type Statement<R = unknown> = BetterSqlite3.Statement<unknown[], R>;

/**
 * A connection opened on first use (constructing an adapter touches no file), its
 * schema applied once, and its prepared statements cached: workers run the same
 * few statements in a loop.
 */
export class LazyDatabase {
  private handle: Database | undefined;
  private readonly statements = new Map<string, Statement>();

  /** `schema` is idempotent DDL (`CREATE ... IF NOT EXISTS`) run when the file is opened. */
  constructor(
    readonly path: string,
    private readonly schema: string,
  ) {}

  /** The open connection. */
  get db(): Database {
    if (!this.handle) {
      const db = openDatabase(this.path);
      try {
        immediate(db, `creating schema in ${this.path}`, () => db.exec(this.schema));
      } catch (err) {
        db.close();
        throw err;
      }
      this.handle = db;
    }
    return this.handle;
  }

  /** The cached prepared statement for `source`. */
  sql<R = unknown>(source: string): Statement<R> {
    let statement = this.statements.get(source);
    if (!statement) {
      const db = this.db;
      statement = guarded(`preparing a statement on ${this.path}`, () => db.prepare(source));
      this.statements.set(source, statement);
    }
    return statement as Statement<R>;
  }

  /** Run `fn` in an IMMEDIATE transaction (see {@link immediate}). */
  immediate<T>(context: string, fn: () => T): T {
    return immediate(this.db, context, fn);
  }

  /** Close the connection; the next use reopens it. */
  close(): void {
    this.statements.clear();
    this.handle?.close();
    this.handle = undefined;
  }
}
