/**
 * InboxStream over a real SQLite store (temp dir): pushes one user's inbox in seq order with no
 * gaps, straight from notifications when they are the next seq, from the store otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InboxEntry } from '../../src/app/model/types.js';
import type { ChatPushView } from '../../src/app/protocol/views.js';
import { type InboxSource, InboxStream, pushFromEntry } from '../../src/app/service/InboxStream.js';
import { openTempStore, type TempStore } from './helpers.js';

let temp: TempStore;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp.dispose();
});

let names = 0;
async function user(): Promise<number> {
  return temp.store.users.create(`inbox${++names}`, 'pw');
}

/** Stores `n` messages from `from` to `to`; returns their inbox entries (seq order). */
async function send(from: number, to: number, n: number, tag = 'm'): Promise<InboxEntry[]> {
  const before = (await temp.store.messages.cursor(to)).lastSeq;
  const batch = Array.from({ length: n }, (_, i) => ({
    sender: from,
    cmid: null,
    kind: 'one' as const,
    target: to,
    body: `${tag}${i}`,
    time: '2024-05-01 12:00:00',
    recipients: [to],
  }));
  for (let i = 0; i < batch.length; i += 500) await temp.store.messages.append(batch.slice(i, i + 500));
  return temp.store.messages.readInbox(to, before, n);
}

/** The real store, with every read counted. */
function countingSource(): InboxSource & { reads: { after: number; limit: number }[] } {
  const reads: { after: number; limit: number }[] = [];
  return {
    reads,
    readInbox: (userId, afterSeq, limit) => {
      reads.push({ after: afterSeq, limit });
      return temp.store.messages.readInbox(userId, afterSeq, limit);
    },
  };
}

