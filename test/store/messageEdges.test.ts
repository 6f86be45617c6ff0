/**
 * MessageModel at its edges, on both stores: empty batches, limits and acks that move nothing,
 * error texts, and the order of ids.
 */
import { describe, expect, it } from 'vitest';
import { StoreError } from '../../src/app/store/errors.js';
import { createUsers, oneToOne, openTestStore, STORE_KINDS, useTestStore } from './harness.js';

describe.each(STORE_KINDS)('MessageModel edges on %s', (kind) => {
  const t = useTestStore(kind);

  it('an empty batch (given or taken) stores nothing and calls onOrdered only when a transaction ran', async () => {
    const [a, b] = await createUsers(t.store, 2, 'edge');
    expect(await t.store.messages.append([])).toEqual([]);
    let taken = 0;
    let ordered = 0;
    expect(
      await t.store.messages.append(
        () => {
          taken++;
          return [];
        },
        { onOrdered: () => ordered++ },
      ),
    ).toEqual([]);
    expect(taken).toBe(1);
    expect(await t.store.messages.cursor(b!)).toEqual({ lastSeq: 0, ackedSeq: 0 });
    // A batch function is called once, and its rows are stored.
    const results = await t.store.messages.append(
      () => {
        taken++;
        return [oneToOne(a!, b!, 'taken')];
      },
      { onOrdered: () => ordered++ },
    );
    expect(taken).toBe(2);
    expect(ordered).toBeGreaterThanOrEqual(1);
    expect(results).toMatchObject([{ duplicate: false, deliveries: [{ userId: b, seq: 1 }] }]);
  });

  it('readInbox with a limit below 1 (or a fraction of one) returns nothing; a fractional limit is floored', async () => {
    const [a, b] = await createUsers(t.store, 2, 'lim');
    await t.store.messages.append([1, 2, 3].map((i) => oneToOne(a!, b!, `m${i}`)));
    expect(await t.store.messages.readInbox(b!, 0, 0)).toEqual([]);
    expect(await t.store.messages.readInbox(b!, 0, -5)).toEqual([]);
    expect(await t.store.messages.readInbox(b!, 0, 0.5)).toEqual([]);
    expect((await t.store.messages.readInbox(b!, 0, 2.9)).map((e) => e.seq)).toEqual([1, 2]);
    expect((await t.store.messages.readInbox(b!, 1, 1)).map((e) => e.seq)).toEqual([2]);
  });

  it('ackMany ignores seqs that are not positive integers and moves the others', async () => {
    const [a, b, c, d] = await createUsers(t.store, 4, 'ackm');
    for (const u of [b!, c!, d!])
      await t.store.messages.append([1, 2, 3].map((i) => oneToOne(a!, u, `m${i}`)));
    await t.store.messages.ack(d!, 2);
    await t.store.messages.ackMany(
      new Map([
        [b!, 2.5],
        [c!, 0],
        [d!, -1],
      ]),
    );
    expect((await t.store.messages.cursor(b!)).ackedSeq).toBe(0);
    expect((await t.store.messages.cursor(c!)).ackedSeq).toBe(0);
    expect((await t.store.messages.cursor(d!)).ackedSeq).toBe(2);
    await t.store.messages.ackMany(
      new Map([
        [b!, 1],
        [c!, 3],
        [d!, 1],
      ]),
    );
    expect((await t.store.messages.cursor(b!)).ackedSeq).toBe(1);
    expect((await t.store.messages.cursor(c!)).ackedSeq).toBe(3);
    expect((await t.store.messages.cursor(d!)).ackedSeq).toBe(2); // never backwards
  });

  it('names the missing user and the unknown recipients in its errors', async () => {
    const [a] = await createUsers(t.store, 1, 'err');
    const missing = await t.store.messages.cursor(987_654_321).then(
      () => null,
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(StoreError);
    expect(missing).toMatchObject({ code: 'NOT_FOUND', message: 'no such user' });
    const unknown = await t.store.messages.append([oneToOne(a!, 987_654_322, 'x')]).then(
      () => null,
      (e: unknown) => e,
    );
    expect(unknown).toMatchObject({ code: 'NOT_FOUND', message: 'no such recipient: 987654322' });
  });

  it('gives a group message to its recipients in ascending seq order per user, mids in batch order', async () => {
    const users = await createUsers(t.store, 4, 'ord');
    const [a, ...others] = users as [number, ...number[]];
    const batch = [
      { ...oneToOne(a, others[2]!, 'first'), recipients: [others[2]!, others[0]!, others[1]!] },
      { ...oneToOne(a, others[1]!, 'second'), recipients: [others[1]!] },
    ];
    const results = await t.store.messages.append(batch);
    expect(results[1]!.mid).toBe(results[0]!.mid + 1);
    expect(results[0]!.deliveries).toEqual([
      { userId: others[2], seq: 1 },
      { userId: others[0], seq: 1 },
      { userId: others[1], seq: 1 },
    ]);
    expect(results[1]!.deliveries).toEqual([{ userId: others[1], seq: 2 }]);
  });

  it('lists at most 10 unknown recipients in the NOT_FOUND error', async () => {
    const [a] = await createUsers(t.store, 1, 'many');
    const unknown = Array.from({ length: 12 }, (_, i) => 987_650_000 + i);
    const error = await t.store.messages
      .append([{ ...oneToOne(a!, unknown[0]!, 'x'), recipients: unknown }])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'NOT_FOUND',
      message: `no such recipient: ${unknown.slice(0, 10).join(', ')}`,
    });
  });

  it('never takes a message without a cmid for a stored one whose cmid is the text "null"', async () => {
    const [a, b] = await createUsers(t.store, 2, 'nullcmid');
    const [named] = await t.store.messages.append([oneToOne(a!, b!, 'named', 'null')]);
    // A store that predicts nothing reads the stored cmids of the batch.
    const reader = await openTestStore(t.url);
    try {
      // The retry first: the lookup for the message without a cmid must not take its place.
      const results = await reader.messages.append([
        oneToOne(a!, b!, 'named', 'null'),
        oneToOne(a!, b!, 'plain'),
      ]);
      expect(results).toEqual([
        { mid: named!.mid, duplicate: true, deliveries: [] },
        { mid: named!.mid + 1, duplicate: false, deliveries: [{ userId: b, seq: 2 }] },
      ]);
    } finally {
      await reader.close();
    }
    expect((await t.store.messages.readInbox(b!, 0, 10)).map((e) => e.body)).toEqual(['named', 'plain']);
  });

  it('recognises a retried cmid and body made of a lone surrogate only', async () => {
    const [a, b] = await createUsers(t.store, 2, 'lone');
    const odd = JSON.parse('"\\udc00"') as string;
    const [first] = await t.store.messages.append([oneToOne(a!, b!, odd, odd)]);
    const reader = await openTestStore(t.url);
    try {
      const [again] = await reader.messages.append([oneToOne(a!, b!, odd, odd)]);
      expect(again).toEqual({ mid: first!.mid, duplicate: true, deliveries: [] });
    } finally {
      await reader.close();
    }
    expect((await t.store.messages.readInbox(b!, 0, 10)).map((e) => e.body)).toEqual(['\uFFFD']);
  });
});
