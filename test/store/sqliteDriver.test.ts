/**
 * SqliteDriver in both modes: on its worker thread (the default) and in-process (`thread: false`).
 * The shared store suites run in one mode per run (TEST_SQLITE_THREAD); this file covers both.
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlExecutor } from '../../src/app/store/SqlDriver.js';
import { killSqliteWorkerForTests, SqliteDriver } from '../../src/app/store/SqliteDriver.js';
import { createTestSqlitePath, type TestSqliteFile } from '../helpers/db.js';

/** Counts to `n` in SQLite: about 170 ms per million here, all of it inside one statement. */
function slowCount(n: number): string {
  return `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT count(*) AS n FROM c`;
}

const MODES = [
  { name: 'on a worker thread', thread: true },
  { name: 'in-process', thread: false },
] as const;

describe.each(MODES)('SqliteDriver $name', ({ thread }) => {
  let file: TestSqliteFile;
  let driver: SqliteDriver;
  beforeEach(async () => {
    file = createTestSqlitePath();
    driver = await SqliteDriver.open(file.path, { thread });
    await driver.execute('CREATE TABLE kv (k TEXT NOT NULL PRIMARY KEY, v INTEGER NOT NULL, b BLOB)');
  });
  afterEach(async () => {
    await driver.close();
    await file.cleanup();
  });

  const keys = async () => (await driver.query<{ k: string }>('SELECT k FROM kv ORDER BY k')).map((r) => r.k);

  it('maps errors alike, alone and in a transaction', async () => {
    await driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['a', 1]);
    const conflict = { code: 'CONFLICT', message: /UNIQUE constraint failed/ };
    await expect(driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['a', 2])).rejects.toMatchObject(
      conflict,
    );
    await expect(driver.query('SELECT nope FROM nowhere')).rejects.toMatchObject({
      code: 'INTERNAL',
      message: /^SQLite SQLITE_ERROR: no such table/,
    });
    // A bad binding (better-sqlite3 rejects booleans) is a bug, not a data condition.
    const badBinding = driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', [
      'c',
      true as unknown as number,
    ]);
    await expect(badBinding).rejects.toMatchObject({ code: 'INTERNAL', message: /^SQLite: / });
    await expect(driver.query('INSERT INTO kv (k, v) VALUES (?, ?)', ['d', 1])).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    await expect(
      driver.transaction(async (tx) => {
        await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['b', 1]);
        await tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['a', 3]);
      }),
    ).rejects.toMatchObject(conflict);
    expect(await keys()).toEqual(['a']);
    const err = await driver
      .execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['a', 4])
      .catch((e: unknown) => e);
    expect((err as Error & { cause: { code: string } }).cause.code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
  });

  it('returns BLOBs as Buffers and stores a lone surrogate as U+FFFD', async () => {
    const bytes = Buffer.from([0, 1, 254, 255]);
    await driver.execute('INSERT INTO kv (k, v, b) VALUES (?, ?, ?)', ['bin\uD800', 1, bytes]);
    await driver.transaction((tx) =>
      tx.execute('INSERT INTO kv (k, v, b) VALUES (?, ?, ?)', ['tx', 2, bytes]),
    );
    const rows = await driver.query<{ k: string; b: Buffer }>('SELECT k, b FROM kv ORDER BY v');
    expect(rows.map((r) => r.k)).toEqual(['bin\uFFFD', 'tx']);
    for (const r of rows) {
      expect(Buffer.isBuffer(r.b)).toBe(true);
      expect(r.b.equals(bytes)).toBe(true);
    }
    expect(await driver.query('SELECT k FROM kv WHERE k = ?', ['bin\uD800'])).toEqual([{ k: 'bin\uFFFD' }]);
  });

  it('runs lone statements queued behind a slow one in order, each failing on its own', async () => {
    // Threaded, these pile up behind the slow count and the worker commits them as a group; a
    // statement whose error aborts the group's transaction (OR ROLLBACK) makes it re-run them
    // one by one. Either way the outcome is that of separate statements.
    await driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['taken', 0]);
    const slow = driver.query<{ n: number }>(slowCount(300_000));
    const results = await Promise.allSettled([
      driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['g1', 1]),
      driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['taken', 1]), // CONFLICT, alone
      driver.query<{ n: number }>('SELECT count(*) AS n FROM kv'),
      driver.execute('UPDATE kv SET v = v + 10 WHERE k = ?', ['g1']),
      driver.execute('CREATE TABLE later (x INTEGER)'), // not grouped: runs in its turn
      driver.execute('INSERT INTO later (x) VALUES (?)', [1]),
      driver.execute('INSERT OR ROLLBACK INTO kv (k, v) VALUES (?, ?)', ['taken', 2]),
      driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['g2', 2]),
      driver.query<{ v: number }>('SELECT v FROM kv WHERE k = ?', ['g1']),
    ]);
    expect(await slow).toEqual([{ n: 300_000 }]);
    const outcome = results.map((r) =>
      r.status === 'fulfilled' ? r.value : (r.reason as { code: string }).code,
    );
    expect(outcome).toEqual([
      { affectedRows: 1, insertId: expect.any(Number) },
      'CONFLICT',
      [{ n: 2 }],
      { affectedRows: 1, insertId: expect.any(Number) },
      { affectedRows: 0, insertId: expect.any(Number) },
      { affectedRows: 1, insertId: 1 },
      'CONFLICT',
      { affectedRows: 1, insertId: expect.any(Number) },
      [{ v: 11 }],
    ]);
    expect(await keys()).toEqual(['g1', 'g2', 'taken']);
    expect(await driver.query('SELECT x FROM later')).toEqual([{ x: 1 }]);
  });

  it('fails a transaction whose BEGIN cannot take the write lock, then works again', async () => {
    const busy = await SqliteDriver.open(file.path, { thread, busyTimeoutMs: 50 });
    const holder = new Database(file.path); // another process, as far as SQLite can tell
    try {
      holder.exec('BEGIN IMMEDIATE');
      const unavailable = { code: 'UNAVAILABLE', message: /SQLITE_BUSY/ };
      // However fn reacts to its failing statements, the BEGIN error is what the caller gets.
      const attempts: ((tx: SqlExecutor) => Promise<unknown>)[] = [
        (tx) => tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['never', 1]),
        (tx) => tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['never', 1]).catch(() => 'swallowed'),
        async (tx) => {
          await tx.query('SELECT 1').catch(() => {});
          throw new Error('something else');
        },
        async () => 'no statements',
      ];
      for (const fn of attempts) await expect(busy.transaction(fn)).rejects.toMatchObject(unavailable);
      await expect(busy.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['lone', 1])).rejects.toMatchObject(
        unavailable,
      );
      holder.exec('COMMIT');
      await busy.transaction((tx) => tx.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['after', 1]));
      await busy.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['lone', 1]);
      expect(await keys()).toEqual(['after', 'lone']);
    } finally {
      holder.close();
      await busy.close();
    }
  });

  it('closes after the requests issued before close, and refuses those issued after', async () => {
    const order: string[] = [];
    const track = <T>(name: string, p: Promise<T>) =>
      p.then(
        (v) => {
          order.push(name);
          return v;
        },
        (err: unknown) => {
          order.push(`${name}:${(err as { code?: string }).code}`);
          throw err;
        },
      );
    const lone = Array.from({ length: 20 }, (_, i) =>
      track(`lone${i}`, driver.execute('INSERT INTO kv (k, v) VALUES (?, ?)', [`k${i}`, i])),
    );
    const tx = track(
      'tx',
      driver.transaction(async (t) => {
        await new Promise((r) => setTimeout(r, 30));
        await t.execute('INSERT INTO kv (k, v) VALUES (?, ?)', ['tx', 1]);
        return (await t.query<{ n: number }>('SELECT count(*) AS n FROM kv'))[0]!.n;
      }),
    );
    const queued = track('queued', driver.query<{ n: number }>('SELECT count(*) AS n FROM kv'));
    const closing = track('close', driver.close());
    const late = track('late', driver.query('SELECT 1'));
    const lateTx = track(
      'lateTx',
      driver.transaction(async () => {}),
    );

    await Promise.all(lone);
    expect(await tx).toBe(21);
    expect(await queued).toEqual([{ n: 21 }]);
    await closing;
    await expect(late).rejects.toMatchObject({ code: 'UNAVAILABLE', message: 'store is closed' });
    await expect(lateTx).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const before = [...lone.map((_, i) => `lone${i}`), 'tx', 'queued'];
    // All settled before close did (the lone ones in order; the query saw the commit, see above).
    expect([...order.slice(0, before.length)].sort()).toEqual([...before].sort());
    expect(order.filter((n) => n.startsWith('lone'))).toEqual(before.slice(0, lone.length));
    expect(order.indexOf('close')).toBeGreaterThanOrEqual(before.length);
    expect(driver.closed).toBe(true);
    await expect(driver.close()).resolves.toBeUndefined();

    driver = await SqliteDriver.open(file.path, { thread }); // for afterEach; the data is there
    expect(await driver.query('SELECT count(*) AS n FROM kv')).toEqual([{ n: 21 }]);
  });
});

