import { describe, expect, it } from 'vitest';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import type { AppendResult, NewMessage } from '../../src/app/model/types.js';
import {
  createUsers,
  oneToOne,
  openStoreWithoutRetries,
  openTestStore,
  STORE_KINDS,
  useTestStore,
} from './harness.js';

/** Recipients overlap on purpose (everyone writes to everyone), so writers contend on counters. */
function randomBatch(users: readonly number[], size: number, tag: string): NewMessage[] {
  return Array.from({ length: size }, (_, i) => {
    const sender = users[Math.floor(Math.random() * users.length)]!;
    const others = users.filter((u) => u !== sender);
    const fanOut = i % 5 === 0 ? others : [others[Math.floor(Math.random() * others.length)]!];
    return { ...oneToOne(sender, fanOut[0]!, `${tag}-${i}`, `${tag}-${i}`), recipients: fanOut };
  });
}

async function writer(store: ChatStore, users: readonly number[], tag: string, batches: number) {
  const results: AppendResult[] = [];
  for (let b = 0; b < batches; b++) {
    results.push(...(await store.messages.append(randomBatch(users, 1 + ((b * 7) % 25), `${tag}-${b}`))));
  }
  return results;
}

/** Every user's inbox is exactly 1..n, holds each delivered mid once, and matches its counter. */
async function expectConsistentInboxes(store: ChatStore, users: readonly number[], results: AppendResult[]) {
  const delivered = new Map<number, Map<number, number>>(users.map((u) => [u, new Map()])); // user → seq → mid
  for (const r of results) {
    for (const d of r.deliveries) {
      const seqs = delivered.get(d.userId)!;
      expect(seqs.has(d.seq), `seq ${d.seq} of user ${d.userId} handed out twice`).toBe(false);
      seqs.set(d.seq, r.mid);
    }
  }
  let total = 0;
  for (const u of users) {
    const inbox = await store.messages.readInbox(u, 0, 100_000);
    const seqs = delivered.get(u)!;
    total += inbox.length;
    expect(inbox.map((e) => e.seq)).toEqual(Array.from({ length: seqs.size }, (_, i) => i + 1));
    expect(inbox.map((e) => e.mid)).toEqual(inbox.map((e) => seqs.get(e.seq)));
    expect(new Set(inbox.map((e) => e.mid)).size).toBe(inbox.length);
    expect((await store.messages.cursor(u)).lastSeq).toBe(inbox.length);
  }
  expect(total).toBe(results.reduce((n, r) => n + r.deliveries.length, 0));
  expect(total).toBeGreaterThan(0);
}

describe.each(STORE_KINDS)('concurrent appends on %s', (kind) => {
  const t = useTestStore(kind);

  it('4 parallel callers on one store never duplicate or skip a seq', async () => {
    const users = await createUsers(t.store, 6, 'par');
    const all = await Promise.all([0, 1, 2, 3].map((w) => writer(t.store, users, `w${w}`, 12)));
    await expectConsistentInboxes(t.store, users, all.flat());
  });

  it('stores a (sender, cmid) raced by parallel callers exactly once', async () => {
    const [a, b] = await createUsers(t.store, 2, 'dupe-race');
    const others = await Promise.all([openTestStore(t.url), openTestStore(t.url)]);
    try {
      const stores = [t.store, ...others];
      for (let round = 0; round < 5; round++) {
        const msg = oneToOne(a!, b!, `race ${round}`, `race-${round}`);
        const results = (await Promise.all(stores.map((s) => s.messages.append([msg])))).flat();
        expect(new Set(results.map((r) => r.mid)).size).toBe(1);
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      }
      expect((await t.store.messages.readInbox(b!, 0, 100)).map((e) => e.body)).toEqual(
        [0, 1, 2, 3, 4].map((r) => `race ${r}`),
      );
    } finally {
      await Promise.all(others.map((s) => s.close()));
    }
  });
});

describe('concurrent appends from separate MySQL pools', () => {
  const t = useTestStore('mysql');

  it('2 pools x 3 callers on one database never duplicate or skip a seq', async () => {
    const users = await createUsers(t.store, 5, 'pool');
    const [p1, p2] = await Promise.all([
      openTestStore(t.url, { connectionLimit: 3 }),
      openTestStore(t.url, { connectionLimit: 3 }),
    ]);
    try {
      const work = [p1, p2].flatMap((s, p) => [0, 1, 2].map((w) => writer(s, users, `p${p}w${w}`, 10)));
      const all = await Promise.all(work);
      await expectConsistentInboxes(t.store, users, all.flat());
    } finally {
      await p1.close();
      await p2.close();
    }
  });
});

describe('two SQLite stores on one file in one process', () => {
  const t = useTestStore('sqlite');

  it('queue on each other instead of blocking in busy_timeout', async () => {
    const users = await createUsers(t.store, 4, 'file');
    const second = await openTestStore(t.url);
    try {
      const started = Date.now();
      const all = await Promise.all([writer(t.store, users, 'one', 10), writer(second, users, 'two', 10)]);
      expect(Date.now() - started).toBeLessThan(4000); // a busy_timeout stall would take 5 s
      await expectConsistentInboxes(second, users, all.flat());
    } finally {
      await second.close();
    }
  });
});

