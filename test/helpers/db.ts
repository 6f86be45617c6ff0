/**
 * Throwaway databases for tests: every test run gets its own database or file and removes it
 * afterwards. MySQL/MariaDB is reached at TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';

export type StoreKind = 'sqlite' | 'mysql';

export interface TestDatabase {
  /** A URL openStore understands. */
  url: string;
  /** Removes the database (or file); safe to call twice. */
  drop(): Promise<void>;
}

export interface TestSqliteFile {
  path: string;
  /** `sqlite:<path>` */
  url: string;
  /** Removes the file with its WAL and SHM siblings. */
  cleanup(): Promise<void>;
}

const SERVER_URL = new URL(process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306');

function serverOptions(): mysql.ConnectionOptions {
  return {
    host: SERVER_URL.hostname,
    port: SERVER_URL.port === '' ? 3306 : Number(SERVER_URL.port),
    user: decodeURIComponent(SERVER_URL.username) || 'root',
    password: decodeURIComponent(SERVER_URL.password),
  };
}

async function onServer(sql: string): Promise<void> {
  const conn = await mysql.createConnection(serverOptions());
  try {
    await conn.query(sql);
  } finally {
    await conn.end();
  }
}

/** A unique database name, also usable before the database exists (e.g. to test creation). */
export function uniqueMysqlDatabaseName(): string {
  return `chat_test_${process.pid}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** The URL of `database` on the test server, whether or not it exists yet. */
export function testMysqlUrl(database: string): string {
  const auth =
    SERVER_URL.password === ''
      ? SERVER_URL.username || 'root'
      : `${SERVER_URL.username}:${SERVER_URL.password}`;
  return `mysql://${auth}@${SERVER_URL.host}/${database}`;
}

/** Creates a fresh, uniquely named database on the test server. */
export async function createTestMysqlUrl(): Promise<TestDatabase> {
  const name = uniqueMysqlDatabaseName();
  await onServer(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  return { url: testMysqlUrl(name), drop: () => dropTestMysqlDatabase(name) };
}

export function dropTestMysqlDatabase(name: string): Promise<void> {
  return onServer(`DROP DATABASE IF EXISTS \`${name}\``);
}

/** A path in a fresh temporary directory; the file itself is not created. */
export function createTestSqlitePath(): TestSqliteFile {
  const dir = mkdtempSync(join(tmpdir(), 'chat-store-test-'));
  const path = join(dir, 'chat.db');
  return {
    path,
    url: `sqlite:${path}`,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Either kind behind one shape, for suites that run against both stores. */
export async function createTestDatabase(kind: StoreKind): Promise<TestDatabase> {
  if (kind === 'mysql') return createTestMysqlUrl();
  const file = createTestSqlitePath();
  return { url: file.url, drop: file.cleanup };
}
