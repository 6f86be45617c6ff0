import type { Dialect } from './SqlDriver.js';

/** The few SQL fragments where SQLite and MySQL/MariaDB differ. Everything else is written once. */
export interface DialectSql {
  /** `INSERT IGNORE` / `INSERT OR IGNORE`: skip rows that hit a unique key. */
  readonly insertIgnore: string;
  /** Appended to a SELECT that must lock its rows until commit. SQLite locks the whole file instead. */
  readonly forUpdate: string;
  /** Column definition of an auto-increment integer primary key. */
  readonly autoIncrementPk: string;
  /** Appended to CREATE TABLE (engine, charset); `binCollation` is an exact, byte-wise collation. */
  tableOptions(binCollation: string): string;
}

const SQLITE: DialectSql = {
  insertIgnore: 'INSERT OR IGNORE',
  forUpdate: '',
  // AUTOINCREMENT: ids are never reused, even after the newest row is deleted.
  autoIncrementPk: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  tableOptions: () => '',
};

const MYSQL: DialectSql = {
  insertIgnore: 'INSERT IGNORE',
  forUpdate: ' FOR UPDATE',
  autoIncrementPk: 'BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY',
  tableOptions: (binCollation) => ` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${binCollation}`,
};

export function dialectSql(dialect: Dialect): DialectSql {
  return dialect === 'mysql' ? MYSQL : SQLITE;
}
