/**
 * AckWriter over a real SQLite store: delivery acks of every session coalesced into one store
 * write per flush interval; cursors only move forward.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AckStore, AckWriter } from '../../src/app/service/AckWriter.js';
import { openTempStore, type TempStore } from './helpers.js';

let temp: TempStore;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp.dispose();
});

let names = 0;
/** A user with `n` messages in their inbox (so acks up to n are valid). */
async function userWithInbox(n: number): Promise<number> {
  const sender = await temp.store.users.create(`acks${++names}`, 'pw');
  const to = await temp.store.users.create(`acks${++names}`, 'pw');
  const batch = Array.from({ length: n }, (_, i) => ({
    sender,
    cmid: null,
    kind: 'one' as const,
    target: to,
    body: `m${i}`,
    time: '2024-05-01 12:00:00',
    recipients: [to],
  }));
  await temp.store.messages.append(batch);
  return to;
}

const acked = async (userId: number) => (await temp.store.messages.cursor(userId)).ackedSeq;

/** The real message model, with every ackMany call recorded (a copy of its map). */
function recordingStore(): AckStore & { calls: Map<number, number>[] } {
  const calls: Map<number, number>[] = [];
  return {
    calls,
    ackMany: (acks) => {
      calls.push(new Map(acks));
      return temp.store.messages.ackMany(acks);
    },
  };
}

describe('AckWriter', () => {
  it('coalesces the acks of many users into one write, keeping the highest seq per user', async () => {
    const [u1, u2] = [await userWithInbox(10), await userWithInbox(10)];
    const store = recordingStore();
    const errors: unknown[] = [];
    const writer = new AckWriter(store, 60_000, (e) => errors.push(e));
    writer.note(u1, 3);
    writer.note(u2, 4);
    writer.note(u1, 7);
    writer.note(u1, 5); // lower than what is pending: ignored
    expect(store.calls).toEqual([]); // nothing written before the flush
    await writer.flush();
    expect(store.calls).toEqual([
      new Map([
        [u1, 7],
        [u2, 4],
      ]),
    ]);
    expect([await acked(u1), await acked(u2)]).toEqual([7, 4]);
    expect(errors).toEqual([]);
  });

  it('writes by itself after flushMs, once for everything noted in between', async () => {
    const [u1, u2] = [await userWithInbox(5), await userWithInbox(5)];
    const store = recordingStore();
    let wrote: () => void = () => {};
    const written = new Promise<void>((r) => {
      wrote = r;
    });
    const writer = new AckWriter(
      {
        ackMany: async (acks) => {
          await store.ackMany(acks);
          wrote();
        },
      },
      30,
      () => {},
    );
    const started = performance.now();
    writer.note(u1, 2);
    writer.note(u2, 5);
    await written;
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
    expect(store.calls).toHaveLength(1);
    expect([await acked(u1), await acked(u2)]).toEqual([2, 5]);
  });

  it('flush with nothing pending writes nothing and still waits for a write under way', async () => {
    const u = await userWithInbox(3);
    const store = recordingStore();
    const writer = new AckWriter(store, 60_000, () => {});
    await writer.flush();
    expect(store.calls).toEqual([]);
    writer.note(u, 3);
    const first = writer.flush();
    const second = writer.flush(); // nothing new: resolves with the first write
    await second;
    expect(await acked(u)).toBe(3);
    await first;
    expect(store.calls).toHaveLength(1);
  });

  it('issues writes one at a time, in order', async () => {
    const u = await userWithInbox(9);
    const order: string[] = [];
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let n = 0;
    const writer = new AckWriter(
      {
        ackMany: async (acks) => {
          const k = ++n;
          order.push(`start${k}`);
          if (k === 1) await held;
          await temp.store.messages.ackMany(acks);
          order.push(`end${k}`);
        },
      },
      60_000,
      () => {},
    );
    writer.note(u, 4);
    const first = writer.flush();
    writer.note(u, 9);
    const second = writer.flush();
    await temp.store.messages.cursor(u); // a store round trip: the second would have started
    expect(order).toEqual(['start1']);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['start1', 'end1', 'start2', 'end2']);
    expect(await acked(u)).toBe(9);
  });

  it('reports a failed write and keeps writing later acks', async () => {
    const u = await userWithInbox(4);
    const errors: unknown[] = [];
    let fail = true;
    const writer = new AckWriter(
      {
        ackMany: (acks) =>
          fail ? Promise.reject(new Error('store down')) : temp.store.messages.ackMany(acks),
      },
      60_000,
      (e) => errors.push(e),
    );
    writer.note(u, 2);
    await writer.flush();
    expect((errors as Error[]).map((e) => e.message)).toEqual(['store down']);
    fail = false;
    writer.note(u, 4);
    await writer.flush();
    expect(await acked(u)).toBe(4);
    expect(errors).toHaveLength(1);
  });

  it('after a flush, the next ack waits a whole flushMs again (the cancelled timer does not fire)', async () => {
    const u = await userWithInbox(3);
    const flushMs = 200;
    const writes: number[] = [];
    let wrote: () => void = () => {};
    const second = new Promise<void>((r) => {
      wrote = r;
    });
    const writer = new AckWriter(
      {
        ackMany: async (acks) => {
          writes.push(performance.now());
          await temp.store.messages.ackMany(acks);
          if (writes.length === 2) wrote();
        },
      },
      flushMs,
      () => {},
    );
    writer.note(u, 1); // arms the timer
    await writer.flush(); // writes now and cancels it
    await new Promise((r) => setTimeout(r, flushMs / 2));
    const noted = performance.now();
    writer.note(u, 2);
    await second;
    // Timers never fire early: the write comes a full flushMs after this ack, not when the
    // first (cancelled) timer would have fired, half of it after.
    expect(writes[1]! - noted).toBeGreaterThanOrEqual(flushMs - 2);
    expect(await acked(u)).toBe(2);
  });

  it('a flush cancels the pending timer: no second, empty write follows', async () => {
    const u = await userWithInbox(2);
    const store = recordingStore();
    const writer = new AckWriter(store, 20, () => {});
    writer.note(u, 1);
    await writer.flush();
    // Barrier: a later ack's own timer fires after the cancelled one would have.
    writer.note(u, 2);
    await new Promise<void>((resolve) => {
      const poll = (): void => {
        if (store.calls.length >= 2) resolve();
        else setTimeout(poll, 5);
      };
      poll();
    });
    expect(store.calls).toEqual([new Map([[u, 1]]), new Map([[u, 2]])]);
  });
});
