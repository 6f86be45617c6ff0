import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { describeError, StoreError } from './errors.js';
import type { ExecResult, SqlDriver, SqlExecutor, SqlParam } from './SqlDriver.js';
import {
  createSqliteEngine,
  type SqliteConnection,
  type SqliteFailure,
  type SqliteOp,
  type SqliteReply,
  type SqliteReplyMessage,
  type SqliteRequest,
  sqliteWorkerSource,
} from './sqliteWorker.js';

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
  /**
   * `true` (default): statements and commits (with their fsync) run on a worker thread, one per
   * database file in this process, and the event loop only posts messages. `false`: they run
   * synchronously on the calling thread, blocking it (tools, scripts, tests).
   */
  thread?: boolean;
  /**
   * Test hook, threaded mode only: an Int32Array over a SharedArrayBuffer of at least 2 slots.
   * While slot 0 is 0, every COMMIT of this connection waits on the worker thread before it runs
   * (as a slow fsync would), after adding 1 to slot 1 (`Atomics.notify`ed). Set slot 0 to 1 and
   * notify it to let them go. Default: none.
   */
  commitGate?: Int32Array;
}

/**
 * Serializes the users of one database file in this process: transactions own it for their whole
 * life, lone statements pass when nobody owns it or queues for it. Two drivers on one file (two
 * servers in one test process) must queue on each other: the second's BEGIN IMMEDIATE would
 * otherwise block its thread in busy_timeout while the first's transaction, which needs the event
 * loop to go on, stands still. FIFO: a waiter is never overtaken.
 */
class FileGate {
  users = 0;
  private owned = false;
  private readonly waiters: { exclusive: boolean; grant: () => void }[] = [];

  /** A lone statement may go now (synchronously): nobody owns the file or waits for it. */
  canPass(): boolean {
    return !this.owned && this.waiters.length === 0;
  }

  /** Queues a lone statement: `go` runs when its turn comes, without taking the file. */
  queue(go: () => void): void {
    this.waiters.push({ exclusive: false, grant: go });
  }

  /** Takes the file; it is owned as soon as this returns, even though the promise settles later. */
  acquire(): Promise<void> {
    if (this.canPass()) {
      this.owned = true;
      return Promise.resolve();
    }
    return new Promise<void>((grant) => this.waiters.push({ exclusive: true, grant }));
  }

  /** Lets queued lone statements go, up to the next waiter that takes the file. */
  release(): void {
    this.owned = false;
    while (!this.owned && this.waiters.length > 0) {
      const next = this.waiters.shift()!;
      if (next.exclusive) this.owned = true;
      next.grant();
    }
  }
}

const gates = new Map<string, FileGate>();

function acquireGate(path: string): FileGate {
  if (path === ':memory:') return new FileGate();
  const gate = gates.get(path) ?? new FileGate();
  gate.users++;
  gates.set(path, gate);
  return gate;
}

function releaseGate(path: string, gate: FileGate): void {
  if (--gate.users === 0 && gates.get(path) === gate) gates.delete(path);
}

/**
 * `all` / `run`: a statement of a transaction; `autoAll` / `autoRun`: a lone statement, its own
 * transaction (the worker may commit several together, see serveSqliteWorker).
 */
type StatementOp = 'all' | 'run' | 'autoAll' | 'autoRun';

/** Where one driver's statements run: its own connection, on this thread or on the file's worker. */
interface Backend {
  /** Rows for all / autoAll, an ExecResult for run / autoRun. */
  statement(op: StatementOp, sql: string, params: readonly SqlParam[]): Promise<unknown>;
  /**
   * BEGIN IMMEDIATE, which takes the write lock up front (waiting up to busy_timeout for other
   * processes), so the transaction cannot fail half-way on a read-to-write lock upgrade.
   * In-process it runs now and throws when it fails. Threaded it goes with the transaction's
   * first request (no round trip of its own); when it fails, the transaction's statements and
   * COMMIT fail with its error, and ROLLBACK rejects with it.
   */
  begin(): void;
  /** COMMIT; when it fails, rolls back (if still open) and rejects. */
  commit(): Promise<unknown>;
  /** ROLLBACK if a transaction is open (errors ignored); rejects with the error of a failed BEGIN. */
  rollback(): Promise<unknown>;
  /** Closes the connection once every statement sent before has run. Never rejects. */
  close(): Promise<void>;
  /** Set when the backend stopped by itself (the worker thread died). */
  readonly failure: StoreError | undefined;
}

const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|READONLY|NOMEM|CORRUPT|NOTADB)/;

