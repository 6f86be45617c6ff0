import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/app/store/errors.js';
import { MysqlDriver } from '../../src/app/store/MysqlDriver.js';
import { migrate, SCHEMA_VERSION } from '../../src/app/store/migrations.js';
import { openStore } from '../../src/app/store/openStore.js';
import type { SqlDriver } from '../../src/app/store/SqlDriver.js';
import { SqliteDriver } from '../../src/app/store/SqliteDriver.js';
import {
  createTestDatabase,
  createTestSqlitePath,
  dropTestMysqlDatabase,
  testMysqlUrl,
  uniqueMysqlDatabaseName,
} from '../helpers/db.js';
import { STORE_KINDS } from './harness.js';

const TABLES = ['chat_groups', 'friends', 'group_members', 'inbox', 'inbox_cursors', 'messages', 'users'];

async function tableNames(driver: SqlDriver): Promise<string[]> {
  const sql =
    driver.dialect === 'mysql'
      ? 'SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()'
      : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
  return (await driver.query<{ name: string }>(sql)).map((r) => r.name).sort();
}

async function versions(driver: SqlDriver): Promise<number[]> {
  const rows = await driver.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version');
  return rows.map((r) => r.version);
}

async function openDriver(kind: 'sqlite' | 'mysql', url: string): Promise<SqlDriver> {
  if (kind === 'sqlite') return new SqliteDriver(url.slice('sqlite:'.length));
  const u = new URL(url);
  return MysqlDriver.open({
    host: u.hostname,
    port: Number(u.port),
    user: u.username,
    database: u.pathname.slice(1),
  });
}

describe.each(STORE_KINDS)('migrations on %s', (kind) => {
  it('creates every table once; running again and concurrently changes nothing', async () => {
    const db = await createTestDatabase(kind);
    const a = await openDriver(kind, db.url);
    const b = await openDriver(kind, db.url);
    try {
      // Two drivers (two pools / connections) race on a fresh database, then run again.
      expect(await Promise.all([migrate(a), migrate(b)])).toEqual([SCHEMA_VERSION, SCHEMA_VERSION]);
      expect(await migrate(a)).toBe(SCHEMA_VERSION);
      expect(await tableNames(a)).toEqual([...TABLES, 'schema_version'].sort());
      expect(await versions(b)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    } finally {
      await a.close();
      await b.close();
      await db.drop();
    }
  });

  it('keeps data when the store is reopened', async () => {
    const db = await createTestDatabase(kind);
    try {
      const first = await openStore(db.url);
      const id = await first.users.create('persistent', 'pw');
      await first.close();
      const second = await openStore(db.url);
      expect((await second.users.findById(id))?.name).toBe('persistent');
      await second.close();
    } finally {
      await db.drop();
    }
  });

  it('refuses a database migrated by newer code', async () => {
    const db = await createTestDatabase(kind);
    const driver = await openDriver(kind, db.url);
    try {
      await migrate(driver);
      await driver.execute('INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)', [
        SCHEMA_VERSION + 1,
        'from the future',
        'now',
      ]);
      await expect(migrate(driver)).rejects.toMatchObject({
        code: 'INTERNAL',
        message: /newer than this code/,
      });
    } finally {
      await driver.close();
      await db.drop();
    }
  });

  it('fails statements after close with UNAVAILABLE', async () => {
    const db = await createTestDatabase(kind);
    const store = await openStore(db.url);
    await store.close();
    await expect(store.users.findById(1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await db.drop();
  });
});

describe('opening stores', () => {
  it('creates the MySQL database when it is missing', async () => {
    const name = uniqueMysqlDatabaseName();
    try {
      const store = await openStore(testMysqlUrl(name));
      expect(store.dialect).toBe('mysql');
      expect(await store.users.create('first', 'pw')).toBeGreaterThan(0);
      await store.close();
    } finally {
      await dropTestMysqlDatabase(name);
    }
  });

  it('creates the SQLite file and its directory', async () => {
    const file = createTestSqlitePath();
    try {
      const store = await openStore(`sqlite:${file.path.replace(/chat\.db$/, 'nested/dir/chat.db')}`);
      expect(store.dialect).toBe('sqlite');
      expect(await store.users.create('first', 'pw')).toBe(1);
      await store.close();
    } finally {
      await file.cleanup();
    }
  });

  it('maps an unreachable MySQL server to UNAVAILABLE', async () => {
    const err = await openStore('mysql://root@127.0.0.1:1/nothing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('maps wrong MySQL credentials to UNAVAILABLE without leaking the password', async () => {
    const err = await openStore(`mysql://nobody:s3cret-pw@127.0.0.1:3306/${uniqueMysqlDatabaseName()}`).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(String((err as Error).message)).not.toContain('s3cret-pw');
  });
});
