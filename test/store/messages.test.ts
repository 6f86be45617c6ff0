import { describe, expect, it } from 'vitest';
import type { NewMessage } from '../../src/app/model/types.js';
import { createUsers, oneToOne, STORE_KINDS, uniqueName, useTestStore } from './harness.js';

describe.each(STORE_KINDS)('MessageModel on %s', (kind) => {
  const t = useTestStore(kind);

  it('gives every recipient gap-free seqs in batch order over many batches', async () => {
    const users = await createUsers(t.store, 8, 'seq');
    const expected = new Map<number, number[]>(users.map((u) => [u, []])); // user → mids in order
    for (let b = 0; b < 15; b++) {
      const batch: NewMessage[] = [];
      for (let i = 0; i < 20; i++) {
        const sender = users[(b + i) % users.length]!;
        const others = users.filter((u) => u !== sender);
        // A mix: one-to-one, and "group" fan-out to a varying subset.
        const recipients =
          i % 3 === 0 ? others.filter((_, k) => (k + b) % 2 === 0) : [others[i % others.length]!];
        batch.push({ ...oneToOne(sender, recipients[0]!, `b${b}m${i}`, `c${b}-${i}`), recipients });
      }
      const results = await t.store.messages.append(batch);
      expect(results).toHaveLength(batch.length);
      results.forEach((r, i) => {
        expect(r.duplicate).toBe(false);
        expect(r.deliveries.map((d) => d.userId)).toEqual(batch[i]!.recipients);
        for (const d of r.deliveries) {
          const list = expected.get(d.userId)!;
          list.push(r.mid);
          expect(d.seq).toBe(list.length);
        }
      });
    }
    for (const u of users) {
      const mids = expected.get(u)!;
      const inbox = await t.store.messages.readInbox(u, 0, 10_000);
      expect(inbox.map((e) => e.seq)).toEqual(mids.map((_, i) => i + 1));
      expect(inbox.map((e) => e.mid)).toEqual(mids);
      expect(await t.store.messages.cursor(u)).toEqual({ lastSeq: mids.length, ackedSeq: 0 });
    }
  });

  it('returns full entries from readInbox after a seq, with a limit', async () => {
    const [a, b] = await createUsers(t.store, 2, 'read');
    const aName = (await t.store.users.findById(a!))!.name;
    await t.store.messages.append([1, 2, 3, 4, 5].map((i) => oneToOne(a!, b!, `msg ${i}`)));
    const tail = await t.store.messages.readInbox(b!, 2, 2);
    expect(tail).toEqual([
      expect.objectContaining({
        seq: 3,
        sender: a,
        senderName: aName,
        kind: 'one',
        target: b,
        body: 'msg 3',
      }),
      expect.objectContaining({ seq: 4, body: 'msg 4', time: '2024-05-01 12:00:00' }),
    ]);
    expect(await t.store.messages.readInbox(b!, 5, 10)).toEqual([]);
    expect(await t.store.messages.readInbox(b!, 0, 0)).toEqual([]);
    expect(await t.store.messages.readInbox(a!, 0, 10)).toEqual([]); // the sender gets no copy
  });

  it('stores a group message once and delivers it to every listed member', async () => {
    const [owner, m1, m2] = await createUsers(t.store, 3, 'gm');
    const gid = await t.store.groups.create(owner!, uniqueName('room'), '');
    await t.store.groups.join(gid, m1!);
    await t.store.groups.join(gid, m2!);
    const recipients = (await t.store.groups.memberIds(gid)).filter((u) => u !== m1);
    const [r] = await t.store.messages.append([
      {
        sender: m1!,
        cmid: 'g1',
        kind: 'group',
        target: gid,
        body: 'hello all',
        time: '2024-01-02 03:04:05',
        recipients,
      },
    ]);
    expect(r?.deliveries).toEqual([
      { userId: owner, seq: 1 },
      { userId: m2, seq: 1 },
    ]);
    const [entry] = await t.store.messages.readInbox(m2!, 0, 10);
    expect(entry).toMatchObject({ mid: r?.mid, kind: 'group', target: gid, sender: m1, body: 'hello all' });
  });

  it('de-duplicates (sender, cmid) within a batch and across batches', async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'dup');
    const first = await t.store.messages.append([
      oneToOne(a!, b!, 'one', 'x'),
      oneToOne(a!, b!, 'one', 'x'), // a retry in the same batch
      oneToOne(c!, b!, 'other sender, same cmid', 'x'),
      oneToOne(a!, b!, 'no cmid'),
      oneToOne(a!, b!, 'no cmid'),
    ]);
    expect(first.map((r) => r.duplicate)).toEqual([false, true, false, false, false]);
    expect(first[1]).toEqual({ mid: first[0]!.mid, duplicate: true, deliveries: [] });
    expect(new Set(first.map((r) => r.mid)).size).toBe(4);
    expect(first.flatMap((r) => r.deliveries.map((d) => d.seq))).toEqual([1, 2, 3, 4]);

    const retry = await t.store.messages.append([
      oneToOne(a!, b!, 'one', 'x'), // retried
      oneToOne(a!, b!, 'new', 'y'),
    ]);
    expect(retry[0]).toEqual({ mid: first[0]!.mid, duplicate: true, deliveries: [] });
    expect(retry[1]).toMatchObject({ duplicate: false, deliveries: [{ userId: b, seq: 5 }] });
    const inbox = await t.store.messages.readInbox(b!, 0, 100);
    expect(inbox.map((e) => e.body)).toEqual(['one', 'other sender, same cmid', 'no cmid', 'no cmid', 'new']);
  });

  it('refuses a cmid reused for another message (text, recipient or kind), in a batch and across batches', async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'reuse');
    const [first] = await t.store.messages.append([oneToOne(a!, b!, 'pay 10', 'k')]);
    const refused = { mid: 0, duplicate: true, cmidReused: true, deliveries: [] };
    const later = await t.store.messages.append([
      oneToOne(a!, b!, 'pay 1000', 'k'), // another text
      oneToOne(a!, c!, 'pay 10', 'k'), // another recipient
      { ...oneToOne(a!, b!, 'pay 10', 'k'), kind: 'group' as const }, // another kind
      oneToOne(a!, b!, 'pay 10', 'k'), // a true retry, after refused ones in the same batch
      oneToOne(a!, b!, 'fresh', 'n'),
      oneToOne(a!, b!, 'fresh but changed', 'n'), // reused within the batch
      oneToOne(a!, b!, 'fresh', 'n'), // a retry of the batch's first use
    ]);
    expect(later).toEqual([
      refused,
      refused,
      refused,
      { mid: first!.mid, duplicate: true, deliveries: [] },
      { mid: expect.any(Number), duplicate: false, deliveries: [{ userId: b, seq: 2 }] },
      refused,
      { mid: later[4]!.mid, duplicate: true, deliveries: [] },
    ]);
    // A lone surrogate is stored as U+FFFD: a retry of such a text is still the same message.
    const [odd] = await t.store.messages.append([oneToOne(a!, b!, 'odd \uD800', 'odd')]);
    const [oddRetry] = await t.store.messages.append([oneToOne(a!, b!, 'odd \uD800', 'odd')]);
    expect(oddRetry).toEqual({ mid: odd!.mid, duplicate: true, deliveries: [] });
    const inbox = await t.store.messages.readInbox(b!, 0, 100);
    expect(inbox.map((e) => e.body)).toEqual(['pay 10', 'fresh', 'odd \uFFFD']);
    expect(await t.store.messages.readInbox(c!, 0, 100)).toEqual([]);
  });

  it('stores a batch larger than one statement, with a retried cmid past the first statement', async () => {
    const [a, b] = await createUsers(t.store, 2, 'big');
    const [earlier] = await t.store.messages.append([oneToOne(a!, b!, 'earlier', 'big-700')]);
    const batch = Array.from({ length: 1200 }, (_, i) => oneToOne(a!, b!, `m${i}`, `big-${i}`));
    batch[700] = oneToOne(a!, b!, 'earlier', 'big-700');
    batch[1100] = oneToOne(a!, b!, 'm5', 'big-5');
    const results = await t.store.messages.append(batch);
    expect(results[700]).toEqual({ mid: earlier!.mid, duplicate: true, deliveries: [] });
    expect(results[1100]).toEqual({ mid: results[5]!.mid, duplicate: true, deliveries: [] });
    const fresh = results.filter((r) => !r.duplicate);
    expect(fresh).toHaveLength(1198);
    // mids grow in batch order; seqs continue the inbox without gaps.
    expect(fresh.map((r) => r.mid)).toEqual(fresh.map((r) => r.mid).sort((x, y) => x - y));
    expect(fresh[0]!.mid).toBeGreaterThan(earlier!.mid);
    expect(fresh.map((r) => r.deliveries[0]!.seq)).toEqual(fresh.map((_, i) => i + 2));
    const inbox = await t.store.messages.readInbox(b!, 0, 2000);
    expect(inbox.map((e) => e.mid)).toEqual([earlier!.mid, ...fresh.map((r) => r.mid)]);
    expect(await t.store.messages.cursor(b!)).toEqual({ lastSeq: 1199, ackedSeq: 0 });
  });

  it('splits a batch of long bodies into statements below max_allowed_packet', async () => {
    const [a, b] = await createUsers(t.store, 2, 'long');
    // 300 bodies of 60,000 bytes: 18 MB, more than MariaDB's default 16 MB packet in one INSERT.
    const body = (i: number) => `${i}:`.padEnd(60_000, 'x');
    const results = await t.store.messages.append(
      Array.from({ length: 300 }, (_, i) => oneToOne(a!, b!, body(i), `long-${i}`)),
    );
    expect(results.filter((r) => !r.duplicate)).toHaveLength(300);
    const inbox = await t.store.messages.readInbox(b!, 290, 100);
    expect(inbox.map((e) => e.body)).toEqual([290, 291, 292, 293, 294, 295, 296, 297, 298, 299].map(body));
  });

  it('recognises a retried cmid that is not well-formed UTF-16 (a lone surrogate from JSON)', async () => {
    const [a, b] = await createUsers(t.store, 2, 'surrogate');
    const cmid = JSON.parse('"id-\\ud800"') as string;
    const [first] = await t.store.messages.append([oneToOne(a!, b!, 'once', cmid)]);
    const [again] = await t.store.messages.append([oneToOne(a!, b!, 'once', cmid)]);
    expect(again).toEqual({ mid: first!.mid, duplicate: true, deliveries: [] });
    // Both stores keep such text the way UTF-8 can carry it: the lone surrogate becomes U+FFFD.
    const name = `lone\ud800-${uniqueName('')}`;
    const id = await t.store.users.create(name, 'pw');
    expect((await t.store.users.findById(id))?.name).toBe(name.replace('\ud800', '\ufffd'));
  });

  it('stores messages without recipients and delivers a repeated recipient once', async () => {
    const [a, b] = await createUsers(t.store, 2, 'edge');
    const [alone, twice] = await t.store.messages.append([
      { ...oneToOne(a!, b!, 'to an empty group'), kind: 'group', recipients: [] },
      { ...oneToOne(a!, b!, 'listed twice'), recipients: [b!, b!] },
    ]);
    expect(alone).toMatchObject({ duplicate: false, deliveries: [] });
    expect(alone!.mid).toBeGreaterThan(0);
    expect(twice?.deliveries).toEqual([{ userId: b, seq: 1 }]);
    expect(await t.store.messages.append([])).toEqual([]);
  });

  it('fails a batch with an unknown recipient with NOT_FOUND and stores none of it', async () => {
    const [a, b] = await createUsers(t.store, 2, 'ghost');
    await expect(
      t.store.messages.append([oneToOne(a!, b!, 'fine', 'ok1'), oneToOne(a!, 999_999, 'to nobody')]),
    ).rejects.toMatchObject({ code: 'NOT_FOUND', message: /999999/ });
    expect(await t.store.messages.cursor(b!)).toEqual({ lastSeq: 0, ackedSeq: 0 });
    // The cmid was not consumed by the failed batch.
    const [r] = await t.store.messages.append([oneToOne(a!, b!, 'fine', 'ok1')]);
    expect(r).toMatchObject({ duplicate: false, deliveries: [{ userId: b, seq: 1 }] });
  });

  it('moves acks forward only, and never past the last seq', async () => {
    const [a, b] = await createUsers(t.store, 2, 'ack');
    const m = t.store.messages;
    await m.append([1, 2, 3, 4].map((i) => oneToOne(a!, b!, `m${i}`)));
    await m.ack(b!, 2);
    expect(await m.cursor(b!)).toEqual({ lastSeq: 4, ackedSeq: 2 });
    await m.ack(b!, 1);
    expect((await m.cursor(b!)).ackedSeq).toBe(2);
    await m.ack(b!, 100);
    expect((await m.cursor(b!)).ackedSeq).toBe(4);
    await m.append([oneToOne(a!, b!, 'm5')]);
    expect(await m.cursor(b!)).toEqual({ lastSeq: 5, ackedSeq: 4 });
    await m.ack(b!, 0);
    await m.ack(b!, -3);
    expect((await m.cursor(b!)).ackedSeq).toBe(4);
  });

  it('reports NOT_FOUND for the cursor of an unknown user', async () => {
    await expect(t.store.messages.cursor(999_999)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('keeps message bodies verbatim up to 4096 bytes of UTF-8', async () => {
    const [a, b] = await createUsers(t.store, 2, 'body');
    const bodies = [
      "'; DELETE FROM inbox; --",
      'back\\slash "dq" \'sq\' `bt` \u0000 nul',
      '🙂'.repeat(1024), // 4096 bytes
      'é'.repeat(2048), // 4096 bytes
      '',
    ];
    await t.store.messages.append(bodies.map((body, i) => oneToOne(a!, b!, body, `body-${i}`)));
    const inbox = await t.store.messages.readInbox(b!, 0, 10);
    expect(inbox.map((e) => e.body)).toEqual(bodies);
  });
});