/** The typed error for a failure; `cause` is the original error (in-process) or a copy of it (worker). */
function toStoreError(f: SqliteFailure, cause: unknown = reviveError(f)): StoreError {
  if (f.kind === 'unavailable') return new StoreError('UNAVAILABLE', f.message, { cause });
  // better-sqlite3 throws RangeError/TypeError for bad bindings: a bug, not a data condition.
  if (f.kind === 'driver') return new StoreError('INTERNAL', `SQLite: ${f.message}`, { cause });
  if (f.code === 'SQLITE_CONSTRAINT_UNIQUE' || f.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new StoreError('CONFLICT', f.message, { cause });
  }
  const code = UNAVAILABLE_CODES.test(f.code) ? 'UNAVAILABLE' : 'INTERNAL';
  return new StoreError(code, `SQLite ${f.code}: ${f.message}`, { cause });
}

function reviveError(f: SqliteFailure): Error {
  const err = Object.assign(new Error(f.message), { code: f.code });
  err.name = f.name;
  if (f.stack !== undefined) err.stack = f.stack;
  return err;
}

/** BLOBs cross the thread boundary as Uint8Arrays; callers get Buffers, as in-process. */
function withBuffers(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  for (const row of rows) {
    for (const key in row) {
      const v = row[key];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v))
        row[key] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return rows;
}

const engine = createSqliteEngine(Database);

/** better-sqlite3 on the calling thread: each statement runs to completion when called. */
class InlineBackend implements Backend {
  readonly failure = undefined;

  constructor(private readonly conn: SqliteConnection) {}

  statement(op: StatementOp, sql: string, params: readonly SqlParam[]): Promise<unknown> {
    try {
      const reads = op === 'all' || op === 'autoAll';
      return Promise.resolve(reads ? this.conn.all(sql, params) : this.conn.run(sql, params));
    } catch (err) {
      return Promise.reject(toStoreError(engine.failure(err), err));
    }
  }

  begin(): void {
    try {
      this.conn.begin(true);
    } catch (err) {
      this.conn.rollback(); // the caller gives up at once: end the transaction that never began
      throw toStoreError(engine.failure(err), err);
    }
  }

  commit(): Promise<unknown> {
    try {
      this.conn.commit();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(toStoreError(engine.failure(err), err));
    }
  }

  rollback(): Promise<unknown> {
    this.conn.rollback(); // a failed BEGIN threw in begin(), nothing to report here
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.conn.close();
    return Promise.resolve();
  }
}

let workerSource: string | undefined;
let betterSqlite3Path: string | undefined;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Worker threads by database file; `:memory:` databases get one each. */
const hosts = new Map<string, WorkerHost>();

/**
 * One worker thread running the connections of one database file. Requests carry ids and are
 * answered in order; the thread keeps the process alive only while requests are outstanding.
 */
class WorkerHost {
  failure: StoreError | undefined;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextRequest = 1;
  private nextConnection = 1;
  private connections = 0;
  private stopping = false;

  private constructor(private readonly key: string | undefined) {
    workerSource ??= sqliteWorkerSource();
    betterSqlite3Path ??= createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(workerSource, {
      eval: true,
      name: 'sqlite',
      workerData: { betterSqlite3: betterSqlite3Path },
    });
    this.worker.unref();
    this.worker.on('message', (msg: SqliteReplyMessage) => this.onMessage(msg));
    this.worker.on('error', (err) => this.fail(`failed: ${describeError(err)}`, err));
    this.worker.on('messageerror', (err) =>
      this.fail(`sent an unreadable reply: ${describeError(err)}`, err),
    );
    this.worker.on('exit', (code) => this.fail(`exited (code ${code})`));
  }

  /** The file's worker (started if needed), with one more connection counted against it. */
  static attach(path: string): WorkerHost {
    const key = path === ':memory:' ? undefined : path;
    let host = key === undefined ? undefined : hosts.get(key);
    if (!host) {
      host = new WorkerHost(key);
      if (key !== undefined) hosts.set(key, host);
    }
    host.connections++;
    return host;
  }

  newConnectionId(): number {
    return this.nextConnection++;
  }

  /** Sends a request; resolves with its reply. Rejects with a StoreError. */
  request(op: SqliteOp, conn: number, a: unknown, b: unknown, begin: 0 | 1 = 0): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextRequest++;
    try {
      this.worker.postMessage([id, op, conn, a, b, begin] satisfies SqliteRequest);
    } catch (err) {
      // DataCloneError: a parameter that cannot be sent, a bug like any other bad binding.
      return Promise.reject(new StoreError('INTERNAL', `SQLite: ${describeError(err)}`, { cause: err }));
    }
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  /** Test hook: stops the thread under its connections, as a crash would. */
  kill(): Promise<number> {
    return this.worker.terminate();
  }

