import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeError, StoreError } from './errors.js';
import { Mutex } from './Mutex.js';
import type { ExecResult, SqlDriver, SqlExecutor, SqlParam } from './SqlDriver.js';

export interface SqliteOptions {
  /**
   * `FULL` (default): a commit is fsynced before it resolves, so an acknowledged message survives
   * power loss. `NORMAL`: WAL commits survive a process crash but the last few may be lost on an
   * OS crash or power cut; about 10x faster per commit (appends are group-committed, so FULL is
   * affordable).
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a statement waits for another process's write lock before failing UNAVAILABLE. */
  busyTimeoutMs?: number;
}

type Statement = Database.Statement<unknown[]>;

/**
 * One mutex per database file in this process. Two drivers on one file (two servers in one test
 * process) must queue on each other: the second's BEGIN IMMEDIATE would otherwise block the thread
 * in busy_timeout while the first's transaction, which needs that thread to finish, stands still.
 */
const fileMutexes = new Map<string, { mutex: Mutex; users: number }>();

function acquireFileMutex(path: string): Mutex {
  if (path === ':memory:') return new Mutex();
  const entry = fileMutexes.get(path) ?? { mutex: new Mutex(), users: 0 };
  entry.users++;
  fileMutexes.set(path, entry);
  return entry.mutex;
}

function releaseFileMutex(path: string): void {
  const entry = fileMutexes.get(path);
  if (entry && --entry.users === 0) fileMutexes.delete(path);
}

/** Prepared statements kept per SQL string; shapes are bounded (multi-row statements hold ≤ 512 rows). */
const STATEMENT_CACHE_LIMIT = 1000;

/**
 * better-sqlite3 behind the async SqlDriver API. The library is synchronous, so each statement
 * runs to completion when called; the only interleaving hazard is an async transaction callback,
 * during which other callers must not slip statements into the open transaction. A mutex held for
 * the transaction's whole life (and briefly by every lone statement) prevents that.
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly mutex: Mutex;
  private readonly cache = new Map<string, Statement>();
  private closed = false;

  constructor(path: string, options: SqliteOptions = {}) {
    this.path = path === ':memory:' ? path : resolve(path);
    let db: Database.Database | undefined;
    try {
      if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
      db = new Database(this.path, { timeout: options.busyTimeoutMs ?? 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
    } catch (err) {
      db?.close();
      throw new StoreError('UNAVAILABLE', `cannot open SQLite database: ${describeError(err)}`, {
        cause: err,
      });
    }
    this.db = db;
    this.mutex = acquireFileMutex(this.path);
  }

  query<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.locked(() => this.all<T>(sql, params));
  }

  execute(sql: string, params: readonly SqlParam[] = []): Promise<ExecResult> {
    return this.locked(() => this.run(sql, params));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.assertOpen();
    await this.mutex.lock();
    const tx = new SqliteTransaction(this.all.bind(this), this.run.bind(this));
    try {
      // IMMEDIATE takes the write lock up front (waiting up to busy_timeout for other processes),
      // so the transaction cannot fail half-way on a read-to-write lock upgrade.
      this.run('BEGIN IMMEDIATE', []);
      try {
        const result = await fn(tx);
        this.run('COMMIT', []);
        return result;
      } catch (err) {
        // Some errors (SQLITE_FULL, IOERR, BUSY) already rolled the transaction back.
        if (this.db.inTransaction) {
          try {
            this.run('ROLLBACK', []);
          } catch {
            // The original error is the one worth reporting.
          }
        }
        throw err;
      }
    } finally {
      tx.finish();
      this.mutex.unlock();
    }
  }

  /** BEGIN IMMEDIATE holds the database file's write lock across processes; SQLite DDL is transactional. */
  exclusive<T>(_name: string, fn: (ex: SqlExecutor) => Promise<T>): Promise<T> {
    return this.transaction(fn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.lock();
    this.closed = true;
    this.cache.clear();
    this.db.close();
    this.mutex.unlock();
    releaseFileMutex(this.path);
  }

  private locked<T>(work: () => T): Promise<T> {
    if (this.mutex.tryLock()) {
      try {
        return Promise.resolve(work());
      } catch (err) {
        return Promise.reject(err);
      } finally {
        this.mutex.unlock();
      }
    }
    return this.mutex.lock().then(() => {
      try {
        return work();
      } finally {
        this.mutex.unlock();
      }
    });
  }

  private all<T>(sql: string, params: readonly SqlParam[]): T[] {
    const stmt = this.statement(sql);
    try {
      return stmt.all(...wellFormed(params)) as T[];
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  private run(sql: string, params: readonly SqlParam[]): ExecResult {
    const stmt = this.statement(sql);
    try {
      const r = stmt.run(...wellFormed(params));
      return { affectedRows: r.changes, insertId: Number(r.lastInsertRowid) };
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  private statement(sql: string): Statement {
    this.assertOpen();
    let stmt = this.cache.get(sql);
    if (stmt) return stmt;
    try {
      stmt = this.db.prepare<unknown[]>(sql);
    } catch (err) {
      throw mapSqliteError(err);
    }
    if (this.cache.size >= STATEMENT_CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(sql, stmt);
    return stmt;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
  }
}

/** The executor handed to a transaction callback; refuses use after the transaction ended. */
class SqliteTransaction implements SqlExecutor {
  readonly dialect = 'sqlite' as const;
  private active = true;

  constructor(
    private readonly allFn: <T>(sql: string, params: readonly SqlParam[]) => T[],
    private readonly runFn: (sql: string, params: readonly SqlParam[]) => ExecResult,
  ) {}

  query<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.guard(() => this.allFn<T>(sql, params));
  }

  execute(sql: string, params: readonly SqlParam[] = []): Promise<ExecResult> {
    return this.guard(() => this.runFn(sql, params));
  }

  finish(): void {
    this.active = false;
  }

  private guard<T>(work: () => T): Promise<T> {
    if (!this.active) return Promise.reject(new StoreError('INTERNAL', 'transaction already finished'));
    try {
      return Promise.resolve(work());
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * better-sqlite3 writes a lone surrogate as WTF-8 bytes and reads them back as three U+FFFD; mysql2
 * writes U+FFFD. Binding the UTF-8 round trip makes both stores keep the same string.
 */
function wellFormed(params: readonly SqlParam[]): readonly SqlParam[] {
  if (!params.some((p) => typeof p === 'string' && SURROGATE.test(p))) return params;
  return params.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8').toString('utf8') : p));
}

const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM|CORRUPT|NOTADB)/;

function mapSqliteError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  if (!(err instanceof Database.SqliteError)) {
    // better-sqlite3 throws RangeError/TypeError for bad bindings: a bug, not a data condition.
    return new StoreError('INTERNAL', `SQLite: ${describeError(err)}`, { cause: err });
  }
  if (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new StoreError('CONFLICT', err.message, { cause: err });
  }
  const code = UNAVAILABLE_CODES.test(err.code) ? 'UNAVAILABLE' : 'INTERNAL';
  return new StoreError(code, `SQLite ${err.code}: ${err.message}`, { cause: err });
}