describe('SqliteDriver on its worker thread', () => {
  let file: TestSqliteFile;
  beforeEach(() => {
    file = createTestSqlitePath();
  });
  afterEach(async () => {
    await file.cleanup();
  });

  /** How often a 5 ms interval fires while `work` is pending, and how long it took. */
  async function ticksDuring(work: () => Promise<unknown>): Promise<{ ticks: number; ms: number }> {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    try {
      await work();
    } finally {
      clearInterval(timer);
    }
    return { ticks, ms: performance.now() - started };
  }

  it('keeps the event loop running while a slow statement runs', async () => {
    const threaded = await SqliteDriver.open(file.path);
    const inline = await SqliteDriver.open(file.path, { thread: false });
    try {
      // Calibrate: a count that holds the thread for at least 100 ms on this machine today (a
      // fast machine needs more, a loaded one less), so the intervals below have time to fire.
      let count = 500_000;
      while (count < 64_000_000) {
        const started = performance.now();
        await inline.query(slowCount(count));
        if (performance.now() - started >= 100) break;
        count *= 2;
      }
      const onThread = await ticksDuring(() => threaded.query(slowCount(count)));
      const inProcess = await ticksDuring(() => inline.query(slowCount(count)));
      expect(onThread.ticks).toBeGreaterThanOrEqual(Math.min(5, Math.floor(onThread.ms / 20)));
      // The control: in-process the statement holds the thread, so no timer can fire.
      expect(inProcess.ms).toBeGreaterThanOrEqual(50);
      expect(inProcess.ticks).toBe(0);
      // A transaction's statements and commit run there too.
      const inTx = await ticksDuring(() => threaded.transaction((tx) => tx.query(slowCount(count))));
      expect(inTx.ticks).toBeGreaterThanOrEqual(Math.min(5, Math.floor(inTx.ms / 20)));
    } finally {
      await threaded.close();
      await inline.close();
    }
  });

  it('fails every pending request UNAVAILABLE when the worker dies, and reports closed', async () => {
    const driver = await SqliteDriver.open(file.path);
    const sameFile = await SqliteDriver.open(file.path); // shares the file's worker
    try {
      await driver.execute('CREATE TABLE t (x INTEGER)');
      await driver.execute('INSERT INTO t (x) VALUES (1)');

      let resumeTx!: () => void;
      const txWaiting = new Promise<void>((r) => {
        resumeTx = r;
      });
      const tx = driver.transaction(async (t) => {
        await t.execute('INSERT INTO t (x) VALUES (2)');
        await txWaiting;
        return t.query('SELECT count(*) AS n FROM t');
      });
      await new Promise((r) => setTimeout(r, 20));
      const pending = [
        driver.query(slowCount(5_000_000)), // queued behind the open transaction
        sameFile.query('SELECT count(*) AS n FROM t'),
        sameFile.transaction((t) => t.query('SELECT 1')),
      ];
      await killSqliteWorkerForTests(driver);
      resumeTx();
      for (const p of [tx, ...pending]) {
        await expect(p).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      }
      expect(driver.closed).toBe(true);
      expect(sameFile.closed).toBe(true);
      await expect(driver.query('SELECT 1')).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        message: /store is closed: SQLite worker thread exited/,
      });
      await expect(driver.transaction(async () => {})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(driver.close()).resolves.toBeUndefined();
      await expect(sameFile.close()).resolves.toBeUndefined();

      // A new driver on the file gets a new worker; the open transaction was never committed.
      const reopened = await SqliteDriver.open(file.path);
      try {
        expect(await reopened.query('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }]);
        // The dead connection's write lock went with it.
        await reopened.transaction((t) => t.execute('INSERT INTO t (x) VALUES (3)'));
        expect(await reopened.query('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }, { x: 3 }]);
      } finally {
        await reopened.close();
      }
    } finally {
      await driver.close();
      await sameFile.close();
    }
  });

  it('reports a database that cannot be opened as UNAVAILABLE', async () => {
    const dir = file.path.replace(/chat\.db$/, '');
    // A directory is not a database file.
    await expect(SqliteDriver.open(dir)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /^cannot open SQLite database: /,
    });
    // Without waiting for the open, statements fail the same way.
    const driver = new SqliteDriver(dir);
    await expect(driver.query('SELECT 1')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /^cannot open SQLite database: /,
    });
    await expect(driver.ready).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await driver.close();
  });
});
