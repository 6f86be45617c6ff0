/**
 * A SqlDriver in front of a real one that records each transaction's statements, so a test can
 * see how an append ran (read first, or predicted without reading), and that can make chosen
 * statements fail in the real store (the engine refuses them, so the transaction rolls back).
 */
import type { Dialect, ExecResult, SqlDriver, SqlExecutor, SqlParam } from '../../src/app/store/SqlDriver.js';

export interface Statement {
  /** `query` returns rows (a read, or SQLite's UPDATE … RETURNING); `execute` does not. */
  kind: 'query' | 'execute';
  sql: string;
}

/** Decides whether a statement of transaction number `tx` (0-based, re-runs counted) fails. */
export type FailWhen = (statement: Statement, tx: number) => 'conflict' | 'error' | null;

// Sent instead of a statement chosen to fail: the driver sees a real failure and dooms the transaction.
const kFailures = {
  // A second row for the mid counter's primary key: a unique key conflict (StoreError CONFLICT).
  conflict: "INSERT INTO id_counters (name, last_id) VALUES ('messages.mid', 0)",
  // A table that does not exist: any other failure.
  error: 'INSERT INTO injected_failure (x) VALUES (1)',
} as const;

export class RecordingDriver implements SqlDriver {
  /** The statements of each transaction run, in the order sent; a driver re-run is a new entry. */
  readonly transactions: Statement[][] = [];
  failWhen: FailWhen | null = null;

  constructor(private readonly inner: SqlDriver) {}

  get dialect(): Dialect {
    return this.inner.dialect;
  }

  query<T>(sql: string, params?: readonly SqlParam[]): Promise<T[]> {
    return this.inner.query<T>(sql, params);
  }

  execute(sql: string, params?: readonly SqlParam[]): Promise<ExecResult> {
    return this.inner.execute(sql, params);
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.transaction((tx) => {
      const index = this.transactions.length;
      const log: Statement[] = [];
      this.transactions.push(log);
      const run = (kind: Statement['kind'], sql: string): string => {
        log.push({ kind, sql });
        const failure = this.failWhen?.({ kind, sql }, index) ?? null;
        return failure === null ? sql : kFailures[failure];
      };
      return fn({
        dialect: tx.dialect,
        query: <R>(sql: string, params?: readonly SqlParam[]) => {
          const sent = run('query', sql);
          return sent === sql ? tx.query<R>(sql, params) : tx.execute(sent).then(() => []);
        },
        execute: (sql, params) => {
          const sent = run('execute', sql);
          return sent === sql ? tx.execute(sql, params) : tx.execute(sent);
        },
      });
    });
  }

  exclusive<T>(name: string, fn: (ex: SqlExecutor) => Promise<T>): Promise<T> {
    return this.inner.exclusive(name, fn);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Whether a recorded transaction read before writing (an append that did not predict). */
export function readFirst(statements: readonly Statement[]): boolean {
  return statements.some((s) => s.kind === 'query' || /^\s*SELECT/i.test(s.sql));
}
