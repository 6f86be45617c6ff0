/**
 * GroupCommitter over a real SQLite store (temp dir): recipients resolved per job (users, group
 * members), errors per job, drain(), and failures of the store as errno replies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppendResult, NewMessage } from '../../src/app/model/types.js';
import { Errno } from '../../src/app/protocol/errno.js';
import { type ChatJob, type CommitterModels, GroupCommitter } from '../../src/app/service/GroupCommitter.js';
import { openTempStore, type TempStore } from './helpers.js';

let temp: TempStore;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp.dispose();
});

let names = 0;
const user = () => temp.store.users.create(`gc${++names}`, 'pw');

function job(sender: number, kind: 'one' | 'group', target: number, body: string): ChatJob {
  return { sender, cmid: null, kind, target, body, time: '2024-05-01 12:00:00' };
}

/** The real store, with each append's batch recorded and user lookups counted. */
function recordingModels(): CommitterModels & { batches: NewMessage[][]; lookups: number[] } {
  const batches: NewMessage[][] = [];
  const lookups: number[] = [];
  return {
    batches,
    lookups,
    users: {
      findById: (id) => {
        lookups.push(id);
        return temp.store.users.findById(id);
      },
    },
    groups: temp.store.groups,
    messages: {
      append: (take, options) =>
        temp.store.messages.append(() => {
          const rows = take();
          batches.push([...rows]);
          return rows;
        }, options),
    },
  };
}

const bodiesIn = async (userId: number) =>
  (await temp.store.messages.readInbox(userId, 0, 100)).map((e) => e.body);

