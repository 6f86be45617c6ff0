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

import type { MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import type { ExecResult, SqlParam } from './SqlDriver.js';

export type DatabaseConstructor = typeof BetterSqlite3;

export interface SqliteConnectOptions {
  synchronous: 'FULL' | 'NORMAL';
  busyTimeoutMs: number;
  /** Test hook, see SqliteOptions.commitGate. */
  commitGate?: Int32Array;
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
  readonly inTransaction: boolean;
  all(sql: string, params: readonly SqlParam[]): unknown[];
  run(sql: string, params: readonly SqlParam[]): ExecResult;
  /** Whether the statement may write (prepares it). */
  writes(sql: string): boolean;
  /**
   * BEGIN IMMEDIATE (takes the write lock now) or BEGIN (deferred). When it fails, the statements
   * and the COMMIT that follow fail with the same error (they may have been sent without waiting
   * for it), until COMMIT or ROLLBACK ends the transaction that never began. A statement that
   * fails dooms the transaction the same way, unless `independent` (a group of lone statements,
   * each succeeding or failing on its own).
   */
  begin(immediate: boolean, independent?: boolean): void;
  /** COMMIT; when that fails and the transaction is still open (BUSY), ROLLBACK, then rethrow. */
  commit(): void;
  /**
   * ROLLBACK when a transaction is open; its errors are ignored (the caller reports its own).
   * Returns the error of a BEGIN that failed, undefined when the transaction had begun.
   */
  rollback(): unknown;
  close(): void;
}

export interface SqliteEngine {
  open(path: string, options: SqliteConnectOptions): SqliteConnection;
  failure(err: unknown): SqliteFailure;
}

/**
 * Main thread → worker: `[request id, op, connection id, sql | path, params | options, begin]`.
 * A transaction is `all` / `run` statements, then `commit` or `rollback`; its first request has
 * `begin` = 1: BEGIN IMMEDIATE runs first, so it costs no message of its own. `autoAll` /
 * `autoRun` are lone statements, each its own transaction, which the worker may group (see
 * serveSqliteWorker).
 */
export type SqliteOp = 'open' | 'all' | 'run' | 'autoAll' | 'autoRun' | 'commit' | 'rollback' | 'close';
export type SqliteRequest = readonly [
  id: number,
  op: SqliteOp,
  connection: number,
  a: unknown,
  b: unknown,
  begin: 0 | 1,
];
/**
 * Worker → main thread: `[request id, status, value]`, or an array of them (a group). `ok`: rows,
 * an ExecResult or null; `binary`: rows holding BLOBs, which arrive as Uint8Array and must become
 * Buffers again; `error`: a SqliteFailure.
 */
export type SqliteReply = readonly [id: number, status: 'ok' | 'binary' | 'error', value: unknown];
export type SqliteReplyMessage = SqliteReply | readonly SqliteReply[];

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

  /**
   * The commit gate (a test hook): count this COMMIT as waiting in [1], wake whoever watches it,
   * then block this thread while [0] is 0 — to the caller exactly like a slow fsync.
   */
  function holdAtGate(gate: Int32Array): void {
    Atomics.add(gate, 1, 1);
    Atomics.notify(gate, 1);
    while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0);
  }

  class Connection implements SqliteConnection {
    private readonly cache = new Map<string, BetterSqlite3.Statement<unknown[]>>();
    /** The error of a failed BEGIN, until the transaction's COMMIT or ROLLBACK. */
    private beginFailure: unknown;
    /**
     * The first statement of the open transaction that failed: the statements after it fail the
     * same way (some errors end the transaction, and they must not run outside it) and its COMMIT
     * rolls back instead.
     */
    private statementFailure: unknown;
    /** Between a BEGIN that worked (not `independent`) and the COMMIT or ROLLBACK. */
    private open = false;

    constructor(
      private readonly db: BetterSqlite3.Database,
      private readonly commitGate: Int32Array | undefined,
    ) {}

    get inTransaction(): boolean {
      return this.db.inTransaction;
    }

    writes(sql: string): boolean {
      return !this.statement(sql).readonly;
    }

    begin(immediate: boolean, independent = false): void {
      try {
        this.statement(immediate ? 'BEGIN IMMEDIATE' : 'BEGIN').run();
        this.open = !independent;
      } catch (err) {
        this.beginFailure = err;
        throw err;
      }
    }

    all(sql: string, params: readonly SqlParam[]): unknown[] {
      this.throwIfDoomed();
      try {
        return this.statement(sql).all(...wellFormed(params));
      } catch (err) {
        this.noteFailure(err);
        throw err;
      }
    }

    run(sql: string, params: readonly SqlParam[]): ExecResult {
      this.throwIfDoomed();
      try {
        const r = this.statement(sql).run(...wellFormed(params));
        return { affectedRows: r.changes, insertId: Number(r.lastInsertRowid) };
      } catch (err) {
        this.noteFailure(err);
        throw err;
      }
    }

    private throwIfDoomed(): void {
      const doomed = this.beginFailure ?? this.statementFailure;
      if (doomed !== undefined) throw doomed;
    }

    /** Inside a transaction, a failed statement dooms it (its sender may not have waited to see). */
    private noteFailure(err: unknown): void {
      if (this.open && this.statementFailure === undefined) this.statementFailure = err;
    }

    commit(): void {
      const failed = this.beginFailure ?? this.statementFailure;
      if (failed !== undefined) {
        this.beginFailure = undefined;
        this.rollback();
        throw failed;
      }
      try {
        if (this.commitGate !== undefined) holdAtGate(this.commitGate);
        this.statement('COMMIT').run();
        this.open = false;
      } catch (err) {
        // Some errors (SQLITE_FULL, IOERR, BUSY) already rolled the transaction back.
        this.rollback();
        throw err;
      }
    }

    rollback(): unknown {
      const failed = this.beginFailure;
      this.beginFailure = undefined;
      this.statementFailure = undefined;
      this.open = false;
      if (this.db.inTransaction) {
        try {
          this.statement('ROLLBACK').run();
        } catch {
          // The original error is the one worth reporting.
        }
      }
      return failed;
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
      return new Connection(db, options.commitGate);
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
 * between BEGIN and COMMIT.
 *
 * Group commit of lone statements: when several lone statements of one connection are waiting
 * (they pile up while the worker is busy, e.g. in a commit's fsync), they run as ONE transaction,
 * so they cost one fsync instead of one each, and their replies go back in one message. Each
 * still succeeds or fails on its own: a failing statement is rolled back by SQLite alone, as in
 * autocommit. When the group's transaction cannot start, or an error or the COMMIT ends it, the
 * group is rolled back and every statement runs again alone, exactly as without grouping.
 * Replies are sent after the COMMIT, so a reply still means "durable". Only plain DML and SELECT
 * are grouped (no PRAGMA, VACUUM, DDL, transaction control). Self-contained (see the file comment).
 */
export function serveSqliteWorker(
  port: MessagePort,
  engine: SqliteEngine,
  receive: typeof receiveMessageOnPort,
): void {
  /** Most lone statements in one group transaction. */
  const GROUP_LIMIT = 256;
  const GROUPABLE_SQL = /^\s*(?:SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b/i;
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
    if (req[5] === 1) {
      try {
        conn.begin(true);
      } catch {
        // Kept by the connection: the op below and the rest of the transaction fail with it.
      }
    }
    try {
      switch (op) {
        case 'all':
        case 'autoAll': {
          const rows = conn.all(req[3] as string, req[4] as SqlParam[]);
          return [id, hasBinary(rows) ? 'binary' : 'ok', rows];
        }
        case 'run':
        case 'autoRun':
          return [id, 'ok', conn.run(req[3] as string, req[4] as SqlParam[])];
        case 'commit':
          conn.commit();
          return [id, 'ok', null];
        case 'rollback': {
          const failedBegin = conn.rollback();
          return failedBegin === undefined ? [id, 'ok', null] : [id, 'error', engine.failure(failedBegin)];
        }
        case 'close':
          connections.delete(connId);
          conn.close();
          return [id, 'ok', null];
      }
    } catch (err) {
      return [id, 'error', engine.failure(err)];
    }
  }

  function groupable(req: SqliteRequest): boolean {
    return (req[1] === 'autoAll' || req[1] === 'autoRun') && GROUPABLE_SQL.test(req[3] as string);
  }

  /** Runs a group of lone statements as one transaction; see the function comment. */
  function runGroup(conn: SqliteConnection, group: readonly SqliteRequest[]): SqliteReply[] {
    if (conn.inTransaction) return group.map(handle); // never expected: lone statements wait for COMMIT
    let writes = false;
    for (const req of group) {
      try {
        if (conn.writes(req[3] as string)) writes = true;
      } catch {
        // Does not prepare: it fails in the group as it would alone, and ends nothing.
      }
    }
    try {
      conn.begin(writes, true);
    } catch {
      return group.map(handle);
    }
    const replies: SqliteReply[] = [];
    for (const req of group) {
      const reply = handle(req);
      replies.push(reply);
      if (reply[1] === 'error' && !conn.inTransaction) return group.map(handle); // the error rolled it all back
    }
    try {
      conn.commit(); // rolls back when it fails
    } catch {
      return group.map(handle);
    }
    return replies;
  }

  /** Serves one request and the lone statements queued right behind it; returns the next request it took. */
  function serve(req: SqliteRequest): SqliteRequest | undefined {
    const conn = groupable(req) ? connections.get(req[2]) : undefined;
    if (conn === undefined) {
      port.postMessage(handle(req));
      return undefined;
    }
    const group = [req];
    let next: SqliteRequest | undefined;
    while (group.length < GROUP_LIMIT) {
      const received = receive(port);
      if (received === undefined) break;
      const queued = received.message as SqliteRequest;
      if (queued[2] !== req[2] || !groupable(queued)) {
        next = queued;
        break;
      }
      group.push(queued);
    }
    port.postMessage(group.length === 1 ? handle(req) : runGroup(conn, group));
    return next;
  }

  port.on('message', (req: SqliteRequest) => {
    let next: SqliteRequest | undefined = req;
    while (next !== undefined) next = serve(next);
  });
}

/** What the worker thread evaluates (CommonJS, `eval: true`); workerData.betterSqlite3 is the module's path. */
export function sqliteWorkerSource(): string {
  return [
    "'use strict';",
    "const { parentPort, receiveMessageOnPort, workerData } = require('node:worker_threads');",
    `const createSqliteEngine = ${createSqliteEngine.toString()};`,
    `const serveSqliteWorker = ${serveSqliteWorker.toString()};`,
    'const engine = createSqliteEngine(require(workerData.betterSqlite3));',
    'serveSqliteWorker(parentPort, engine, receiveMessageOnPort);',
    '',
  ].join('\n');
}
