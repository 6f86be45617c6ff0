import { describe, expect, it } from 'vitest';
import type { AppendOptions } from '../../src/app/model/MessageModel.js';
import type { AppendResult, NewMessage } from '../../src/app/model/types.js';
import { type ChatJob, type CommitterModels, GroupCommitter } from '../../src/app/service/GroupCommitter.js';

/** One append the committer started; the test decides when its turn comes, when it is ordered, when it ends. */
interface Started {
  take: () => readonly NewMessage[];
  options: AppendOptions;
  batch: readonly NewMessage[] | null;
  finish: () => void;
  fail: (error: unknown) => void;
}

/** Scheduling is what is under test here: the store's side is played by hand. */
function scriptedModels(): { models: CommitterModels; started: Started[] } {
  const started: Started[] = [];
  const models: CommitterModels = {
    users: { findById: async (id) => ({ id }) },
    groups: { memberIds: async () => [] },
    messages: {
      append: (take, options) =>
        new Promise<AppendResult[]>((resolve, reject) => {
          const s: Started = {
            take,
            options,
            batch: null,
            finish: () => {
              const batch = s.batch ?? [];
              resolve(
                batch.map((m, i) => ({
                  mid: i + 1,
                  duplicate: false,
                  deliveries: [{ userId: m.target, seq: i + 1 }],
                })),
              );
            },
            fail: reject,
          };
          started.push(s);
        }),
    },
  };
  return { models, started };
}

const job = (n: number): ChatJob => ({
  sender: 1,
  cmid: null,
  kind: 'one',
  target: 2,
  body: `m${n}`,
  time: '2024-01-01 00:00:00',
});

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommitter pipeline', () => {
  it('starts the next append only once the one before is ordered, even if an older one ends first', async () => {
    const { models, started } = scriptedModels();
    const committer = new GroupCommitter(models, { depth: 2 });
    const results = [1, 2, 3].map((n) => committer.submit(job(n)));
    await turn();
    expect(started).toHaveLength(1);
    started[0]!.batch = started[0]!.take();
    expect(started[0]!.batch.map((m) => m.body)).toEqual(['m1', 'm2', 'm3']);
    // Not ordered yet: nothing else may start, whatever arrives.
    const more = [4, 5].map((n) => committer.submit(job(n)));
    await turn();
    expect(started).toHaveLength(1);
    started[0]!.options.onOrdered!();
    expect(started).toHaveLength(2); // the second starts at once, and takes its batch on its turn
    const late = committer.submit(job(6));
    await turn();
    started[1]!.batch = started[1]!.take();
    expect(started[1]!.batch.map((m) => m.body)).toEqual(['m4', 'm5', 'm6']);
    // The first ends while the second is not ordered: a third must still wait.
    const after = committer.submit(job(7));
    started[0]!.finish();
    await turn();
    expect((await Promise.all(results)).every((r) => r.ok)).toBe(true);
    expect(started).toHaveLength(2);
    started[1]!.options.onOrdered!();
    expect(started).toHaveLength(3);
    started[2]!.batch = started[2]!.take();
    expect(started[2]!.batch.map((m) => m.body)).toEqual(['m7']);
    started[1]!.finish();
    started[2]!.finish();
    expect((await Promise.all([...more, late, after])).every((r) => r.ok)).toBe(true);
    await committer.drain();
  });

  it('hands results out in the order the appends started, even when a later one commits first', async () => {
    const { models, started } = scriptedModels();
    const committer = new GroupCommitter(models, { depth: 2 });
    const resolved: string[] = [];
    const track = (n: number) => committer.submit(job(n)).then(() => resolved.push(`m${n}`));
    const first = track(1);
    await turn();
    started[0]!.batch = started[0]!.take();
    started[0]!.options.onOrdered!();
    const second = track(2);
    await turn();
    started[1]!.batch = started[1]!.take();
    // The second commits first (group messages share no lock): its ack and fan-outs wait.
    started[1]!.finish();
    await turn();
    expect(resolved).toEqual([]);
    started[0]!.finish();
    await Promise.all([first, second]);
    expect(resolved).toEqual(['m1', 'm2']);
    await committer.drain();
  });

  it('never has more than `depth` appends under way', async () => {
    const { models, started } = scriptedModels();
    const committer = new GroupCommitter(models, { depth: 2 });
    void committer.submit(job(1));
    await turn();
    started[0]!.batch = started[0]!.take();
    started[0]!.options.onOrdered!();
    void committer.submit(job(2));
    await turn();
    started[1]!.batch = started[1]!.take();
    started[1]!.options.onOrdered!();
    void committer.submit(job(3));
    await turn();
    expect(started).toHaveLength(2);
    started[0]!.finish();
    await turn();
    expect(started).toHaveLength(3);
  });

  it('an append that fails before its turn fails the batch it would have taken, and the next one goes', async () => {
    const { models, started } = scriptedModels();
    const committer = new GroupCommitter(models, { depth: 2 });
    const first = committer.submit(job(1));
    await turn();
    started[0]!.fail(Object.assign(new Error('store is closed'), { code: 'UNAVAILABLE' }));
    expect(await first).toMatchObject({ ok: false });
    const second = committer.submit(job(2));
    await turn();
    expect(started).toHaveLength(2);
    started[1]!.batch = started[1]!.take();
    started[1]!.finish();
    expect(await second).toMatchObject({ ok: true });
    await committer.drain();
  });
});
