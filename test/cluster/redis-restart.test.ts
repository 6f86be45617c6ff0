/**
 * Redis restarted (SIGKILL, no persistence: every presence key and subscription gone) while
 * users on two servers message each other across them: the servers reconnect, resubscribe,
 * put their presence keys back and repair from the store. No acknowledged message is lost,
 * and pushes resume once Redis is back — well before the 30 s periodic repair.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';
import {
  type ChatNode,
  checkDelivery,
  openTestStore,
  Peer,
  PresenceReader,
  PrivateRedis,
  resendUnacked,
  ringTraffic,
  sleep,
  startChatNode,
  uniquePrefix,
  waitConverged,
  waitUntil,
} from './support.js';

describe('Redis restart during traffic', () => {
  let db: TestDatabase;
  let redis: PrivateRedis;
  let nodes: ChatNode[] = [];
  let store: ChatStore;
  const prefix = uniquePrefix('redis');
  const peers: Peer[] = [];

  beforeAll(async () => {
    db = await createTestMysqlUrl();
    redis = await PrivateRedis.start();
    nodes = await Promise.all(
      [0, 1].map((i) => startChatNode({ db: db.url, redis: redis.url, prefix, serverId: `r${i}` })),
    );
    store = await openTestStore(db.url);
  }, 90_000);

  afterAll(async () => {
    for (const p of peers) p.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await store?.close();
    await db?.drop();
  }, 60_000);

  it('loses no acknowledged message and resumes pushes after Redis comes back', async () => {
    const stamp = `${process.pid}_${Date.now() % 1e6}`;
    // Peer i lives on server i % 2: every ring message crosses servers through Redis.
    for (let i = 0; i < 8; i++) {
      const node = nodes[i % 2]!;
      const p = await Peer.register(() => ({ host: '127.0.0.1', port: node.port }), `r${i}_${stamp}`);
      p.autoReconnect = true;
      await p.login(20_000);
      peers.push(p);
    }
    const presence = new PresenceReader(redis.url, prefix);
    expect(await Promise.all(peers.map((p) => presence.serverOf(p.id)))).toEqual(
      peers.map((_, i) => `r${i % 2}`),
    );
    await presence.close();

    // Two rings, both crossing servers. `steady` keeps sending through the whole restart;
    // `quiet` stops while Redis is still down, so nothing but the servers' own resync (not
    // a later message revealing the gap, not the 30 s periodic repair) can deliver to it what
    // was committed during the outage.
    const steady = ringTraffic(peers.slice(0, 6), 'r', 20);
    const quietPeers = peers.slice(6);
    const quiet = ringTraffic(quietPeers, 'q', 20);
    await sleep(1500);
    await redis.kill();
    const downAt = Date.now();
    await sleep(1500);
    await quiet.stop();
    await sleep(500);
    await redis.spawn();
    const upAt = Date.now();
    const ackedWhileDown = peers
      .flatMap((p) => p.acked())
      .filter((m) => m.ackedAt! > downAt && m.ackedAt! < upAt);
    expect(ackedWhileDown.filter((m) => m.body.startsWith('q-')).length).toBeGreaterThan(0);
    expect(ackedWhileDown.filter((m) => m.body.startsWith('r-')).length).toBeGreaterThan(0);
    await waitConverged(store, quietPeers, 12_000);
    const caughtUpAfter = Date.now() - upAt;
    await sleep(2000);
    await steady.stop();
    const ackedAfter = peers.flatMap((p) => p.acked()).filter((m) => m.ackedAt! > upAt).length;
    expect(ackedAfter).toBeGreaterThan(0);
    await waitConverged(store, peers, 12_000);

    // After the restart: one fresh message per user, across servers, is pushed live.
    const probeSentAt = Date.now();
    const probes = await Promise.all(
      peers.map((p, i) => p.send(peers[(i + 1) % peers.length]!.id, `probe-${p.id}`)),
    );
    expect(probes).toEqual(peers.map(() => 0));
    await waitUntil(
      () => peers.every((p) => p.received.some((r) => r.msg.startsWith('probe-'))),
      'every probe to be pushed',
      10_000,
    );
    const probeLatency = Date.now() - probeSentAt;

    await resendUnacked(peers);
    for (const p of peers) expect(p.unacked().map((m) => m.body)).toEqual([]);
    await waitConverged(store, peers, 20_000);
    const result = await checkDelivery(store, peers);
    expect(result.problems).toEqual([]);
    const reconnects = peers.map((p) => p.logins.length - 1);
    console.log(
      `redis restart: down ${upAt - downAt} ms, ${ackedWhileDown.length} messages acked meanwhile, ` +
        `${ackedAfter} after; quiet inboxes caught up ${caughtUpAfter} ms after it was back; probes pushed within ${probeLatency} ms; ` +
        `${result.acked} acked, ${result.delivered} delivered; client reconnects ${reconnects.join(',')}`,
    );
    for (const n of nodes) expect(n.alive(), n.output()).toBe(true);
  }, 120_000);
});
