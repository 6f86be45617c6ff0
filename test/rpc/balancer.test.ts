/**
 * Least-load balancing: the choice itself (pickEndpoint, over endpoints whose load the test sets)
 * and its effect end to end (a slow provider beside a fast one serves a small share, where
 * round-robin would give it half).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { Endpoint, pickEndpoint } from '../../src/rpc/client/Endpoint.js';
import type { NativeConnection } from '../../src/rpc/client/NativeConnection.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { RpcProvider } from '../../src/rpc/server/RpcProvider.js';
import { createStub } from '../../src/rpc/stub.js';
import type { ServiceImpl } from '../../src/rpc/types.js';
import { type EchoShape, echoService, HOST, sleep } from './helpers.js';

/** An endpoint whose connection reports `outstanding` calls (and is usable unless told). */
function endpoint(key: string, load: { outstanding?: number; reported?: number; usable?: boolean } = {}) {
  const ep = new Endpoint(key, '127.0.0.1', Number(key.replace(/\D/g, '')) || 1);
  if (load.outstanding !== undefined || load.usable !== undefined) {
    // The two fields the balancer reads; a real connection needs a provider behind it.
    ep.connection = { outstanding: load.outstanding ?? 0, usable: load.usable ?? true } as NativeConnection;
  }
  ep.reportedLoad = load.reported ?? 0;
  return ep;
}

const keys = (eps: (Endpoint | null)[]) => eps.map((e) => e?.key ?? null);

describe('pickEndpoint', () => {
  it('takes the endpoint with the fewest outstanding calls, wherever the round-robin start is', () => {
    const eps = [
      endpoint('a', { outstanding: 3 }),
      endpoint('b', { outstanding: 1 }),
      endpoint('c', { outstanding: 2 }),
    ];
    expect(keys([0, 1, 2, 3, 4].map((start) => pickEndpoint(eps, 0, start, null)))).toEqual([
      'b',
      'b',
      'b',
      'b',
      'b',
    ]);
  });

  it("scores by the provider's reported load when that is higher than ours", () => {
    const eps = [
      endpoint('a', { outstanding: 1, reported: 9 }),
      endpoint('b', { outstanding: 4, reported: 2 }),
    ];
    expect(pickEndpoint(eps, 0, 0, null)?.key).toBe('b');
    // ...and by ours when that is higher (the report is stale).
    const stale = [
      endpoint('a', { outstanding: 6, reported: 1 }),
      endpoint('b', { outstanding: 2, reported: 3 }),
    ];
    expect(pickEndpoint(stale, 0, 0, null)?.key).toBe('b');
    // Not the sum: 5 + 0 > 3 + 3 would pick b, the max picks a (5 < 6).
    const notSummed = [
      endpoint('a', { outstanding: 5, reported: 0 }),
      endpoint('b', { outstanding: 3, reported: 6 }),
    ];
    expect(pickEndpoint(notSummed, 0, 0, null)?.key).toBe('a');
  });

  it('breaks ties round-robin from `start`, so idle providers share the traffic', () => {
    const eps = [endpoint('a'), endpoint('b'), endpoint('c')];
    expect(keys([0, 1, 2, 3].map((start) => pickEndpoint(eps, 0, start, null)))).toEqual([
      'a',
      'b',
      'c',
      'a',
    ]);
    // A tie between the two least loaded only: the first of them from `start`.
    const two = [
      endpoint('a', { outstanding: 1 }),
      endpoint('b', { outstanding: 5 }),
      endpoint('c', { outstanding: 1 }),
    ];
    expect(keys([0, 1, 2].map((start) => pickEndpoint(two, 0, start, null)))).toEqual(['a', 'c', 'c']);
  });

  it('skips endpoints that are down or whose connection is unusable', () => {
    const down = endpoint('a');
    down.markDown(1000, { initialMs: 250, maxMs: 5000 });
    const broken = endpoint('b', { usable: false });
    const busy = endpoint('c', { outstanding: 7 });
    expect(pickEndpoint([down, broken, busy], 1000, 0, null)?.key).toBe('c');
    expect(pickEndpoint([down, broken], 1000, 0, null)).toBeNull();
    // Down only until its back-off has passed.
    expect(pickEndpoint([down, busy], 1249, 0, null)?.key).toBe('c');
    expect(pickEndpoint([down, busy], 1250, 0, null)?.key).toBe('a');
  });

  it('avoids the endpoint the previous attempt failed on unless it is the only one', () => {
    const eps = [endpoint('a'), endpoint('b', { outstanding: 9 })];
    expect(pickEndpoint(eps, 0, 0, { key: 'a' })?.key).toBe('b');
    expect(pickEndpoint([eps[0]!], 0, 0, { key: 'a' })?.key).toBe('a');
    const down = endpoint('b');
    down.markDown(0, { initialMs: 100, maxMs: 100 });
    expect(pickEndpoint([eps[0]!, down], 50, 0, { key: 'a' })?.key).toBe('a');
    // Among the others, still the least loaded, wherever the scan starts.
    const three = [endpoint('a'), endpoint('b', { outstanding: 5 }), endpoint('c', { outstanding: 1 })];
    expect(keys([0, 1, 2].map((start) => pickEndpoint(three, 0, start, { key: 'a' })))).toEqual([
      'c',
      'c',
      'c',
    ]);
  });
});

