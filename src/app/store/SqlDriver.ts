/** A value bound to a `?` placeholder. Booleans are not portable (SQLite rejects them): use 0/1. */
export type SqlParam = string | number | bigint | null | Buffer;

export type Dialect = 'sqlite' | 'mysql';

export interface ExecResult {
  /** Rows inserted, updated or deleted (MySQL: rows matched, not only changed). */
  affectedRows: number;
  /** Auto-increment id of the last inserted row; 0 when none. */
  insertId: number;
}

/** What runs statements: the driver itself or an open transaction. */
export interface SqlExecutor {
  readonly dialect: Dialect;
  /** A statement that returns rows. `T` is the caller's promise about the row shape. */
  query<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
  /** A statement that returns no rows. */
  execute(sql: string, params?: readonly SqlParam[]): Promise<ExecResult>;
}

export interface SqlDriver extends SqlExecutor {
  /**
   * Runs `fn` in one write transaction: committed when it resolves, rolled back when it throws.
   * Every statement sent on `tx` belongs to it, awaited or not, and it commits only if all of them
   * succeeded: otherwise it rolls back and rejects with the first failure (even one `fn` caught).
   * So `fn` may send writes whose results it does not need and return without waiting for them.
   * `fn` may be re-run from scratch after a deadlock (MySQL), so it must keep its results local
   * and have no side effects outside `tx`. Inside `fn` use only `tx`: calling the driver itself
   * would wait for the transaction that is waiting for it (SQLite) or run outside it (MySQL).
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on one connection while holding a cross-process lock named `name` (schema
   * migrations). Statements inside are not one transaction on MySQL (DDL commits implicitly).
   */
  exclusive<T>(name: string, fn: (ex: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
