/**
 * A chat server killed with SIGKILL while clients send through Nginx: clients reconnect
 * (through Nginx, to the survivor) and log in with their lastseq; no acknowledged message is
 * lost, no inbox has a gap, and the dead server's users are free to log in — and shown
 * offline — within 30 s (the presence keys expire; default TTL 15 s).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { type LocalCluster, stopProcess } from '../../src/app/cluster/localCluster.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { createTestMysqlUrl } from '../helpers/db.js';
import {
  type Address,
  checkDelivery,
  openTestStore,
  Peer,
  PresenceReader,
  resendUnacked,
  ringTraffic,
  sleep,
  startChatNode,
  startTwoServerCluster,
  type TwoServerCluster,
  uniquePrefix,
  waitConverged,
  waitUntil,
} from './support.js';

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const FREE_WITHIN_MS = 30_000;

describe('SIGKILL of one of two servers behind Nginx', () => {
  let env: TwoServerCluster;
  let cluster: LocalCluster;
  let store: ChatStore;
  let presence: PresenceReader;
  let logs: string[];
  const prefix = uniquePrefix('kill');
  const peers: Peer[] = [];

  beforeAll(async () => {
    env = await startTwoServerCluster(prefix);
    ({ cluster, store, presence, logs } = env);
  }, 90_000);

  afterAll(async () => {
    for (const p of peers) p.stop();
    await env?.dispose();
  }, 60_000);

  it('loses no acknowledged message, leaves no gap, and frees the dead server’s users within 30 s', async () => {
    const viaNginx = (): Address => cluster.address;
    const stamp = `${process.pid}_${Date.now() % 1e6}`;
    for (let i = 0; i < 6; i++) peers.push(await Peer.register(viaNginx, `k${i}_${stamp}`));
    // A user left on the doomed server that never comes back, and a friend who watches it.
    const bystander = await Peer.register(
      () => ({ host: '127.0.0.1', port: cluster.servers[1]!.port }),
      `kb_${stamp}`,
    );
    const watcher = await Peer.register(viaNginx, `kw_${stamp}`);
    await watcher.login();
    expect((await watcher.client!.addFriend(bystander.id)).errno).toBe(0);
    watcher.stop();
    await bystander.login();
    expect(await presence.serverOf(bystander.id)).toBe('server-1');

    for (const p of peers) {
      p.autoReconnect = true;
      await p.login(20_000);
    }
    const where = await Promise.all(peers.map((p) => presence.serverOf(p.id)));
    const victims = peers.filter((_, i) => where[i] === 'server-1');
    expect(victims.length).toBeGreaterThan(0);
    expect(victims.length).toBeLessThan(peers.length);

    const traffic = ringTraffic(peers, 'k', 20);
    await sleep(1500);
    const killedAt = Date.now();
    await stopProcess(cluster.servers[1]!.process, 'SIGKILL');

    // Victims reconnect through Nginx (to server-0) and retry login until their keys expire.
    await waitUntil(
      () => victims.every((v) => v.logins.some((t) => t > killedAt)),
      () => `victims to log in again: ${victims.map((v) => `${v.id}:${JSON.stringify(v.loginFailures)}`)}`,
      FREE_WITHIN_MS + 5000,
    );
    const delays = victims.map((v) => v.logins.find((t) => t > killedAt)! - killedAt);
    expect(Math.max(...delays)).toBeLessThan(FREE_WITHIN_MS);
    for (const v of victims) expect(await presence.serverOf(v.id)).toBe('server-0');

    // The bystander is shown offline to its friend (login ack friend list) within 30 s too.
    let shownOfflineAfter = -1;
    while (Date.now() - killedAt < FREE_WITHIN_MS + 5000) {
      const c = await ChatClient.connect({ ...viaNginx(), requestTimeoutMs: 10_000 });
      const ack = await c.login(watcher.id, watcher.password);
      c.destroy();
      expect(ack.errno).toBe(0);
      const friend = ack.friends.find((f) => f.id === bystander.id);
      expect(friend).toBeDefined();
      if (friend!.state === 'offline') {
        shownOfflineAfter = Date.now() - killedAt;
        break;
      }
      await sleep(1000);
    }
    expect(shownOfflineAfter, 'the dead server’s user still shown online').toBeGreaterThanOrEqual(0);
    expect(shownOfflineAfter).toBeLessThan(FREE_WITHIN_MS);

    // Everyone talks on the survivor for a while, then the unacknowledged are retried (same cmid).
    await sleep(1000);
    await traffic.stop();
    const retried = peers.flatMap((p) => p.unacked()).length;
    await resendUnacked(peers);
    for (const p of peers) expect(p.unacked().map((m) => m.body)).toEqual([]);
    await waitConverged(store, peers, 30_000);
    const result = await checkDelivery(store, peers);
    expect(result.problems).toEqual([]);
    expect(result.acked).toBeGreaterThan(50);
    console.log(
      `kill: ${victims.length} users moved; logged in again after ${delays.join(', ')} ms; ` +
        `bystander shown offline after ${shownOfflineAfter} ms; ${retried} unacknowledged sends retried (same cmid); ` +
        `${result.acked} acked, ${result.delivered} delivered`,
    );
    expect(cluster.servers[0]!.process.exitCode, logs[0]).toBeNull();
  }, 120_000);
});

describe('a server killed and restarted with the same --server-id', () => {
  it('lets its users log in again at once (its own stale presence keys do not lock them out)', async () => {
    const db = await createTestMysqlUrl();
    const prefix = uniquePrefix('restart');
    let node = await startChatNode({ db: db.url, redis: REDIS, prefix, serverId: 'same' });
    const presence = new PresenceReader(REDIS, prefix);
    const store = await openTestStore(db.url);
    const address = (): Address => ({ host: '127.0.0.1', port: node.port });
    const a = await Peer.register(address, `sa_${process.pid}_${Date.now() % 1e6}`);
    const b = await Peer.register(address, `sb_${process.pid}_${Date.now() % 1e6}`);
    try {
      await a.login();
      await b.login();
      expect(await b.send(a.id, 'before')).toBe(0);
      await waitUntil(() => a.received.length === 1, 'the first message', 10_000);
      await node.kill();
      a.drop();
      b.drop();
      expect(await presence.serverOf(a.id)).toBe('same'); // the dead run's key is still there
      node = await startChatNode({ db: db.url, redis: REDIS, prefix, serverId: 'same' });
      const t0 = Date.now();
      expect(await a.loginOnce()).toBe(0);
      expect(await b.loginOnce()).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await b.send(a.id, 'after')).toBe(0);
      await waitConverged(store, [a], 10_000);
      expect(a.received.map((r) => r.msg)).toEqual(['before', 'after']);
      expect((await checkDelivery(store, [a, b])).problems).toEqual([]);
    } finally {
      a.stop();
      b.stop();
      await node.stop();
      await presence.close();
      await store.close();
      await db.drop();
    }
  }, 90_000);
});
