import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/app/store/errors.js';
import { migrate, SCHEMA_VERSION } from '../../src/app/store/migrations.js';
import type { SqlDriver } from '../../src/app/store/SqlDriver.js';
import {
  createTestDatabase,
  createTestSqlitePath,
  dropTestMysqlDatabase,
  testMysqlUrl,
  uniqueMysqlDatabaseName,
} from '../helpers/db.js';
import { oneToOne, openTestDriver, openTestStore, STORE_KINDS } from './harness.js';

const TABLES = [
  'chat_groups',
  'friends',
  'group_fanout',
  'group_members',
  'id_counters',
  'inbox',
  'inbox_cursors',
  'message_partitions',
  'messages',
  'users',
];

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

describe.each(STORE_KINDS)('migrations on %s', (kind) => {
  it('creates every table once; running again and concurrently changes nothing', async () => {
    const db = await createTestDatabase(kind);
    const a = await openTestDriver(db.url);
    const b = await openTestDriver(db.url);
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
      const first = await openTestStore(db.url);
      const id = await first.users.create('persistent', 'pw');
      await first.close();
      const second = await openTestStore(db.url);
      expect((await second.users.findById(id))?.name).toBe('persistent');
      await second.close();
    } finally {
      await db.drop();
    }
  });

  it('starts the mid counter after the messages of a v1 database, even ones written by v1 code later', async () => {
    const db = await createTestDatabase(kind);
    const driver = await openTestDriver(db.url);
    try {
      expect(await migrate(driver, 1)).toBe(1);
      // What v1 code leaves behind: users with cursors, messages with AUTO_INCREMENT mids.
      const legacy = (cmid: string) =>
        driver.execute(
          "INSERT INTO messages (sender, cmid, kind, target, body, sent_at) VALUES (1, ?, 'one', 2, 'v1', 't')",
          [cmid],
        );
      await driver.execute("INSERT INTO users (id, name, password_hash) VALUES (1, 'a', 'h'), (2, 'b', 'h')");
      await driver.execute('INSERT INTO inbox_cursors (user_id) VALUES (1), (2)');
      for (const cmid of ['v1-a', 'v1-b', 'v1-c']) await legacy(cmid);
      await driver.execute(
        "INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at) VALUES (41, 1, 'v1-d', 'one', 2, 'v1', 't')",
      );

      expect(await migrate(driver)).toBe(SCHEMA_VERSION);
      const counter = () => driver.query<{ lastId: number }>('SELECT last_id AS lastId FROM id_counters');
      expect(await counter()).toEqual([{ lastId: 41 }]);
      expect(await migrate(driver)).toBe(SCHEMA_VERSION);
      expect(await counter()).toEqual([{ lastId: 41 }]);

      const store = await openTestStore(db.url);
      try {
        const send = (cmid: string) => store.messages.append([oneToOne(1, 2, 'v2', cmid)]);
        expect((await send('v2-a'))[0]).toMatchObject({ mid: 42, duplicate: false });
        // v1 code still running during a rolling upgrade takes the next AUTO_INCREMENT mid
        // itself; the next append runs into it, moves the counter past it and goes on.
        await legacy('v1-e');
        const [{ mid: v1Mid } = { mid: 0 }] = await driver.query<{ mid: number }>(
          "SELECT mid FROM messages WHERE cmid = 'v1-e'",
        );
        expect(v1Mid).toBe(43);
        expect((await send('v2-b'))[0]).toMatchObject({ mid: 44, duplicate: false });
        // A true retry of a v1 message (same recipient and text) gets its mid.
        const [retry] = await store.messages.append([oneToOne(1, 2, 'v1', 'v1-b')]);
        expect(retry).toEqual({ mid: 2, duplicate: true, deliveries: [] });
        expect(await counter()).toEqual([{ lastId: 44 }]);
      } finally {
        await store.close();
      }
    } finally {
      await driver.close();
      await db.drop();
    }
  });

  it('keeps every message, its mid and cmid across migration 3, and cmids stay unique', async () => {
    const db = await createTestDatabase(kind);
    const driver = await openTestDriver(db.url);
    try {
      expect(await migrate(driver, 2)).toBe(2);
      await driver.execute("INSERT INTO users (id, name, password_hash) VALUES (1, 'a', 'h'), (2, 'b', 'h')");
      await driver.execute('INSERT INTO inbox_cursors (user_id) VALUES (1), (2)');
      const rows: [number, string | null][] = [
        [7, 'c-1'],
        [8, null],
        [9, null],
        [12, 'c-2'],
      ];
      for (const [mid, cmid] of rows) {
        await driver.execute(
          "INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at) VALUES (?, 1, ?, 'one', 2, 'old', 't')",
          [mid, cmid],
        );
      }
      await driver.execute("UPDATE id_counters SET last_id = 12 WHERE name = 'messages.mid'");
      expect(await migrate(driver)).toBe(SCHEMA_VERSION);
      expect(await migrate(driver)).toBe(SCHEMA_VERSION);
      const stored = await driver.query<{ mid: number; cmid: string | null }>(
        'SELECT mid, cmid FROM messages ORDER BY mid',
      );
      expect(stored.map((r) => [r.mid, r.cmid])).toEqual(rows);
      // Still one row per (sender, cmid); as many without a cmid as wanted.
      await expect(
        driver.execute(
          "INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at) VALUES (13, 1, 'c-1', 'one', 2, 'x', 't')",
        ),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
      await driver.execute(
        "INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at) VALUES (13, 1, NULL, 'one', 2, 'x', 't')",
      );
      await driver.execute("UPDATE id_counters SET last_id = 13 WHERE name = 'messages.mid'");
      const store = await openTestStore(db.url);
      try {
        const [again] = await store.messages.append([oneToOne(1, 2, 'old', 'c-2')]);
        expect(again).toEqual({ mid: 12, duplicate: true, deliveries: [] });
        const [fresh] = await store.messages.append([oneToOne(1, 2, 'new', 'c-3')]);
        expect(fresh).toMatchObject({ mid: 14, duplicate: false });
      } finally {
        await store.close();
      }
    } finally {
      await driver.close();
      await db.drop();
    }
  });

  it('refuses a database migrated by newer code', async () => {
    const db = await createTestDatabase(kind);
    const driver = await openTestDriver(db.url);
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
    try {
      const store = await openTestStore(db.url);
      await store.close();
      await expect(store.users.findById(1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(store.messages.append([])).resolves.toEqual([]); // nothing to store, no statement
      await expect(store.close()).resolves.toBeUndefined(); // closing twice is harmless
    } finally {
      await db.drop();
    }
  });
});

describe('opening stores', () => {
  it('creates the MySQL database when it is missing', async () => {
    const name = uniqueMysqlDatabaseName();
    try {
      const store = await openTestStore(testMysqlUrl(name));
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
      const store = await openTestStore(`sqlite:${file.path.replace(/chat\.db$/, 'nested/dir/chat.db')}`);
      expect(store.dialect).toBe('sqlite');
      expect(await store.users.create('first', 'pw')).toBe(1);
      await store.close();
    } finally {
      await file.cleanup();
    }
  });

  it('maps an unreachable MySQL server to UNAVAILABLE', async () => {
    const err = await openTestStore('mysql://root@127.0.0.1:1/nothing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
  });

  it('maps wrong MySQL credentials to UNAVAILABLE without leaking the password', async () => {
    const err = await openTestStore(
      `mysql://nobody:s3cret-pw@127.0.0.1:3306/${uniqueMysqlDatabaseName()}`,
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(String((err as Error).message)).not.toContain('s3cret-pw');
  });
});