  /** One connection fewer; the last one stops the thread (its connections are closed by then). */
  async detach(): Promise<void> {
    if (--this.connections > 0) return;
    this.stopping = true;
    if (this.key !== undefined && hosts.get(this.key) === this) hosts.delete(this.key);
    await this.worker.terminate();
  }

  private onMessage(msg: SqliteReplyMessage): void {
    if (typeof msg[0] === 'number') this.onReply(msg as SqliteReply);
    else for (const reply of msg as readonly SqliteReply[]) this.onReply(reply);
  }

  private onReply(reply: SqliteReply): void {
    const id = reply[0];
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    const status = reply[1];
    if (status === 'ok') p.resolve(reply[2]);
    else if (status === 'binary') p.resolve(withBuffers(reply[2] as Record<string, unknown>[]));
    else p.reject(toStoreError(reply[2] as SqliteFailure));
  }

  /** The thread is gone: everything outstanding and everything later fails UNAVAILABLE, no hang. */
  private fail(reason: string, cause?: unknown): void {
    if (this.failure) return;
    this.failure = new StoreError(
      'UNAVAILABLE',
      this.stopping ? 'store is closed' : `SQLite worker thread ${reason}`,
      cause === undefined ? undefined : { cause },
    );
    if (this.key !== undefined && hosts.get(this.key) === this) hosts.delete(this.key);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.failure);
    if (!this.stopping) void this.worker.terminate();
  }
}

/** One connection in the file's worker thread. */
class WorkerBackend implements Backend {
  /** Settles when the connection is open; rejects UNAVAILABLE when it cannot be opened. */
  readonly opened: Promise<unknown>;
  private readonly id: number;
  /** The next request opens a transaction. */
  private beginNext: 0 | 1 = 0;

  constructor(
    private readonly host: WorkerHost,
    path: string,
    options: { synchronous: 'FULL' | 'NORMAL'; busyTimeoutMs: number },
  ) {
    this.id = host.newConnectionId();
    this.opened = host.request('open', this.id, path, options);
    // Statements sent meanwhile queue behind the open in the worker and fail like it.
    this.opened.catch(() => {});
  }

  get failure(): StoreError | undefined {
    return this.host.failure;
  }

  killWorker(): Promise<number> {
    return this.host.kill();
  }

  private takeBegin(): 0 | 1 {
    const begin = this.beginNext;
    this.beginNext = 0;
    return begin;
  }

  statement(op: StatementOp, sql: string, params: readonly SqlParam[]): Promise<unknown> {
    return this.host.request(op, this.id, sql, params, this.takeBegin());
  }

  begin(): void {
    this.beginNext = 1;
  }

  commit(): Promise<unknown> {
    return this.host.request('commit', this.id, null, null, this.takeBegin());
  }

  rollback(): Promise<unknown> {
    return this.host.request('rollback', this.id, null, null, this.takeBegin());
  }

  async close(): Promise<void> {
    try {
      await this.host.request('close', this.id, null, null);
    } catch {
      // A dead thread has nothing left to close.
    } finally {
      await this.host.detach();
    }
  }
}