describe('GroupCommitter on a real store', () => {
  it('stores one-to-one and group messages with the resolved recipients (sender excluded)', async () => {
    const [a, b, c, outsider] = [await user(), await user(), await user(), await user()];
    const group = await temp.store.groups.create(a, `g${names}`, 'd');
    await temp.store.groups.join(group, b);
    await temp.store.groups.join(group, c);
    const models = recordingModels();
    const committer = new GroupCommitter(models);
    const results = await Promise.all([
      committer.submit(job(a, 'one', b, 'to b')),
      committer.submit(job(b, 'group', group, 'to group')),
      committer.submit(job(a, 'one', 987_654, 'to nobody')),
      committer.submit(job(outsider, 'group', group, 'not a member')),
      committer.submit(job(a, 'group', 987_655, 'no such group')),
    ]);
    expect(results[0]).toMatchObject({ ok: true, duplicate: false, deliveries: [{ userId: b, seq: 1 }] });
    expect(results[1]).toMatchObject({ ok: true, deliveries: [{ userId: a }, { userId: c }] });
    expect(results[2]).toEqual({ ok: false, errno: 6, errmsg: 'no such user' });
    expect(results[3]).toEqual({ ok: false, errno: 5, errmsg: 'not a member of this group' });
    expect(results[4]).toEqual({ ok: false, errno: 6, errmsg: 'no such group' });
    // Only the accepted two were stored, together, with their recipients.
    expect(models.batches.flat().map((m) => [m.body, m.recipients])).toEqual([
      ['to b', [b]],
      ['to group', [a, c]],
    ]);
    expect(await bodiesIn(b)).toEqual(['to b']);
    expect(await bodiesIn(c)).toEqual(['to group']);
    expect(await bodiesIn(a)).toEqual(['to group']);
    expect(await bodiesIn(outsider)).toEqual([]);
  });

  it('looks a recipient up once per batch, and never again once it is known to exist', async () => {
    const [a, b] = [await user(), await user()];
    const models = recordingModels();
    const committer = new GroupCommitter(models);
    await Promise.all([1, 2, 3].map((i) => committer.submit(job(a, 'one', b, `m${i}`))));
    expect(models.lookups).toEqual([b]);
    await committer.submit(job(a, 'one', b, 'm4'));
    expect(models.lookups).toEqual([b]);
    // An unknown id is not cached: asked again next time (it may exist by then).
    await committer.submit(job(a, 'one', 987_000, 'x'));
    await committer.submit(job(a, 'one', 987_000, 'y'));
    expect(models.lookups).toEqual([b, 987_000, 987_000]);
    expect(await bodiesIn(b)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it('drain() waits for everything submitted, and is immediate when idle', async () => {
    const [a, b] = [await user(), await user()];
    const committer = new GroupCommitter(recordingModels(), { maxBatch: 4 });
    await committer.drain();
    const settled: number[] = [];
    for (let i = 0; i < 30; i++) void committer.submit(job(a, 'one', b, `d${i}`)).then(() => settled.push(i));
    await committer.drain();
    expect(settled).toHaveLength(30);
    expect(await bodiesIn(b)).toEqual(Array.from({ length: 30 }, (_, i) => `d${i}`));
    // Two waiters at once both wake.
    void committer.submit(job(a, 'one', b, 'last'));
    await Promise.all([committer.drain(), committer.drain()]);
    expect((await bodiesIn(b)).at(-1)).toBe('last');
  });

  it('turns store failures into errno replies: unavailable or unexpected is 9 "retry later", others "internal error"', async () => {
    const [a, b] = [await user(), await user()];
    const failing = (error: unknown): CommitterModels => ({
      ...recordingModels(),
      messages: { append: (): Promise<AppendResult[]> => Promise.reject(error) },
    });
    const { StoreError } = await import('../../src/app/store/errors.js');
    const down = new GroupCommitter(failing(new StoreError('UNAVAILABLE', 'down')));
    expect(await down.submit(job(a, 'one', b, 'x'))).toEqual({
      ok: false,
      errno: 9,
      errmsg: 'store unavailable, retry later',
    });
    const unexpected = new GroupCommitter(failing(new Error('bug')));
    expect(await unexpected.submit(job(a, 'one', b, 'y'))).toEqual({
      ok: false,
      errno: 9,
      errmsg: 'store unavailable, retry later',
    });
    const conflict = new GroupCommitter(failing(new StoreError('CONFLICT', 'dup')));
    expect(await conflict.submit(job(a, 'one', b, 'y'))).toEqual({
      ok: false,
      errno: 7,
      errmsg: 'internal error',
    });
    // A failing recipient lookup fails the jobs of that batch the same way.
    const lookupDown = new GroupCommitter({
      ...recordingModels(),
      users: { findById: () => Promise.reject(new StoreError('UNAVAILABLE', 'down')) },
    });
    expect(await lookupDown.submit(job(a, 'one', b, 'z'))).toEqual({
      ok: false,
      errno: 9,
      errmsg: 'store unavailable, retry later',
    });
    await lookupDown.drain();
  });

  it('refuses a cmid reused for another message, and returns the first mid for a true retry', async () => {
    const [a, b] = [await user(), await user()];
    const committer = new GroupCommitter(temp.store);
    const first = await committer.submit({ ...job(a, 'one', b, 'pay 10'), cmid: 'reuse-1' });
    expect(first).toMatchObject({ ok: true, duplicate: false });
    const [retry, reused] = await Promise.all([
      committer.submit({ ...job(a, 'one', b, 'pay 10'), cmid: 'reuse-1' }),
      committer.submit({ ...job(a, 'one', b, 'pay 99'), cmid: 'reuse-1' }),
    ]);
    expect(retry).toEqual({ ok: true, mid: (first as { mid: number }).mid, duplicate: true, deliveries: [] });
    expect(reused).toEqual({
      ok: false,
      errno: Errno.CONFLICT,
      errmsg: 'cmid already used for a different message',
    });
    expect(await bodiesIn(b)).toEqual(['pay 10']);
  });

  it('tells onBatch the size and duration of each committed transaction', async () => {
    const [a, b] = [await user(), await user()];
    const batches: [number, number][] = [];
    const committer = new GroupCommitter(temp.store, { onBatch: (size, ms) => batches.push([size, ms]) });
    const started = performance.now();
    await Promise.all([1, 2, 3].map((i) => committer.submit(job(a, 'one', b, `ob${i}`))));
    const elapsed = performance.now() - started;
    expect(batches.reduce((n, [size]) => n + size, 0)).toBe(3);
    for (const [size, ms] of batches) {
      expect(size).toBeGreaterThan(0);
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThanOrEqual(elapsed);
    }
  });
});
