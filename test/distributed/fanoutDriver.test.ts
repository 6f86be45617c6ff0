/**
 * FanoutDriver's queue, in process: fan-outs to one member partition run one at a time in the
 * order dispatched, a failed one is retried in place before the next (so a group's messages
 * keep their order in every inbox), other partitions do not wait, and `dispatch` resolves only
 * once its fan-out is appended (the sender's ack waits for that). The Fanout calls are answered
 * by a recording function in place of the RPC stub; test/distributed/groupFanout.test.ts runs
 * the real processes.
 */
import { describe, expect, it } from 'vitest';
import { FanoutDriver } from '../../src/app/distributed/FanoutDriver.js';
import type { FanoutReply, FanoutRequest, MessageServiceRpc } from '../../src/app/distributed/wireTypes.js';
import type { FanoutJob } from '../../src/app/model/types.js';
import type { Stub } from '../../src/rpc/index.js';

const job = (mid: number, part: number): FanoutJob => ({
  mid,
  part,
  recipients: [part + 64],
  sender: 1,
  senderName: 'a',
  target: 9,
  body: `m${mid}`,
  time: '2026-12-03 14:00:00',
});

describe('FanoutDriver', () => {
  it('runs one partition in order, retrying a failure in place; other partitions go on; dispatch resolves once appended', async () => {
    const calls: number[] = [];
    const failOnce = new Set([1]);
    const Fanout = async (r: FanoutRequest): Promise<FanoutReply> => {
      calls.push(r.mid);
      if (failOnce.delete(r.mid)) return { errno: 9, errmsg: 'partition moved', appended: 0 };
      return { errno: 0, errmsg: '', appended: r.recipients.length };
    };
    const warnings: string[] = [];
    const driver = new FanoutDriver(
      { Fanout } as unknown as Stub<MessageServiceRpc>,
      { pendingFanouts: async () => [], heldPartitions: () => new Map() },
      { log: (_level, message) => warnings.push(message) },
    );
    const resolved: number[] = [];
    const track = (mid: number, p: Promise<void>) => p.then(() => resolved.push(mid));
    await Promise.all([
      track(1, driver.dispatch(job(1, 5))),
      track(2, driver.dispatch(job(2, 5))),
      track(3, driver.dispatch(job(3, 6))),
    ]);
    // Message 2 waited for message 1's retry; message 3 (another partition) did not.
    expect(calls).toEqual([1, 3, 1, 2]);
    expect(resolved).toEqual([3, 1, 2]);
    expect(driver.stats).toMatchObject({ failed: 1, appended: 3 });
    expect(warnings).toEqual([
      expect.stringMatching(/fan-out of message 1 to partition 5 failed \(retry in 500 ms\)/),
    ]);
    await driver.stop();
  });

  it('the same fan-out dispatched twice (a sweep and the first drive) runs once', async () => {
    const calls: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const Fanout = async (r: FanoutRequest): Promise<FanoutReply> => {
      calls.push(r.mid);
      await gate;
      return { errno: 0, errmsg: '', appended: 1 };
    };
    const driver = new FanoutDriver(
      { Fanout } as unknown as Stub<MessageServiceRpc>,
      { pendingFanouts: async () => [], heldPartitions: () => new Map() },
      { log: () => {} },
    );
    const first = driver.dispatch(job(7, 3));
    const second = driver.dispatch(job(7, 3));
    release();
    await Promise.all([first, second]);
    expect(calls).toEqual([7]);
    await driver.stop();
  });
});
