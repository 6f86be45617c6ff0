/**
 * DeadlineQueue: per-timeout FIFO lists behind one EventLoop timer. Real timers, short deadlines;
 * assertions are about order and "never before the deadline", not about how late.
 */
import { describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { type DeadlineEntry, DeadlineQueue } from '../../src/rpc/client/DeadlineQueue.js';

interface Call extends DeadlineEntry {
  name: string;
  expiredAt?: number;
}

function call(name: string, timeoutMs: number, now = performance.now()): Call {
  return { name, deadline: now + timeoutMs, deadlinePrev: null, deadlineNext: null, deadlineList: null };
}

/** A queue that records expiries; `expired(n)` resolves once n entries have expired. */
function recordingQueue(onExpired?: (c: Call, q: DeadlineQueue<Call>) => void) {
  const order: Call[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const loop = new EventLoop();
  const queue: DeadlineQueue<Call> = new DeadlineQueue<Call>(loop, (c) => {
    c.expiredAt = performance.now();
    order.push(c);
    onExpired?.(c, queue);
    for (const w of waiters.filter((w) => order.length >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  /** Resolves once `n` entries have expired; fails after 5 s (the deadlines here are all under 1 s). */
  const expired = (n: number) =>
    order.length >= n
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`${order.length} of ${n} expired after 5 s`)),
            5000,
          );
          waiters.push({
            n,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
  return { queue, order, expired, loop };
}

const names = (cs: Call[]) => cs.map((c) => c.name);

describe('DeadlineQueue', () => {
  it('expires each entry once, in deadline order, never before its deadline', async () => {
    const { queue, order, expired, loop } = recordingQueue();
    const now = performance.now();
    const calls = [call('c', 60, now), call('a', 20, now), call('b', 40, now), call('a2', 20, now + 1)];
    queue.add(calls[0]!, 60);
    queue.add(calls[1]!, 20);
    queue.add(calls[2]!, 40);
    queue.add(calls[3]!, 20);
    expect(queue.size).toBe(4);
    await expired(4);
    expect(names(order)).toEqual(['a', 'a2', 'b', 'c']);
    for (const c of order) expect(c.expiredAt!).toBeGreaterThanOrEqual(c.deadline);
    expect(queue.size).toBe(0);
    for (const c of calls)
      expect([c.deadlineList, c.deadlinePrev, c.deadlineNext]).toEqual([null, null, null]);
    // Nothing left: no timer stays armed (it would keep the process up).
    expect(loop.timerCount()).toBe(0);
  });

  it('keeps arrival order among equal deadlines, also when they are inserted before a later one', async () => {
    const { queue, order, expired } = recordingQueue();
    const now = performance.now();
    queue.add(call('x', 50, now), 20);
    queue.add(call('y', 30, now), 20); // earlier than the tail: inserted in order
    queue.add(call('z', 30, now), 20); // equal to y: after it
    await expired(3);
    expect(names(order)).toEqual(['y', 'z', 'x']);
  });

  it('keeps one list ordered when an entry is added with an earlier deadline than its tail', async () => {
    const { queue, order, expired } = recordingQueue();
    const now = performance.now();
    // Same timeout list (30), deadlines out of order: late, early, middle, earliest.
    for (const [name, at] of [
      ['late', 50],
      ['early', 20],
      ['middle', 35],
      ['earliest', 10],
    ] as const) {
      queue.add(call(name, at, now), 30);
    }
    await expired(4);
    expect(names(order)).toEqual(['earliest', 'early', 'middle', 'late']);
  });

  it('never expires a removed entry, wherever it was in its list', async () => {
    const { queue, order, expired } = recordingQueue();
    const now = performance.now();
    const cs = ['h', 'm1', 'm2', 't', 'last'].map((n, i) => call(n, 10 + i * 5, now));
    for (const c of cs) queue.add(c, 10);
    queue.remove(cs[0]!); // head
    queue.remove(cs[2]!); // middle
    queue.remove(cs[3]!); // the tail's neighbour
    queue.remove(cs[2]!); // twice: no effect
    expect(queue.size).toBe(2);
    await expired(2);
    expect(names(order)).toEqual(['m1', 'last']);
    // 'last' was the tail: removing it from a fresh queue empties the list both ways.
    const again = recordingQueue();
    const only = call('only', 10);
    again.queue.add(only, 10);
    again.queue.remove(only);
    const after = call('after', 15);
    again.queue.add(after, 15);
    await again.expired(1);
    expect(names(again.order)).toEqual(['after']);
  });

  it('removing the tail lets a later add append behind the new tail', async () => {
    const { queue, order, expired } = recordingQueue();
    const now = performance.now();
    const a = call('a', 10, now);
    const b = call('b', 20, now);
    queue.add(a, 10);
    queue.add(b, 10);
    queue.remove(b);
    queue.add(call('c', 30, now), 10);
    await expired(2);
    expect(names(order)).toEqual(['a', 'c']);
  });

  it('fires for the earliest of several timeout lists, whichever was added first', async () => {
    const { queue, order, expired } = recordingQueue();
    const now = performance.now();
    queue.add(call('slow', 80, now), 80);
    queue.add(call('fast', 15, now), 15);
    queue.add(call('mid', 40, now), 40);
    await expired(1);
    expect(names(order)).toEqual(['fast']);
    await expired(3);
    expect(names(order)).toEqual(['fast', 'mid', 'slow']);
  });

  it('after the head is removed, the next entry still expires on time, not early', async () => {
    const { queue, order, expired } = recordingQueue();
    const now = performance.now();
    const first = call('first', 10, now);
    const second = call('second', 60, now);
    queue.add(first, 10);
    queue.add(second, 10);
    queue.remove(first);
    await expired(1);
    expect(names(order)).toEqual(['second']);
    expect(second.expiredAt!).toBeGreaterThanOrEqual(second.deadline);
  });

  it('entries added by the expiry callback are armed and expire too', async () => {
    let added = 0;
    const { queue, order, expired } = recordingQueue((c, q) => {
      if (added < 2) {
        added++;
        q.add(call(`${c.name}+`, 5), 5);
      }
    });
    queue.add(call('x', 10), 10);
    queue.add(call('y', 500), 500);
    await expired(3);
    expect(names(order)).toEqual(['x', 'x+', 'x++']);
    queue.clear();
  });

  it('clear() hands back every entry unexpired and stops the timer', async () => {
    const { queue, order, expired, loop } = recordingQueue();
    const now = performance.now();
    const cs = [call('a', 10, now), call('b', 20, now), call('c', 30, now)];
    queue.add(cs[0]!, 10);
    queue.add(cs[1]!, 20);
    queue.add(cs[2]!, 10);
    expect(loop.timerCount()).toBe(1);
    expect(names(queue.clear())).toEqual(['a', 'c', 'b']);
    expect(queue.size).toBe(0);
    expect(loop.timerCount()).toBe(0);
    // Barrier: a second queue whose entry is due after all of those has fired.
    const other = recordingQueue();
    other.queue.add(call('later', 50), 50);
    await other.expired(1);
    expect(order).toEqual([]);
    // The cleared queue still works.
    queue.add(call('d', 5), 5);
    await expired(1);
    expect(names(order)).toEqual(['d']);
  });
});
