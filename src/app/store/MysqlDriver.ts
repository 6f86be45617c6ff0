import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql, {
  type Pool,
  type PoolConnection,
  type ResultSetHeader,
  type RowDataPacket,
} from 'mysql2/promise';
import { describeError, StoreError } from './errors.js';
import type { ExecResult, SqlDriver, SqlExecutor, SqlParam } from './SqlDriver.js';

export interface MysqlOptions {
  host: string;
  port?: number;
  user: string;
  password?: string;
  database: string;
  /** Upper bound of pooled connections; callers beyond it queue. Default 10. */
  connectionLimit?: number;
  /** Run `CREATE DATABASE IF NOT EXISTS` first (skipped silently when the account may not). Default true. */
  createDatabase?: boolean;
  /** Attempts of a transaction that hits a deadlock or lock wait timeout. Default 5. */
  maxAttempts?: number;
  /** Session `innodb_lock_wait_timeout` in seconds; shorter than the server's 50 s so callers get errno 9 fast. */
  lockWaitTimeoutSec?: number;
  connectTimeoutMs?: number;
}

const ER_DUP_ENTRY = 1062;
const ER_DUP_ENTRY_WITH_KEY_NAME = 1586;
const ER_LOCK_DEADLOCK = 1213;
const ER_LOCK_WAIT_TIMEOUT = 1205;
/** Privilege errors that only mean "may not CREATE DATABASE": the database may already exist. */
const NO_CREATE_PRIVILEGE = new Set([1044, 1142, 1227]);
/** Server errors that mean the server or this account is unusable right now, not a bad statement. */
const UNAVAILABLE_ERRNOS = new Set([
  1040, 1044, 1045, 1049, 1053, 1077, 1129, 1130, 1152, 1158, 1159, 1160, 1161, 1203, 1226, 1251, 1698, 1927,
]);
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

interface MysqlErrorLike {
  errno?: number;
  code?: string;
  fatal?: boolean;
}

function errInfo(err: unknown): MysqlErrorLike {
  return typeof err === 'object' && err !== null ? (err as MysqlErrorLike) : {};
}

/** Deadlock / lock wait timeout, raw or already wrapped by a transaction executor. */
function isRetryable(err: unknown): boolean {
  const { errno } = errInfo(err instanceof StoreError ? err.cause : err);
  return errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
}

/** Errors raised by mysql2 or the socket under it, as opposed to errors of the caller's own code. */
function isDriverError(err: unknown): boolean {
  const { errno, code, fatal } = errInfo(err);
  return (
    errno !== undefined ||
    code !== undefined ||
    fatal !== undefined ||
    /pool is closed/i.test(describeError(err))
  );
}

/**
 * Driver errors become StoreErrors; anything else (a StoreError, or an error thrown by a
 * transaction callback on purpose) passes through untouched.
 */
function mapMysqlError(err: unknown): unknown {
  if (err instanceof StoreError || !isDriverError(err)) return err;
  const { errno, code, fatal } = errInfo(err);
  const msg = `MySQL ${code ?? 'error'}: ${describeError(err)}`;
  if (errno === ER_DUP_ENTRY || errno === ER_DUP_ENTRY_WITH_KEY_NAME) {
    return new StoreError('CONFLICT', msg, { cause: err });
  }
  if (
    fatal === true ||
    errno === ER_LOCK_DEADLOCK ||
    errno === ER_LOCK_WAIT_TIMEOUT ||
    (errno !== undefined && UNAVAILABLE_ERRNOS.has(errno)) ||
    (code !== undefined && UNAVAILABLE_CODES.has(code)) ||
    /pool is closed/i.test(describeError(err))
  ) {
    return new StoreError('UNAVAILABLE', msg, { cause: err });
  }
  return new StoreError('INTERNAL', msg, { cause: err });
}

/** Identifiers cannot be bound as parameters, so the database name is checked instead. */
function checkDatabaseName(name: string): string {
  if (!/^[A-Za-z0-9_$-]{1,64}$/.test(name)) {
    throw new StoreError('INTERNAL', `unsupported MySQL database name ${JSON.stringify(name)}`);
  }
  return name;
}

async function runOn(conn: PoolConnection | Pool, sql: string, params: readonly SqlParam[]) {
  // Text protocol when there is nothing to bind (DDL, BEGIN); server-side prepared statements
  // (cached per connection by mysql2) otherwise.
  return params.length === 0 ? conn.query(sql) : conn.execute(sql, params as SqlParam[]);
}

async function queryOn<T>(
  conn: PoolConnection | Pool,
  sql: string,
  params: readonly SqlParam[],
): Promise<T[]> {
  const [rows] = await runOn(conn, sql, params);
  return rows as RowDataPacket[] as T[];
}