/**
 * better-sqlite3 behind the async SqlDriver API, by default on a worker thread.
 *
 * Threaded: the driver posts each statement to the file's worker, which runs requests one at a
 * time in arrival order, so the event loop keeps serving sockets while statements and commits
 * (fsync) run. In-process (`thread: false`): each statement runs to completion when called.
 *
 * Either way the interleaving hazard is an async transaction callback, during which other callers
 * must not slip statements into the open transaction. The file's gate, owned for the transaction's
 * whole life, holds them back until COMMIT or ROLLBACK is sent; whatever is sent after that runs
 * after it.
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  /** Settles when the database is open; rejects UNAVAILABLE when it cannot be (threaded mode). */
  readonly ready: Promise<unknown>;
  private readonly path: string;
  private readonly gate: FileGate;
  private readonly backend: Backend;
  private closedByCaller = false;
  private closing: Promise<void> | undefined;

  /**
   * Opens the database; in-process, a failure throws UNAVAILABLE here. Threaded, the open runs on
   * the worker: see `ready`, or use `SqliteDriver.open`, which waits for it.
   */
  constructor(path: string, options: SqliteOptions = {}) {
    this.path = path === ':memory:' ? path : resolve(path);
    const connect = {
      synchronous: options.synchronous === 'NORMAL' ? ('NORMAL' as const) : ('FULL' as const),
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      ...(options.commitGate !== undefined ? { commitGate: options.commitGate } : {}),
    };
    try {
      if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
      if (options.thread === false) {
        // Waiting on the gate would block the very thread that has to open it.
        if (options.commitGate !== undefined) throw new Error('commitGate needs the worker thread');
        this.backend = new InlineBackend(engine.open(this.path, connect));
        this.ready = Promise.resolve();
      } else {
        const backend = new WorkerBackend(WorkerHost.attach(this.path), this.path, connect);
        this.backend = backend;
        this.ready = backend.opened;
      }
    } catch (err) {
      throw new StoreError('UNAVAILABLE', `cannot open SQLite database: ${describeError(err)}`, {
        cause: err,
      });
    }
    this.gate = acquireGate(this.path);
  }

  /** Opens the database and waits until it is open (or fails UNAVAILABLE). */
  static async open(path: string, options: SqliteOptions = {}): Promise<SqliteDriver> {
    const driver = new SqliteDriver(path, options);
    try {
      await driver.ready;
    } catch (err) {
      await driver.close();
      throw err;
    }
    return driver;
  }

  /** Closed by `close()`, or because the worker thread died; statements then fail UNAVAILABLE. */
  get closed(): boolean {
    return this.closedByCaller || this.backend.failure !== undefined;
  }

  query<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.lone('autoAll', sql, params) as Promise<T[]>;
  }

  execute(sql: string, params: readonly SqlParam[] = []): Promise<ExecResult> {
    return this.lone('autoRun', sql, params) as Promise<ExecResult>;
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.assertOpen();
    await this.gate.acquire();
    let owned = true;
    const tx = new SqliteTransaction(this.backend);
    try {
      this.assertOpen(); // closed, or the worker died, while queued
      this.backend.begin();
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        tx.finish();
        try {
          await this.backend.rollback();
        } catch (beginError) {
          // BEGIN failed (threaded: fn's statements only echoed its error): that is the error to
          // report, as in-process, where fn never runs then. A dead worker leaves fn's error.
          if (this.backend.failure === undefined) throw beginError;
        }
        throw err;
      }
      tx.finish();
      const committed = this.backend.commit();
      // Whatever is sent from now on runs after the COMMIT (or its rollback): the file is free.
      owned = false;
      this.gate.release();
      await committed;
      return result;
    } finally {
      tx.finish();
      if (owned) this.gate.release();
    }
  }

  /** BEGIN IMMEDIATE holds the database file's write lock across processes; SQLite DDL is transactional. */
  exclusive<T>(_name: string, fn: (ex: SqlExecutor) => Promise<T>): Promise<T> {
    return this.transaction(fn);
  }

  /** Waits for statements and transactions issued before, then closes; later ones fail UNAVAILABLE. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.gate.acquire();
    this.closedByCaller = true;
    try {
      await this.backend.close();
    } finally {
      this.gate.release();
      releaseGate(this.path, this.gate);
    }
  }

  /** A statement outside any transaction: sent now unless the file is owned or others queue. */
  private lone(op: 'autoAll' | 'autoRun', sql: string, params: readonly SqlParam[]): Promise<unknown> {
    if (this.gate.canPass()) return this.statement(op, sql, params);
    return new Promise((resolve, reject) => {
      this.gate.queue(() => {
        this.statement(op, sql, params).then(resolve, reject);
      });
    });
  }

  private statement(op: 'autoAll' | 'autoRun', sql: string, params: readonly SqlParam[]): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closedError());
    return this.backend.statement(op, sql, params);
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): StoreError {
    const failure = this.backend.failure;
    if (this.closedByCaller || failure === undefined) return new StoreError('UNAVAILABLE', 'store is closed');
    return new StoreError('UNAVAILABLE', `store is closed: ${failure.message}`, { cause: failure });
  }
}

/**
 * Test hook: stops the worker thread of a threaded driver (and of every driver sharing it) the way
 * a crash would, to check that nothing hangs. Resolves once the thread is gone.
 */
export async function killSqliteWorkerForTests(driver: SqliteDriver): Promise<void> {
  const backend = (driver as unknown as { backend: Backend }).backend;
  if (!(backend instanceof WorkerBackend)) throw new Error('not a threaded SqliteDriver');
  await backend.killWorker();
}

/** The executor handed to a transaction callback; refuses use after the transaction ended. */
class SqliteTransaction implements SqlExecutor {
  readonly dialect = 'sqlite' as const;
  private active = true;

  constructor(private readonly backend: Backend) {}

  query<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    if (!this.active) return Promise.reject(finished());
    return this.backend.statement('all', sql, params) as Promise<T[]>;
  }

  execute(sql: string, params: readonly SqlParam[] = []): Promise<ExecResult> {
    if (!this.active) return Promise.reject(finished());
    return this.backend.statement('run', sql, params) as Promise<ExecResult>;
  }

  finish(): void {
    this.active = false;
  }
}

function finished(): StoreError {
  return new StoreError('INTERNAL', 'transaction already finished');
}
