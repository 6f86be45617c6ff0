/**
 * The SQLite side of SqliteDriver: connections over better-sqlite3 (statement cache, pragmas,
 * lone-surrogate handling, commit/rollback) and the message loop of the worker thread that runs
 * them off the event loop.
 *
 * `createSqliteEngine` and `serveSqliteWorker` MUST stay self-contained: no imports (type-only
 * ones are erased), no module-level constants, no helpers from outside their bodies. The worker
 * thread runs their source text (`Function.prototype.toString`, see `sqliteWorkerSource`), so
 * the worker is the same code whether this module was compiled by tsc (dist) or transformed on
 * the fly (vitest), and no separate worker file has to be found next to it. The in-process mode
 * calls `createSqliteEngine` directly, so both modes share every line that touches SQLite.
 */

import type { MessagePort } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import type { ExecResult, SqlParam } from './SqlDriver.js';

export type DatabaseConstructor = typeof BetterSqlite3;

export interface SqliteConnectOptions {
  synchronous: 'FULL' | 'NORMAL';
  busyTimeoutMs: number;
}

/** A failure as plain data: it crosses the thread boundary, where Error subclasses do not survive. */
export interface SqliteFailure {
  /**
   * `sqlite`: an SqliteError with its `code`; `driver`: anything else better-sqlite3 threw (a bad
   * binding, a reader run as a writer: a bug); `unavailable`: the connection is closed or could
   * not be opened (`message` says which).
   */
  kind: 'sqlite' | 'driver' | 'unavailable';
  code: string;
  message: string;
  name: string;
  stack: string | undefined;
}

/** One better-sqlite3 connection. Methods throw what better-sqlite3 throws. */
export interface SqliteConnection {
  all(sql: string, params: readonly SqlParam[]): unknown[];
  run(sql: string, params: readonly SqlParam[]): ExecResult;
  /** COMMIT; when that fails and the transaction is still open (BUSY), ROLLBACK, then rethrow. */
  commit(): void;
  /** ROLLBACK when a transaction is open; errors are ignored (the caller reports its own). */
  rollback(): void;
  close(): void;
}

export interface SqliteEngine {
  open(path: string, options: SqliteConnectOptions): SqliteConnection;
  failure(err: unknown): SqliteFailure;
}

/** Main thread → worker: `[request id (0: no reply), op, connection id, sql | path, params | options]`. */
export type SqliteOp = 'open' | 'all' | 'run' | 'commit' | 'rollback' | 'close';
export type SqliteRequest = readonly [id: number, op: SqliteOp, connection: number, a?: unknown, b?: unknown];
/**
 * Worker → main thread: `[request id, status, value]`. `ok`: rows, an ExecResult or null;
 * `binary`: rows holding BLOBs, which arrive as Uint8Array and must become Buffers again;
 * `error`: a SqliteFailure.
 */
export type SqliteReply = readonly [id: number, status: 'ok' | 'binary' | 'error', value: unknown];

