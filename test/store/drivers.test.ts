import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlDriver } from '../../src/app/store/SqlDriver.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { openTestDriver, STORE_KINDS } from './harness.js';

describe.each(STORE_KINDS)('SqlDriver on %s', (kind) => {
  let db: TestDatabase;
  let driver: SqlDriver;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    driver = await openTestDriver(db.url);
    await driver.execute('CREATE TABLE kv (k VARCHAR(64) NOT NULL PRIMARY KEY, v INT NOT NULL)');
  });
  afterAll(async () => {
    await driver.close();
    await db.drop();
  });

  async function value(k: string): Promise<number | undefined> {
    const [row] = await driver.query<{ v: number }>('SELECT v FROM kv WHERE k = ?', [k]);
    return row?.v;
  }

  it('binds parameters, never splices them', async () => {
    const k = "x'); DROP TABLE kv; --";
    expect(await driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', [k, 1])).toMatchObject({
      affectedRows: 1,
    });
    expect(await value(k)).toBe(1);
    await expect(driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', [k, 2])).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await driver.transaction(async (tx) => {
      await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['kept', 1]);
    });
    const boom = new Error('boom');
    await expect(
      driver.transaction(async (tx) => {
        await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['dropped', 1]);
        await tx.execute('UPDATE kv SET v = 5 WHERE k = ?', ['kept']);
        throw boom;
      }),
    ).rejects.toBe(boom); // the callback's own error comes back unwrapped
    expect(await value('kept')).toBe(1);
    expect(await value('dropped')).toBeUndefined();
  });

  it('commits only if every statement sent succeeded, awaited or not', async () => {
    await driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['taken', 1]);
    // Not awaited: the failure still reaches the commit, which rolls back and reports it.
    await expect(
      driver.transaction(async (tx) => {
        void tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['sent-1', 1]).catch(() => {});
        void tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['taken', 2]).catch(() => {});
        void tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['sent-2', 1]).catch(() => {});
        return 'done';
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    // Caught by the callback: still a failed transaction.
    await expect(
      driver.transaction(async (tx) => {
        await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['sent-3', 1]);
        await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['taken', 3]).catch(() => {});
        await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['sent-4', 1]).catch(() => {});
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    for (const k of ['sent-1', 'sent-2', 'sent-3', 'sent-4']) expect(await value(k)).toBeUndefined();
    expect(await value('taken')).toBe(1);
    // The driver is fine afterwards.
    await driver.transaction(async (tx) => {
      void tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['after', 1]);
    });
    expect(await value('after')).toBe(1);
  });

  it('keeps every value exact in statements sent together (MySQL: one packet, escaped by mysql2)', async () => {
    await driver.execute('CREATE TABLE bin (k VARCHAR(64) NOT NULL PRIMARY KEY, s TEXT, b BLOB, n BIGINT)');
    const values: [string, string | null, globalThis.Buffer | null, number | null][] = [
      [
        'quotes',
        `it's "quoted" \\ back\\slash \n; DROP TABLE kv; --`,
        globalThis.Buffer.from([0, 39, 92, 34, 255]),
        1,
      ],
      ['unicode', 'ünïcödé 中文 😀 \u0000 nul', null, -(2 ** 53 - 1)],
      ['question', 'a ? b ?? c', globalThis.Buffer.alloc(0), null],
      ['nulls', null, null, 2 ** 53 - 1],
    ];
    const results = await driver.transaction(async (tx) => {
      const sent = values.map((v) => tx.execute('INSERT INTO bin (k, s, b, n) VALUES (?, ?, ?, ?)', v));
      const read = tx.query<{ k: string }>('SELECT k FROM bin ORDER BY k');
      return Promise.all([...sent, read]);
    });
    expect(results.slice(0, 4).map((r) => (r as { affectedRows: number }).affectedRows)).toEqual([
      1, 1, 1, 1,
    ]);
    expect((results[4] as { k: string }[]).map((r) => r.k)).toEqual([
      'nulls',
      'question',
      'quotes',
      'unicode',
    ]);
    const rows = await driver.query<{
      k: string;
      s: string | null;
      b: globalThis.Buffer | null;
      n: number | null;
    }>('SELECT k, s, b, n FROM bin ORDER BY k');
    const byKey = new Map(rows.map((r) => [r.k, r]));
    for (const [k, str, bin, n] of values) {
      const row = byKey.get(k)!;
      expect(row.s).toBe(str);
      expect(row.b === null ? null : globalThis.Buffer.from(row.b)).toEqual(bin);
      expect(row.n === null ? null : Number(row.n)).toBe(n);
    }
  });

  it('still lets a failing lone statement fail alone', async () => {
    const results = await Promise.allSettled([
      driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['lone-1', 1]),
      driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['lone-1', 2]),
      driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['lone-2', 1]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await value('lone-1')).toBe(1);
    expect(await value('lone-2')).toBe(1);
  });

  it('keeps other callers out of an open transaction', async () => {
    let outside: Promise<unknown> | undefined;
    const tx = driver.transaction(async (t) => {
      await t.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['inside', 1]);
      outside = driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['outside', 1]);
      await new Promise((r) => setTimeout(r, 50));
      // SQLite: the outside write waits for the transaction; MySQL: it runs on another connection
      // but outside this transaction. Either way the rollback below must not take it along.
      throw new Error('roll back');
    });
    await expect(tx).rejects.toThrow('roll back');
    // The outside write succeeds on its own (however long its commit and fsync take).
    await expect(outside).resolves.toMatchObject({ affectedRows: 1 });
    expect(await value('inside')).toBeUndefined();
    expect(await value('outside')).toBe(1);
  });

  it('refuses a transaction executor used after the transaction ended', async () => {
    let leaked: { query: SqlDriver['query'] } | undefined;
    await driver.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(Promise.resolve().then(() => leaked!.query('SELECT 1'))).rejects.toMatchObject({
      code: 'INTERNAL',
    });
  });

  it('reports a bad statement as INTERNAL', async () => {
    await expect(driver.query('SELECT nope FROM nowhere')).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('MysqlDriver specifics', () => {
  let db: TestDatabase;
  let driver: SqlDriver;
  beforeAll(async () => {
    db = await createTestDatabase('mysql');
    driver = await openTestDriver(db.url);
    await driver.execute('CREATE TABLE counters (id INT NOT NULL PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
    await driver.execute('INSERT INTO counters (id, v) VALUES (1, 0), (2, 0)');
  });
  afterAll(async () => {
    await driver.close();
    await db.drop();
  });

  it('rejects over-long values instead of truncating them (strict mode on every session)', async () => {
    await driver.execute('CREATE TABLE short_text (s VARCHAR(3) NOT NULL)');
    await expect(driver.execute('INSERT INTO short_text (s) VALUES (?)', ['abcd'])).rejects.toMatchObject({
      code: 'INTERNAL',
      message: /too long/i,
    });
    expect(await driver.query('SELECT s FROM short_text')).toEqual([]);
  });

  it('re-runs a transaction chosen as a deadlock victim, so both succeed exactly once', async () => {
    let arrived = 0;
    let release!: () => void;
    const bothHoldOneLock = new Promise<void>((r) => {
      release = r;
    });
    let runs = 0;
    const crossed = (first: number, second: number) =>
      driver.transaction(async (tx) => {
        runs++;
        await tx.execute('UPDATE counters SET v = v + 1 WHERE id = ?', [first]);
        if (++arrived === 2) release();
        await bothHoldOneLock; // now each holds the row the other wants next
        await tx.execute('UPDATE counters SET v = v + 1 WHERE id = ?', [second]);
      });
    await Promise.all([crossed(1, 2), crossed(2, 1)]);
    expect(runs).toBe(3); // the victim ran twice
    const rows = await driver.query<{ id: number; v: number }>('SELECT id, v FROM counters ORDER BY id');
    expect(rows.map((r) => r.v)).toEqual([2, 2]); // the victim's first run left nothing behind
  });
});
