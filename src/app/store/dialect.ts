import type { Dialect } from './SqlDriver.js';

/** The few SQL fragments where SQLite and MySQL/MariaDB differ. Everything else is written once. */
export interface DialectSql {
  /** `INSERT IGNORE` / `INSERT OR IGNORE`: skip rows that hit a unique key. */
  readonly insertIgnore: string;
  /** Appended to a SELECT that must lock its rows until commit. SQLite locks the whole file instead. */
  readonly forUpdate: string;
  /** Appended to a SELECT that must keep its rows from changing until commit, letting other readers share them. */
  readonly forShare: string;
  /**
   * Appended to `INSERT … VALUES` so that rows whose `key` exists overwrite `columns` instead.
   * Rows are found by key lookups, never a scan: an UPDATE … WHERE id IN (…) on a small table
   * may scan and, on InnoDB, lock rows other transactions hold (a deadlock).
   */
  onConflictUpdate(key: string, columns: readonly string[]): string;
  /** Column definition of an auto-increment integer primary key. */
  readonly autoIncrementPk: string;
  /** Appended to CREATE TABLE (engine, charset); `binCollation` is an exact, byte-wise collation. */
  tableOptions(binCollation: string): string;
}

const SQLITE: DialectSql = {
  insertIgnore: 'INSERT OR IGNORE',
  forUpdate: '',
  forShare: '',
  onConflictUpdate: (key, columns) =>
    ` ON CONFLICT(${key}) DO UPDATE SET ${columns.map((c) => `${c} = excluded.${c}`).join(', ')}`,
  // AUTOINCREMENT: ids are never reused, even after the newest row is deleted.
  autoIncrementPk: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  tableOptions: () => '',
};

const MYSQL: DialectSql = {
  insertIgnore: 'INSERT IGNORE',
  forUpdate: ' FOR UPDATE',
  // MariaDB does not know MySQL 8's FOR SHARE; both know this.
  forShare: ' LOCK IN SHARE MODE',
  // VALUES() is deprecated in MySQL 8.0.20+ (a warning) but is the only spelling MariaDB knows.
  onConflictUpdate: (_key, columns) =>
    ` ON DUPLICATE KEY UPDATE ${columns.map((c) => `${c} = VALUES(${c})`).join(', ')}`,
  autoIncrementPk: 'BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY',
  tableOptions: (binCollation) => ` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${binCollation}`,
};

export function dialectSql(dialect: Dialect): DialectSql {
  return dialect === 'mysql' ? MYSQL : SQLITE;
}