async function executeOn(
  conn: PoolConnection | Pool,
  sql: string,
  params: readonly SqlParam[],
): Promise<ExecResult> {
  const [res] = await runOn(conn, sql, params);
  const header = res as ResultSetHeader;
  return { affectedRows: header.affectedRows ?? 0, insertId: Number(header.insertId ?? 0) };
}

/** mysql2/promise pool behind SqlDriver. Use `MysqlDriver.open`, which also creates the database. */
export class MysqlDriver implements SqlDriver {
  readonly dialect = 'mysql' as const;
  private closed = false;

  private constructor(
    private readonly pool: Pool,
    private readonly database: string,
    private readonly maxAttempts: number,
  ) {}

  static async open(options: MysqlOptions): Promise<MysqlDriver> {
    const database = checkDatabaseName(options.database);
    const base = {
      host: options.host,
      port: options.port ?? 3306,
      user: options.user,
      password: options.password ?? '',
      charset: 'UTF8MB4_BIN',
      connectTimeout: options.connectTimeoutMs ?? 10_000,
    };
    if (options.createDatabase !== false) await createDatabase(base, database);
    const pool = mysql.createPool({
      ...base,
      database,
      connectionLimit: options.connectionLimit ?? 10,
      waitForConnections: true,
      maxPreparedStatements: 256, // per connection; the server caps all sessions at 16382 by default
      // ConnectionExecutor sends statements issued together in one packet. Only this project's
      // constant SQL is ever sent; values are always bound or escaped by mysql2.
      multipleStatements: true,
      enableKeepAlive: true,
      // No stack capture per statement (about 10 µs each): errors become StoreErrors, whose own
      // stacks show the caller.
      trace: false,
    });
    const lockWait = options.lockWaitTimeoutSec ?? 10;
    pool.pool.on('connection', (conn) => {
      // Strict mode on every session: over-long data must fail, never be truncated silently.
      // Commands queue per connection, so this runs before the caller's first statement.
      conn.query(
        // Without NO_BACKSLASH_ESCAPES, which would break the escaping of values mysql2 formats.
        "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), " +
          "',NO_BACKSLASH_ESCAPES,', ',')), ''), 'STRICT_ALL_TABLES'), " +
          'SESSION innodb_lock_wait_timeout = ?',
        [lockWait],
        () => {},
      );
    });
    const driver = new MysqlDriver(pool, database, options.maxAttempts ?? 5);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await pool.end().catch(() => {});
      throw mapMysqlError(err);
    }
    return driver;
  }

  query<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.withRetry(() => queryOn<T>(this.pool, sql, params));
  }

  execute(sql: string, params: readonly SqlParam[] = []): Promise<ExecResult> {
    return this.withRetry(() => executeOn(this.pool, sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.withRetry(async () => {
      const conn = await this.connection();
      const tx = new ConnectionExecutor(conn);
      let broken = false;
      try {
        // Not awaited: it goes out in one packet with fn's first statements.
        void tx.execute('START TRANSACTION').catch(() => {});
        const result = await fn(tx);
        // Statements fn sent without awaiting are part of the transaction too.
        await tx.settled();
        await conn.query('COMMIT');
        return result;
      } catch (err) {
        // A deadlock already rolled back, a lock wait timeout only rolled back its statement.
        await conn.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      } finally {
        tx.finish();
        if (broken) conn.destroy();
        else conn.release();
      }
    });
  }

  async exclusive<T>(name: string, fn: (ex: SqlExecutor) => Promise<T>): Promise<T> {
    // GET_LOCK names are server-wide and at most 64 characters: scope to the database, then hash.
    const lockName = createHash('sha1').update(`${this.database}\0${name}`).digest('hex');
    const conn = await this.connection();
    const ex = new ConnectionExecutor(conn);
    let broken = false;
    try {
      const [row] = await queryOn<{ ok: number | null }>(conn, 'SELECT GET_LOCK(?, 60) AS ok', [lockName]);
      if (row?.ok !== 1) throw new StoreError('UNAVAILABLE', `timed out waiting for lock ${name}`);
      try {
        return await fn(ex);
      } finally {
        // A session that cannot release the lock must not go back to the pool still holding it.
        await conn.query('DO RELEASE_LOCK(?)', [lockName]).catch(() => {
          broken = true;
        });
      }
    } catch (err) {
      throw mapMysqlError(err);
    } finally {
      ex.finish();
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async connection(): Promise<PoolConnection> {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    try {
      return await this.pool.getConnection();
    } catch (err) {
      throw mapMysqlError(err);
    }
  }

  /** Re-runs `work` from scratch after a deadlock or lock wait timeout, with jittered backoff. */
  private async withRetry<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (err) {
        if (!isRetryable(err) || attempt >= this.maxAttempts) throw mapMysqlError(err);
        await sleep(Math.random() * 10 * attempt);
      }
    }
  }
}

/** Runs statements on one pooled connection (a transaction or a locked session). */
/** A statement waiting for the executor's next packet. */
interface Queued {
  sql: string;
  params: readonly SqlParam[];
  rows: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs statements on one pooled connection (a transaction or a locked session). Statements sent
 * in one go (without awaiting each other) leave in ONE multi-statement packet: mysql2 sends a
 * connection's commands one at a time, a round trip each, and a group commit sends several
 * statements that do not depend on each other. A lone statement is a server-side prepared
 * statement as elsewhere; a packet of several is formatted by mysql2 (escaped values, text
 * protocol). When one statement of a packet fails the server runs none after it, so all of the
 * packet's statements reject with that error.
 */
class ConnectionExecutor implements SqlExecutor {
  readonly dialect = 'mysql' as const;
  private active = true;
  /** The last statement sent: the connection runs them in order, so it settles last. */
  private last: Promise<unknown> = Promise.resolve();
  /** The first statement that failed (mapped). */
  private failure: unknown;
  private queued: Queued[] = [];

  constructor(private readonly conn: PoolConnection) {}

  query<T>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.enqueue(sql, params, true) as Promise<T[]>;
  }

  execute(sql: string, params: readonly SqlParam[] = []): Promise<ExecResult> {
    return this.enqueue(sql, params, false) as Promise<ExecResult>;
  }

  /** Waits for every statement sent; rejects with the first failure, even one the caller caught. */
  async settled(): Promise<void> {
    await this.last.catch(() => {});
    if (this.failure !== undefined) throw this.failure;
  }

  finish(): void {
    this.active = false;
  }

  private enqueue(sql: string, params: readonly SqlParam[], rows: boolean): Promise<unknown> {
    if (!this.active) return Promise.reject(finished());
    const sent = new Promise((resolve, reject) => {
      if (this.queued.length === 0) queueMicrotask(this.send);
      this.queued.push({ sql, params, rows, resolve, reject });
    });
    const mapped = sent.catch((err: unknown) => {
      const error = mapMysqlError(err);
      this.failure ??= error;
      throw error;
    });
    this.last = mapped;
    return mapped;
  }

  private readonly send = (): void => {
    const queued = this.queued;
    this.queued = [];
    // Packets stay far below max_allowed_packet (4 MiB and up): a big statement goes alone.
    let group: Queued[] = [];
    let bytes = 0;
    for (const q of queued) {
      const size = statementBytes(q);
      if (group.length > 0 && bytes + size > kMaxPacketBytes) {
        this.sendGroup(group);
        group = [];
        bytes = 0;
      }
      group.push(q);
      bytes += size;
    }
    this.sendGroup(group);
  };

  private sendGroup(batch: Queued[]): void {
    if (batch.length === 1) {
      const only = batch[0]!;
      const run = only.rows
        ? queryOn(this.conn, only.sql, only.params)
        : executeOn(this.conn, only.sql, only.params);
      run.then(only.resolve, only.reject);
      return;
    }
    const values: SqlParam[] = [];
    for (const q of batch) for (const p of q.params) values.push(p);
    this.conn.query(batch.map((q) => q.sql).join(';\n'), values).then(
      ([results]) => {
        const each = results as unknown as (RowDataPacket[] | ResultSetHeader)[];
        batch.forEach((q, i) => {
          const r = each[i];
          if (q.rows) q.resolve(r);
          else {
            const header = r as ResultSetHeader;
            q.resolve({ affectedRows: header.affectedRows ?? 0, insertId: Number(header.insertId ?? 0) });
          }
        });
      },
      (err: unknown) => {
        for (const q of batch) q.reject(err);
      },
    );
  }
}

/** Most bytes of one multi-statement packet. */
const kMaxPacketBytes = 1024 * 1024;

/** An upper bound of a statement's size once mysql2 has formatted it (escaping can double strings). */
function statementBytes(q: Queued): number {
  let bytes = q.sql.length + 2;
  for (const p of q.params) {
    if (typeof p === 'string') bytes += 2 * globalThis.Buffer.byteLength(p) + 2;
    else if (p instanceof Uint8Array) bytes += 2 * p.length + 3;
    else bytes += 24;
  }
  return bytes;
}

function finished(): StoreError {
  return new StoreError('INTERNAL', 'transaction already finished');
}

async function createDatabase(base: mysql.ConnectionOptions, database: string): Promise<void> {
  let conn: mysql.Connection | undefined;
  try {
    conn = await mysql.createConnection(base);
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`);
  } catch (err) {
    if (!NO_CREATE_PRIVILEGE.has(errInfo(err).errno ?? 0)) throw mapMysqlError(err);
  } finally {
    await conn?.end().catch(() => {});
  }
}