/** Appends 100-, 500- and 250-message batches, each with 20 of `retried` in the middle. */
async function bulkWriter(store: ChatStore, users: readonly number[], tag: string, retried: NewMessage[]) {
  const sent: { key: string; result: AppendResult }[] = [];
  for (const size of [100, 500, 250]) {
    const batch = randomBatch(users, size, `${tag}-${size}`);
    batch.splice(size / 2, 0, ...retried.slice(size % 40, (size % 40) + 20));
    const results = await store.messages.append(batch);
    for (const [i, m] of batch.entries()) sent.push({ key: `${m.sender}/${m.cmid}`, result: results[i]! });
  }
  return sent;
}

describe.each(STORE_KINDS)('concurrent group-commit-sized appends on %s', (kind) => {
  const t = useTestStore(kind);

  it('3 stores x 2 callers with 100-500 message batches and shared retries stay consistent', async () => {
    const users = await createUsers(t.store, 12, 'bulk');
    // Every caller also sends the same (sender, cmid) pairs, as a client retrying through several
    // servers would: each is stored once, whichever append gets there first.
    const retried = Array.from({ length: 40 }, (_, i) =>
      oneToOne(users[i % 12]!, users[(i + 1) % 12]!, `retried ${i}`, `retried-${i}`),
    );
    // No retries: a deadlock between the appends would fail the test instead of being hidden.
    const stores = await Promise.all([0, 1, 2].map(() => openStoreWithoutRetries(t.url)));
    try {
      const work = stores.flatMap((s, p) => [0, 1].map((w) => bulkWriter(s, users, `s${p}w${w}`, retried)));
      const sent = (await Promise.all(work)).flat();
      await expectConsistentInboxes(
        t.store,
        users,
        sent.map((s) => s.result),
      );

      const byKey = new Map<string, AppendResult[]>();
      for (const { key, result } of sent) byKey.set(key, [...(byKey.get(key) ?? []), result]);
      for (const copies of byKey.values()) {
        expect(new Set(copies.map((r) => r.mid)).size).toBe(1);
        expect(copies.filter((r) => !r.duplicate)).toHaveLength(1);
      }
      const mids = sent.filter((s) => !s.result.duplicate).map((s) => s.result.mid);
      expect(new Set(mids).size).toBe(byKey.size);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe.each(STORE_KINDS)('two writers taking turns on %s', (kind) => {
  const t = useTestStore(kind);

  it('each notices the other moved the counters: seqs and mids stay dense and right', async () => {
    const [a, b] = await createUsers(t.store, 2, 'turns');
    const second = await openTestStore(t.url);
    try {
      const stores = [t.store, second];
      const mids: number[] = [];
      // Each store learns the cursors from its own appends and would guess from them next time;
      // every other append was made by the other store, so every guess after the first is wrong.
      for (let i = 0; i < 12; i++) {
        const store = stores[i % 2]!;
        const cmid = i % 3 === 0 ? `turn-${i}` : null;
        const [r] = await store.messages.append([
          { ...oneToOne(a!, b!, `turn ${i}`, cmid), recipients: [b!] },
        ]);
        expect(r).toMatchObject({ duplicate: false, deliveries: [{ userId: b, seq: i + 1 }] });
        mids.push(r!.mid);
      }
      for (let i = 1; i < mids.length; i++) expect(mids[i]).toBe(mids[i - 1]! + 1);
      const inbox = await t.store.messages.readInbox(b!, 0, 100);
      expect(inbox.map((e) => [e.seq, e.mid, e.body])).toEqual(
        mids.map((mid, i) => [i + 1, mid, `turn ${i}`]),
      );
      expect(await t.store.messages.cursor(b!)).toEqual({ lastSeq: 12, ackedSeq: 0 });
      // A retried cmid through the store that did not store it: found, not stored twice.
      const [again] = await second.messages.append([
        { ...oneToOne(a!, b!, 'turn 0', 'turn-0'), recipients: [b!] },
      ]);
      expect(again).toMatchObject({ mid: mids[0], duplicate: true, deliveries: [] });
      expect(await t.store.messages.cursor(b!)).toEqual({ lastSeq: 12, ackedSeq: 0 });
    } finally {
      await second.close();
    }
  });

  it('notices a mid taken by the other writer even when its own recipients did not move', async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'mids');
    const one = await openTestStore(t.url);
    const two = await openTestStore(t.url);
    try {
      const send = async (store: ChatStore, to: number, body: string) =>
        (await store.messages.append([{ ...oneToOne(a!, to, body), recipients: [to] }]))[0]!;
      const first = await send(one, b!, 'to b 1');
      const other = await send(two, c!, 'to c 1'); // moves only the mid counter
      const second = await send(one, b!, 'to b 2'); // one's guess for b is right, for the mid not
      expect([other.mid, second.mid]).toEqual([first.mid + 1, first.mid + 2]);
      expect(second.deliveries).toEqual([{ userId: b, seq: 2 }]);
      const inbox = await t.store.messages.readInbox(b!, 0, 10);
      expect(inbox.map((e) => [e.seq, e.mid, e.body])).toEqual([
        [1, first.mid, 'to b 1'],
        [2, second.mid, 'to b 2'],
      ]);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
