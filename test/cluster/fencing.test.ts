/**
 * Presence fencing (RedisCluster with epochs) on the real Redis: a gateway incarnation that is
 * gone from the registry has its users released by a survivor at once, exactly one survivor
 * cleans up after it, and the incarnation cannot keep or take users afterwards (a gateway that
 * was only cut off from ZooKeeper). A later incarnation of the same server id is not affected.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RedisCluster } from '../../src/app/cluster/RedisCluster.js';
import { recordingSession } from '../helpers/recordingSession.js';
import { TEST_REDIS, uniquePrefix, waitUntil } from './support.js';

const redis = new Redis(TEST_REDIS, { maxRetriesPerRequest: 2 });
const running: RedisCluster[] = [];

afterEach(async () => {
  for (const c of running.splice(0)) await c.stop();
});

afterAll(() => {
  redis.disconnect();
});

async function gateway(
  prefix: string,
  serverId: string,
  epoch: string | undefined,
  gone: string[] = [],
  presenceTtlMs = 15_000,
): Promise<RedisCluster> {
  const cluster = new RedisCluster({
    url: TEST_REDIS,
    serverId,
    ...(epoch === undefined ? {} : { epoch }),
    prefix,
    presenceTtlMs,
    // What the store would reset: one incarnation, or every one ('*').
    onServerGone: async (id, gotEpoch) => {
      gone.push(`${id}|${gotEpoch ?? '*'}`);
    },
    log: () => {},
  });
  await cluster.start();
  running.push(cluster);
  return cluster;
}

describe('presence fencing', () => {
  it('releases a gone incarnation’s users at once; one survivor cleans up; the fenced one cannot claim', async () => {
    const prefix = uniquePrefix('fence');
    const goneA: string[] = [];
    const goneB: string[] = [];
    const dead = await gateway(prefix, 'g1', 'e1');
    const a = await gateway(prefix, 'g2', 'x', goneA);
    const b = await gateway(prefix, 'g3', 'y', goneB);
    const held = [recordingSession(), recordingSession()];
    expect(await dead.claim(101, held[0]!)).toBe(true);
    expect(await dead.claim(102, held[1]!)).toBe(true);
    expect(await redis.get(`${prefix}:presence:101`)).toBe('g1|e1');
    // Still held: nobody else may log these users in.
    expect(await a.claim(101, recordingSession())).toBe(false);

    // Both survivors see g1's registry node go; exactly one cleans up (the store reset).
    await Promise.all([a.serverGone('g1', 'e1'), b.serverGone('g1', 'e1')]);
    expect([...goneA, ...goneB]).toEqual(['g1|e1']);
    expect(await redis.get(`${prefix}:presence:101`)).toBeNull();
    expect(await a.claim(101, recordingSession())).toBe(true);
    expect(await redis.get(`${prefix}:presence:101`)).toBe('g2|x');

    // g1 was only cut off: it finds out at its next claim and closes every local session.
    expect(await dead.claim(103, recordingSession())).toBe(false);
    expect(held.map((s) => s.closedByServer())).toEqual([true, true]);
    expect(await redis.get(`${prefix}:presence:103`)).toBeNull();
    // ...and it never takes back a released user.
    expect(await dead.claim(102, recordingSession())).toBe(false);
    expect(await redis.get(`${prefix}:presence:102`)).toBeNull();

    // With a new epoch (its next ZooKeeper session) it serves again.
    dead.dropAll('new session', 'e2');
    expect(await dead.claim(102, recordingSession())).toBe(true);
    expect(await redis.get(`${prefix}:presence:102`)).toBe('g1|e2');
  });

  it('a fenced incarnation closes its sessions at its next refresh, without any login', async () => {
    const prefix = uniquePrefix('fence');
    // 3 s TTL: refreshed every second.
    const cut = await gateway(prefix, 'g1', 'e1', [], 3000);
    const survivor = await gateway(prefix, 'g2', 'x');
    const held = recordingSession();
    expect(await cut.claim(7, held)).toBe(true);
    await survivor.serverGone('g1', 'e1');
    await waitUntil(() => held.closedByServer(), 'the fenced gateway to close its session', 5000);
  });

  it('the refresh keeps every key in chunks, re-takes lost ones, and gives up a user held elsewhere', async () => {
    const prefix = uniquePrefix('fence');
    // 3 s TTL: refreshed every second.
    const g = await gateway(prefix, 'g1', 'e1', [], 3000);
    const users = Array.from({ length: 1200 }, (_, i) => 1000 + i);
    const sessions = users.map(() => recordingSession());
    for (const [i, u] of users.entries()) expect(await g.claim(u, sessions[i]!)).toBe(true);
    // As after a Redis restart: every key and the member set gone; one user taken by another server.
    await redis.del(...users.map((u) => `${prefix}:presence:${u}`), `${prefix}:members:g1|e1`);
    await redis.set(`${prefix}:presence:1500`, 'g2|x');
    await waitUntil(
      () => sessions[500]!.closedByServer(),
      'the session of the user held elsewhere to close',
      5000,
    );
    const values = await redis.mget(...users.map((u) => `${prefix}:presence:${u}`));
    expect(values.filter((v) => v === 'g1|e1')).toHaveLength(1199);
    expect(values[500]).toBe('g2|x');
    expect(await redis.scard(`${prefix}:members:g1|e1`)).toBe(1199);
    expect(await redis.pttl(`${prefix}:presence:1000`)).toBeGreaterThan(1000);
    expect(sessions.filter((s) => s.closedByServer())).toHaveLength(1);
  });

  it('fencing an old incarnation leaves the users of the restarted server alone, in Redis and the store', async () => {
    const prefix = uniquePrefix('fence');
    const gone: string[] = [];
    const old = await gateway(prefix, 'g1', 'old');
    expect(await old.claim(5, recordingSession())).toBe(true);
    // Restarted with the same id (a new epoch) before the old session timed out: it takes the
    // old run's key over, and gets a new user.
    const restarted = await gateway(prefix, 'g1', 'new');
    expect(await restarted.claim(5, recordingSession())).toBe(true);
    expect(await restarted.claim(6, recordingSession())).toBe(true);
    const survivor = await gateway(prefix, 'g2', 'x', gone);
    await survivor.serverGone('g1', 'old');
    expect(await redis.mget(`${prefix}:presence:5`, `${prefix}:presence:6`)).toEqual(['g1|new', 'g1|new']);
    // The store cleanup names the old incarnation only (the restarted one records `g1|new`).
    expect(gone).toEqual(['g1|old']);
    expect(restarted.holder).toBe('g1|new');
  });

  it('told that its own earlier epoch is gone, a server releases those keys and cleans up that epoch only', async () => {
    const prefix = uniquePrefix('fence');
    const gone: string[] = [];
    const g = await gateway(prefix, 'g1', 'old', gone);
    expect(await g.claim(11, recordingSession())).toBe(true);
    // Its session expired: sessions dropped, new epoch; a user logs in again at once.
    g.dropAll('session expired', 'new');
    expect(await g.claim(12, recordingSession())).toBe(true);
    // Its own directory then reports the old node removed.
    await g.serverGone('g1', 'old');
    expect(await redis.mget(`${prefix}:presence:11`, `${prefix}:presence:12`)).toEqual([null, 'g1|new']);
    expect(gone).toEqual(['g1|old']);
  });

  it('without epochs (chat-server’s cluster), a clean stop releases its users and the same id serves again', async () => {
    const prefix = uniquePrefix('fence');
    const first = await gateway(prefix, 'server-0', undefined);
    expect(await first.claim(3, recordingSession())).toBe(true);
    running.splice(running.indexOf(first), 1);
    await first.stop();
    expect(await redis.get(`${prefix}:presence:3`)).toBeNull();
    const again = await gateway(prefix, 'server-0', undefined);
    expect(await again.claim(3, recordingSession())).toBe(true);
    expect(await redis.get(`${prefix}:presence:3`)).toBe('server-0|');
  });

  it('a clean stop fences itself: survivors that see it leave do not clean up after it', async () => {
    const prefix = uniquePrefix('fence');
    const gone: string[] = [];
    const leaving = await gateway(prefix, 'g1', 'e1');
    const survivor = await gateway(prefix, 'g2', 'x', gone);
    expect(await leaving.claim(9, recordingSession())).toBe(true);
    await leaving.retire();
    await survivor.serverGone('g1', 'e1');
    expect(gone).toEqual([]);
    // It still releases its own users when it stops.
    running.splice(running.indexOf(leaving), 1);
    await leaving.stop();
    expect(await redis.get(`${prefix}:presence:9`)).toBeNull();
  });
});