describe('Endpoint back-off', () => {
  it('doubles the down period per failure up to the cap, and markUp resets it', () => {
    const ep = endpoint('a');
    const backoff = { initialMs: 100, maxMs: 350 };
    const periods: number[] = [];
    let now = 0;
    for (let i = 0; i < 4; i++) {
      ep.markDown(now, backoff);
      let until = now;
      while (ep.isDown(until)) until++;
      periods.push(until - now);
      now = until;
    }
    expect(periods).toEqual([100, 200, 350, 350]);
    ep.markUp();
    expect(ep.isDown(now)).toBe(false);
    ep.markDown(now, backoff);
    expect(ep.isDown(now + 99)).toBe(true);
    expect(ep.isDown(now + 100)).toBe(false);
  });

  it('counts the connection outstanding calls, 0 without a connection', () => {
    expect(endpoint('a').outstanding).toBe(0);
    expect(endpoint('a', { outstanding: 4 }).outstanding).toBe(4);
  });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A provider whose every Echo takes `delayMs` (0: answered at once). */
async function provider(name: string, delayMs: number, served: Record<string, number>): Promise<number> {
  const impl: ServiceImpl<EchoShape> = {
    Echo: async (request) => {
      served[name] = (served[name] ?? 0) + 1;
      if (delayMs > 0) await sleep(delayMs);
      return { payload: new Uint8Array(0), served_by: name, seq: request.seq ?? 0 };
    },
    Append: (request) => ({ payload: new Uint8Array(0), served_by: name, seq: request.seq ?? 0 }),
  };
  const p = new RpcProvider({ host: HOST, loop: new EventLoop() });
  p.notifyService(echoService, impl);
  const address = await p.run();
  cleanups.push(() => p.stop({ graceMs: 500 }));
  return address.port;
}

describe('least outstanding first, end to end', () => {
  it('sends most calls to the fast provider while the slow one is busy (round-robin would split them evenly)', async () => {
    const served: Record<string, number> = {};
    const slowPort = await provider('slow', 100, served);
    const fastPort = await provider('fast', 0, served);
    const channel = new RpcChannel({
      providers: [`${HOST}:${slowPort}`, `${HOST}:${fastPort}`],
      loop: new EventLoop(),
      defaultTimeoutMs: 30_000,
    });
    cleanups.push(() => channel.close());
    const echo = createStub<EchoShape>(channel, echoService);
    const callers = 8;
    const perCaller = 25;
    await Promise.all(
      Array.from({ length: callers }, async (_, w) => {
        for (let i = 0; i < perCaller; i++) await echo.Echo({ seq: w * 1000 + i });
      }),
    );
    expect((served.slow ?? 0) + (served.fast ?? 0)).toBe(callers * perCaller);
    // Least-load: the slow provider gets a call only when it has none outstanding (a tie with
    // the idle fast one), so at most about one per caller per 100 ms. Round-robin: ~100 of 200.
    expect(served.slow ?? 0).toBeLessThan((callers * perCaller) / 4);
    expect(served.slow ?? 0).toBeGreaterThan(0);
  });
});