/** Self-contained (see the file comment). */
export function createSqliteEngine(Database: DatabaseConstructor): SqliteEngine {
  /** Prepared statements kept per SQL string; shapes are bounded (multi-row statements hold ≤ 512 rows). */
  const STATEMENT_CACHE_LIMIT = 1000;
  const SURROGATE = /[\uD800-\uDFFF]/;

  /**
   * better-sqlite3 writes a lone surrogate as WTF-8 bytes and reads them back as three U+FFFD;
   * mysql2 writes U+FFFD. Binding the UTF-8 round trip makes both stores keep the same string.
   */
  function wellFormed(params: readonly SqlParam[]): readonly SqlParam[] {
    if (!params.some((p) => typeof p === 'string' && SURROGATE.test(p))) return params;
    return params.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8').toString('utf8') : p));
  }

  class Connection implements SqliteConnection {
    private readonly cache = new Map<string, BetterSqlite3.Statement<unknown[]>>();

    constructor(private readonly db: BetterSqlite3.Database) {}

    all(sql: string, params: readonly SqlParam[]): unknown[] {
      return this.statement(sql).all(...wellFormed(params));
    }

    run(sql: string, params: readonly SqlParam[]): ExecResult {
      const r = this.statement(sql).run(...wellFormed(params));
      return { affectedRows: r.changes, insertId: Number(r.lastInsertRowid) };
    }

    commit(): void {
      try {
        this.statement('COMMIT').run();
      } catch (err) {
        // Some errors (SQLITE_FULL, IOERR, BUSY) already rolled the transaction back.
        this.rollback();
        throw err;
      }
    }

    rollback(): void {
      if (!this.db.inTransaction) return;
      try {
        this.statement('ROLLBACK').run();
      } catch {
        // The original error is the one worth reporting.
      }
    }

    close(): void {
      this.cache.clear();
      this.db.close();
    }

    private statement(sql: string): BetterSqlite3.Statement<unknown[]> {
      let stmt = this.cache.get(sql);
      if (stmt) return stmt;
      stmt = this.db.prepare<unknown[]>(sql);
      if (this.cache.size >= STATEMENT_CACHE_LIMIT) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
      this.cache.set(sql, stmt);
      return stmt;
    }
  }

  return {
    open(path: string, options: SqliteConnectOptions): SqliteConnection {
      const db = new Database(path, { timeout: options.busyTimeoutMs });
      try {
        db.pragma('journal_mode = WAL');
        db.pragma(`synchronous = ${options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
      } catch (err) {
        db.close();
        throw err;
      }
      return new Connection(db);
    },

    failure(err: unknown): SqliteFailure {
      if (err instanceof Database.SqliteError) {
        return { kind: 'sqlite', code: err.code, message: err.message, name: err.name, stack: err.stack };
      }
      if (err instanceof Error) {
        return { kind: 'driver', code: '', message: err.message, name: err.name, stack: err.stack };
      }
      return { kind: 'driver', code: '', message: String(err), name: 'Error', stack: undefined };
    },
  };
}

/**
 * The worker's message loop. Requests run one at a time in arrival order, which is what keeps
 * other callers' statements out of an open transaction: the main thread sends nothing else
 * between BEGIN and COMMIT. Self-contained (see the file comment).
 */
export function serveSqliteWorker(port: Pick<MessagePort, 'on' | 'postMessage'>, engine: SqliteEngine): void {
  const connections = new Map<number, SqliteConnection>();
  /** Connections whose open failed: their statements (sent before the failure was known) fail alike. */
  const openFailures = new Map<number, SqliteFailure>();

  function unavailable(message: string): SqliteFailure {
    return { kind: 'unavailable', code: '', message, name: 'Error', stack: undefined };
  }

  /** BLOB columns come back as Buffers, which arrive on the other side as plain Uint8Arrays. */
  function hasBinary(rows: unknown[]): boolean {
    for (const row of rows as Record<string, unknown>[]) {
      for (const key in row) if (row[key] instanceof Uint8Array) return true;
    }
    return false;
  }

  function handle(req: SqliteRequest): SqliteReply {
    const id = req[0];
    const op = req[1];
    const connId = req[2];
    if (op === 'open') {
      try {
        connections.set(connId, engine.open(req[3] as string, req[4] as SqliteConnectOptions));
        return [id, 'ok', null];
      } catch (err) {
        const failure = unavailable(`cannot open SQLite database: ${engine.failure(err).message}`);
        openFailures.set(connId, failure);
        return [id, 'error', failure];
      }
    }
    const conn = connections.get(connId);
    if (conn === undefined) {
      if (op === 'close') openFailures.delete(connId);
      if (op === 'close' || op === 'rollback') return [id, 'ok', null];
      return [id, 'error', openFailures.get(connId) ?? unavailable('store is closed')];
    }
    try {
      switch (op) {
        case 'all': {
          const rows = conn.all(req[3] as string, req[4] as SqlParam[]);
          return [id, hasBinary(rows) ? 'binary' : 'ok', rows];
        }
        case 'run':
          return [id, 'ok', conn.run(req[3] as string, req[4] as SqlParam[])];
        case 'commit':
          conn.commit();
          return [id, 'ok', null];
        case 'rollback':
          conn.rollback();
          return [id, 'ok', null];
        case 'close':
          connections.delete(connId);
          conn.close();
          return [id, 'ok', null];
      }
    } catch (err) {
      return [id, 'error', engine.failure(err)];
    }
  }

  port.on('message', (req: SqliteRequest) => {
    const reply = handle(req);
    if (req[0] !== 0) port.postMessage(reply);
  });
}

/** What the worker thread evaluates (CommonJS, `eval: true`); workerData.betterSqlite3 is the module's path. */
export function sqliteWorkerSource(): string {
  return [
    "'use strict';",
    "const { parentPort, workerData } = require('node:worker_threads');",
    `const createSqliteEngine = ${createSqliteEngine.toString()};`,
    `const serveSqliteWorker = ${serveSqliteWorker.toString()};`,
    'serveSqliteWorker(parentPort, createSqliteEngine(require(workerData.betterSqlite3)));',
    '',
  ].join('\n');
}