function stream(
  userId: number,
  from: number,
  source: InboxSource,
  options: { backpressure?: () => Promise<void> | undefined } = {},
) {
  const pushed: ChatPushView[] = [];
  const errors: unknown[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const sink = (p: ChatPushView): void => {
    pushed.push(p);
    for (const w of waiters.filter((w) => pushed.length >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  const s = new InboxStream(userId, from, source, sink, (e) => errors.push(e), options.backpressure);
  /** Resolves once `n` pushes have been made. */
  const until = (n: number) =>
    pushed.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }));
  return { s, pushed, errors, until, seqs: () => pushed.map((p) => p.seq) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('InboxStream', () => {
  it('catchUp pushes everything after the starting seq, in order, as chat pushes', async () => {
    const [a, b] = [await user(), await user()];
    const entries = await send(a, b, 5);
    const { s, pushed, seqs } = stream(b, 2, countingSource());
    await s.catchUp();
    expect(seqs()).toEqual([3, 4, 5]);
    expect(pushed[0]).toEqual(pushFromEntry(entries[2]!));
    expect(pushed[0]).toMatchObject({ msgid: 6, seq: 3, id: a, toid: b, msg: 'm2' });
    expect(s.lastPushedSeq).toBe(5);
  });

  it('pushes a notification for exactly the next seq at once, without reading the store', async () => {
    const [a, b] = [await user(), await user()];
    const [e1, e2] = await send(a, b, 2);
    const source = countingSource();
    const { s, seqs } = stream(b, 0, source);
    s.offer(pushFromEntry(e1!));
    s.offer(pushFromEntry(e2!));
    expect(seqs()).toEqual([1, 2]);
    expect(source.reads).toEqual([]);
    // Old or repeated notifications are dropped, without a read.
    s.offer(pushFromEntry(e1!));
    s.offer(pushFromEntry(e2!));
    expect(seqs()).toEqual([1, 2]);
    expect(source.reads).toEqual([]);
  });

  it('repairs a gap from the store when a notification skips ahead', async () => {
    const [a, b] = [await user(), await user()];
    const entries = await send(a, b, 4);
    const source = countingSource();
    const { s, seqs, until } = stream(b, 0, source);
    s.offer(pushFromEntry(entries[0]!));
    s.offer(pushFromEntry(entries[3]!)); // 2 and 3 were lost on the way
    await until(4);
    expect(seqs()).toEqual([1, 2, 3, 4]);
    expect(source.reads[0]).toEqual({ after: 1, limit: 256 });
  });

  it('reads again when a notification arrives during a read, so nothing committed meanwhile is missed', async () => {
    const [a, b] = [await user(), await user()];
    await send(a, b, 3);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const source: InboxSource & { reads: number } = {
      reads: 0,
      readInbox: async (userId, after, limit) => {
        source.reads++;
        const rows = await temp.store.messages.readInbox(userId, after, limit);
        if (source.reads === 1) await held; // the first read's answer is late
        return rows;
      },
    };
    const { s, seqs } = stream(b, 0, source);
    const first = s.catchUp();
    // While the first read is out, two more messages commit and their notification arrives.
    const more = await send(a, b, 2, 'late');
    s.offer(pushFromEntry(more[1]!));
    expect(seqs()).toEqual([]); // not pushed out of order while a read is under way
    release();
    await first;
    expect(seqs()).toEqual([1, 2, 3, 4, 5]);
    expect(source.reads).toBeGreaterThanOrEqual(2);
  });

  it('reads page after page (256) until a short page, exactly once each', async () => {
    const [a, b] = [await user(), await user()];
    await send(a, b, 600);
    const source = countingSource();
    const { s, seqs } = stream(b, 0, source);
    await s.catchUp();
    expect(seqs()).toEqual(range(1, 600));
    expect(source.reads).toEqual([
      { after: 0, limit: 256 },
      { after: 256, limit: 256 },
      { after: 512, limit: 256 },
    ]);
  });

  it('reads one more (empty) page after a full last page', async () => {
    const [a, b] = [await user(), await user()];
    await send(a, b, 256);
    const source = countingSource();
    const { s, seqs } = stream(b, 0, source);
    await s.catchUp();
    expect(seqs()).toEqual(range(1, 256));
    expect(source.reads.map((r) => r.after)).toEqual([0, 256]);
  });

  it('waits for output back-pressure between pushes', async () => {
    const [a, b] = [await user(), await user()];
    await send(a, b, 5);
    let open: () => void = () => {};
    let blocked = true;
    const wait = new Promise<void>((r) => {
      open = () => {
        blocked = false;
        r();
      };
    });
    const { s, seqs, until } = stream(b, 0, countingSource(), {
      backpressure: () => (blocked && seqs().length >= 2 ? wait : undefined),
    });
    const done = s.catchUp();
    await until(2);
    // Barrier: a store round trip behind the stream's read; the page is all in hand by then.
    await temp.store.messages.cursor(b);
    expect(seqs()).toEqual([1, 2]);
    open();
    await done;
    expect(seqs()).toEqual([1, 2, 3, 4, 5]);
  });

  it('pushes nothing more once closed', async () => {
    const [a, b] = [await user(), await user()];
    const entries = await send(a, b, 3);
    const source = countingSource();
    const { s, seqs } = stream(b, 0, source, { backpressure: () => undefined });
    s.offer(pushFromEntry(entries[0]!));
    s.close();
    s.offer(pushFromEntry(entries[1]!));
    await s.catchUp();
    expect(seqs()).toEqual([1]);
    expect(source.reads).toEqual([]); // closed: not even a read
    // Closed while a catch-up is pushing a page: it stops at once.
    const second = stream(b, 0, countingSource(), {
      backpressure: () => {
        if (second.seqs().length === 1) second.s.close();
        return undefined;
      },
    });
    await second.s.catchUp();
    expect(second.seqs()).toEqual([1]);
  });

  it('reports a failed read to onError and can catch up again afterwards', async () => {
    const [a, b] = [await user(), await user()];
    await send(a, b, 2);
    let fail = true;
    const source: InboxSource = {
      readInbox: (u, after, limit) =>
        fail ? Promise.reject(new Error('store down')) : temp.store.messages.readInbox(u, after, limit),
    };
    const { s, seqs, errors } = stream(b, 0, source);
    await s.catchUp();
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('store down');
    fail = false;
    await s.catchUp();
    expect(seqs()).toEqual([1, 2]);
  });

  it('turns group entries into GROUP_CHAT pushes', () => {
    const entry: InboxEntry = {
      seq: 7,
      mid: 70,
      sender: 1,
      senderName: 'ann',
      kind: 'group',
      target: 9,
      body: 'hi',
      time: '2024-05-01 12:00:00',
    };
    expect(pushFromEntry(entry)).toEqual({
      msgid: 10,
      mid: 70,
      seq: 7,
      id: 1,
      name: 'ann',
      groupid: 9,
      msg: 'hi',
      time: '2024-05-01 12:00:00',
    });
    expect(pushFromEntry({ ...entry, kind: 'one' })).toEqual({
      msgid: 6,
      mid: 70,
      seq: 7,
      id: 1,
      name: 'ann',
      toid: 9,
      msg: 'hi',
      time: '2024-05-01 12:00:00',
    });
  });
});
