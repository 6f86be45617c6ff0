/**
 * CallOptions.affinity: rendezvous hashing of a key over the listed providers. The same key
 * always picks the same provider, keys spread over all of them, a key moves only when its
 * provider goes, and a failed attempt's provider is avoided while another is usable.
 */
import { describe, expect, test } from 'vitest';
import { Endpoint, pickByAffinity } from '../../src/rpc/client/Endpoint.js';
import type { NativeConnection } from '../../src/rpc/client/NativeConnection.js';
import { RpcChannel } from '../../src/rpc/index.js';

const endpoints = (n: number): Endpoint[] =>
  Array.from({ length: n }, (_, i) => new Endpoint(`127.0.0.1:${7000 + i}`, '127.0.0.1', 7000 + i));

describe('pickByAffinity', () => {
  test('the same key picks the same provider whatever the list order; keys spread over all providers', () => {
    const eps = endpoints(4);
    const reversed = [...eps].reverse();
    const counts = new Map<string, number>();
    for (let k = 0; k < 4000; k++) {
      const key = String(k);
      const a = pickByAffinity(eps, 0, key, null)!;
      expect(pickByAffinity(reversed, 0, key, null)!.key).toBe(a.key);
      counts.set(a.key, (counts.get(a.key) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    // Each provider gets a fair share: 1000 expected, well inside 700..1300.
    for (const n of counts.values()) expect(n).toBeGreaterThan(700);
    for (const n of counts.values()) expect(n).toBeLessThan(1300);
  });

  test('removing a provider moves only its keys; a down or avoided provider is skipped', () => {
    const eps = endpoints(3);
    const before = new Map<string, string>();
    for (let k = 0; k < 1000; k++) before.set(String(k), pickByAffinity(eps, 0, String(k), null)!.key);
    const gone = eps[1]!;
    const rest = eps.filter((e) => e !== gone);
    for (const [key, owner] of before) {
      const now = pickByAffinity(rest, 0, key, null)!.key;
      if (owner !== gone.key) expect(now, key).toBe(owner);
    }
    // Marked down (a failed connection): same effect as gone while the back-off lasts.
    gone.markDown(0, { initialMs: 1000, maxMs: 5000 });
    for (const [key, owner] of before) {
      const now = pickByAffinity(eps, 10, key, null)!.key;
      expect(now).not.toBe(gone.key);
      if (owner !== gone.key) expect(now).toBe(owner);
    }
    // The last attempt's provider is avoided when another is usable, taken when it is the only one.
    const key = [...before.keys()].find((k) => before.get(k) === eps[0]!.key)!;
    expect(pickByAffinity(eps.slice(0, 1), 10_000, key, eps[0]!)!.key).toBe(eps[0]!.key);
    expect(pickByAffinity([eps[0]!, eps[2]!], 10_000, key, eps[0]!)!.key).toBe(eps[2]!.key);
  });

  test('a provider whose connection is unusable is skipped; an avoided one leaves the choice to the others', () => {
    const eps = endpoints(4);
    const keys = Array.from({ length: 400 }, (_, k) => String(k));
    const owner = (list: Endpoint[], key: string, avoid: Endpoint | null = null) =>
      pickByAffinity(list, 0, key, avoid)!.key;
    const before = new Map(keys.map((k) => [k, owner(eps, k)]));
    const busy = eps[2]!;
    busy.connection = { outstanding: 0, usable: true } as NativeConnection;
    for (const k of keys) expect(owner(eps, k)).toBe(before.get(k));
    busy.connection = { outstanding: 0, usable: false } as NativeConnection; // closing, say
    const others = eps.filter((e) => e !== busy);
    for (const k of keys) expect(owner(eps, k)).toBe(owner(others, k));
    busy.connection = null;
    // Avoiding the last attempt's provider: the key goes where it would go without it.
    for (const k of keys) {
      const first = eps.find((e) => e.key === before.get(k))!;
      expect(owner(eps, k, first)).toBe(
        owner(
          eps.filter((e) => e !== first),
          k,
        ),
      );
    }
  });
});

describe('RpcChannel.affinityProvider', () => {
  test('names the provider a call with that affinity would be sent to', async () => {
    const eps = endpoints(3);
    const channel = new RpcChannel({ providers: eps.map((e) => e.key) });
    try {
      for (let k = 0; k < 300; k++) {
        const key = `inbox-partition-${k}`;
        expect(channel.affinityProvider('chat.svc.MessageService', key)).toBe(
          pickByAffinity(eps, 0, key, null)!.key,
        );
      }
    } finally {
      await channel.close();
    }
  });
});
