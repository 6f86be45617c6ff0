/**
 * How MessageModel runs an append, seen through the statements it sends to the real store
 * (RecordingDriver): a lone writer reads once, then predicts (one transaction, no reads); a guess
 * made wrong by another writer, a stored cmid or a failed statement is run again reading and
 * stores the right rows; after a miss the writer reads for a while; a failed append teaches
 * nothing; an unexplained unique key conflict is retried with the mid counter moved past it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MessageModel } from '../../src/app/model/MessageModel.js';
import type { NewMessage } from '../../src/app/model/types.js';
import { createUsers, oneToOne, openTestDriver, STORE_KINDS, useTestStore } from './harness.js';
import { RecordingDriver, readFirst } from './recordingDriver.js';

/** Reads after a wrong guess before predicting again (AppendPrediction). */
const APPENDS_AFTER_MISS = 64;

describe.each(STORE_KINDS)('MessageModel append runs on %s', (kind) => {
  const t = useTestStore(kind);
  let driver: RecordingDriver;
  let model: MessageModel;

  beforeEach(async () => {
    driver = new RecordingDriver(await openTestDriver(t.url));
    model = new MessageModel(driver);
  });
  afterEach(() => driver.close());

  /** How each transaction from `from` on ran: read first, or predicted. */
  const runsFrom = (from: number): string[] =>
    driver.transactions.slice(from).map((tx) => (readFirst(tx) ? 'read' : 'predicted'));
  /** Appends `batch` and returns its results and how its transactions ran. */
  const append = async (batch: NewMessage[]) => {
    const from = driver.transactions.length;
    const results = await model.append(batch);
    return { results, runs: runsFrom(from) };
  };
  const midCounter = async (): Promise<number> => {
    const [row] = await driver.query<{ lastId: number }>(
      "SELECT last_id AS lastId FROM id_counters WHERE name = 'messages.mid'",
    );
    return Number(row?.lastId);
  };
  const inbox = async (user: number) =>
    (await t.store.messages.readInbox(user, 0, 1000)).map((e) => [e.seq, e.mid, e.body]);

  it('an empty batch, given or taken, sends nothing to the store', async () => {
    expect(await model.append([])).toEqual([]);
    expect(driver.transactions).toEqual([]);
    expect(await model.append(() => [])).toEqual([]);
    // A taken batch is taken inside a transaction, which then has nothing to send.
    expect(driver.transactions).toEqual([[]]);
  });

  it('an append on a closed store fails UNAVAILABLE', async () => {
    const [a, b] = (await createUsers(t.store, 2, 'closed')) as [number, number];
    await driver.close();
    const error = await model.append([oneToOne(a, b, 'late')]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAVAILABLE' });
    expect(await t.store.messages.cursor(b)).toEqual({ lastSeq: 0, ackedSeq: 0 });
  });

  it('a lone writer reads on its first append, then predicts in one transaction; a recipient it has not seen is read', async () => {
    const [a, b, c] = (await createUsers(t.store, 3, 'lone')) as [number, number, number];
    const first = await append([oneToOne(a, b, 'one', 'lone-1')]);
    expect(first.runs).toEqual(['read']);
    const m = first.results[0]!.mid;

    const second = await append([oneToOne(a, b, 'two', 'lone-2'), oneToOne(a, b, 'three')]);
    expect(second.runs).toEqual(['predicted']);
    expect(second.results).toEqual([
      { mid: m + 1, duplicate: false, deliveries: [{ userId: b, seq: 2 }] },
      { mid: m + 2, duplicate: false, deliveries: [{ userId: b, seq: 3 }] },
    ]);
    // The counter holds the last mid handed out, so another writer continues after it.
    expect(await midCounter()).toBe(m + 2);

    // A repeat inside a predicted batch names the batch's first copy and delivers nothing.
    const repeat = await append([oneToOne(a, b, 'four', 'lone-4'), oneToOne(a, b, 'four', 'lone-4')]);
    expect(repeat.runs).toEqual(['predicted']);
    expect(repeat.results).toEqual([
      { mid: m + 3, duplicate: false, deliveries: [{ userId: b, seq: 4 }] },
      { mid: m + 3, duplicate: true, deliveries: [] },
    ]);

    const toC = await append([{ ...oneToOne(a, c, 'to c and b'), recipients: [c, b] }]);
    expect(toC.runs).toEqual(['read']);
    expect(toC.results[0]!.deliveries).toEqual([
      { userId: c, seq: 1 },
      { userId: b, seq: 5 },
    ]);
    const again = await append([oneToOne(a, c, 'c again')]);
    expect(again.runs).toEqual(['predicted']);
    expect(again.results).toEqual([{ mid: m + 5, duplicate: false, deliveries: [{ userId: c, seq: 2 }] }]);

    expect(await midCounter()).toBe(m + 5);
    expect(await inbox(b)).toEqual([
      [1, m, 'one'],
      [2, m + 1, 'two'],
      [3, m + 2, 'three'],
      [4, m + 3, 'four'],
      [5, m + 4, 'to c and b'],
    ]);
    expect(await inbox(c)).toEqual([
      [1, m + 4, 'to c and b'],
      [2, m + 5, 'c again'],
    ]);
    expect(await t.store.messages.cursor(b)).toEqual({ lastSeq: 5, ackedSeq: 0 });
    expect(await t.store.messages.cursor(c)).toEqual({ lastSeq: 2, ackedSeq: 0 });
  });

  it('a guess another writer made wrong is run again reading; the writer then reads for a while', async () => {
    const [a, b] = (await createUsers(t.store, 2, 'miss')) as [number, number];
    await append([oneToOne(a, b, 'mine 1')]);
    expect((await append([oneToOne(a, b, 'mine 2')])).runs).toEqual(['predicted']);
    const [theirs] = await t.store.messages.append([oneToOne(a, b, 'theirs')]);

    const missed = await append([oneToOne(a, b, 'mine 3')]);
    expect(missed.runs).toEqual(['predicted', 'read']);
    expect(missed.results).toEqual([
      { mid: theirs!.mid + 1, duplicate: false, deliveries: [{ userId: b, seq: 4 }] },
    ]);
    // Another writer is probably at work: the next appends read first, then prediction resumes.
    const runs: string[] = [];
    for (let i = 0; i <= APPENDS_AFTER_MISS; i++)
      runs.push(...(await append([oneToOne(a, b, `r${i}`)])).runs);
    expect(runs).toEqual([...Array<string>(APPENDS_AFTER_MISS).fill('read'), 'predicted']);
    expect((await inbox(b)).map(([seq]) => seq)).toEqual(Array.from({ length: 69 }, (_, i) => i + 1));
    expect(await midCounter()).toBe(theirs!.mid + 1 + APPENDS_AFTER_MISS + 1);
  });

  it('a stored cmid in a predicted append fails its unique key: run again reading, a duplicate, mids stay dense', async () => {
    const [a, b] = (await createUsers(t.store, 2, 'sdup')) as [number, number];
    const [stored] = (await append([oneToOne(a, b, 'hello', 'sdup-1')])).results;
    await append([oneToOne(a, b, 'warm')]);
    const again = await append([oneToOne(a, b, 'hello', 'sdup-1'), oneToOne(a, b, 'next')]);
    expect(again.runs).toEqual(['predicted', 'read']);
    expect(again.results).toEqual([
      { mid: stored!.mid, duplicate: true, deliveries: [] },
      { mid: stored!.mid + 2, duplicate: false, deliveries: [{ userId: b, seq: 3 }] },
    ]);
    expect(await midCounter()).toBe(stored!.mid + 2);
    expect(await inbox(b)).toEqual([
      [1, stored!.mid, 'hello'],
      [2, stored!.mid + 1, 'warm'],
      [3, stored!.mid + 2, 'next'],
    ]);
  });

  it('a predicted append whose statement fails is run again reading and stored once', async () => {
    const [a, b] = (await createUsers(t.store, 2, 'pfail')) as [number, number];
    const [first] = (await append([oneToOne(a, b, 'one')])).results;
    let failed = 0;
    driver.failWhen = (s) => (s.sql.startsWith('INSERT INTO inbox ') && failed++ === 0 ? 'error' : null);
    const second = await append([oneToOne(a, b, 'two', 'pfail-2')]);
    expect(failed).toBe(2); // the predicted run's insert failed, the reading run's did not
    expect(second.runs).toEqual(['predicted', 'read']);
    expect(second.results).toEqual([
      { mid: first!.mid + 1, duplicate: false, deliveries: [{ userId: b, seq: 2 }] },
    ]);
    expect(await inbox(b)).toEqual([
      [1, first!.mid, 'one'],
      [2, first!.mid + 1, 'two'],
    ]);
    expect(await midCounter()).toBe(first!.mid + 1);
  });

  it('a reading append that fails is reported at once, stores nothing and teaches nothing', async () => {
    const [a, b, c] = (await createUsers(t.store, 3, 'rfail')) as [number, number, number];
    const [first] = (await append([oneToOne(a, b, 'one')])).results;
    driver.failWhen = (s) => (s.sql.startsWith('INSERT INTO inbox ') ? 'error' : null);
    const from = driver.transactions.length;
    // c is new to the writer, so this append reads; its failure is not a conflict: no retry.
    await expect(model.append([{ ...oneToOne(a, c, 'lost'), recipients: [c, b] }])).rejects.toThrow();
    expect(runsFrom(from)).toEqual(['read']);
    driver.failWhen = null;

    // What the failed append would have stored is not assumed: the next append reads again.
    const next = await append([{ ...oneToOne(a, c, 'kept'), recipients: [c, b] }]);
    expect(next.runs).toEqual(['read']);
    expect(next.results).toEqual([
      {
        mid: first!.mid + 1,
        duplicate: false,
        deliveries: [
          { userId: c, seq: 1 },
          { userId: b, seq: 2 },
        ],
      },
    ]);
    expect(await inbox(c)).toEqual([[1, first!.mid + 1, 'kept']]);
  });

  it('moves the counter past a mid taken without it (code from before the counter) and goes on', async () => {
    const [a, b] = (await createUsers(t.store, 2, 'resync')) as [number, number];
    const [first] = (await append([oneToOne(a, b, 'one')])).results;
    // Old code takes the next mid from AUTO_INCREMENT and leaves the counter where it was.
    await driver.execute(
      "INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at) VALUES (?, ?, NULL, 'one', ?, 'old', '2024-05-01 12:00:00')",
      [first!.mid + 1, a, b],
    );
    const fresh = new MessageModel(driver); // a writer that predicts nothing yet
    const from = driver.transactions.length;
    const results = await fresh.append([oneToOne(a, b, 'two'), oneToOne(a, b, 'three')]);
    expect(runsFrom(from)).toEqual(['read', 'read']);
    expect(results.map((r) => [r.mid, r.deliveries])).toEqual([
      [first!.mid + 2, [{ userId: b, seq: 2 }]],
      [first!.mid + 3, [{ userId: b, seq: 3 }]],
    ]);
    expect(await midCounter()).toBe(first!.mid + 3);
  });

  it('gives up after 3 runs that hit an unexplained unique key conflict: UNAVAILABLE, nothing stored', async () => {
    const [a, b] = (await createUsers(t.store, 2, 'give')) as [number, number];
    driver.failWhen = (s) => (s.sql.startsWith('INSERT INTO inbox ') ? 'conflict' : null);
    const from = driver.transactions.length;
    const error = await model.append([oneToOne(a, b, 'never')]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', message: 'message store is contended, retry' });
    expect((error as Error).cause).toMatchObject({ code: 'CONFLICT' }); // the last run's failure
    expect(runsFrom(from)).toEqual(['read', 'read', 'read']);
    expect(await t.store.messages.cursor(b)).toEqual({ lastSeq: 0, ackedSeq: 0 });
    expect(await inbox(b)).toEqual([]);
  });
});
