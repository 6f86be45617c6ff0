/**
 * MySQL goes away for ~2 s (a TCP proxy between the chat servers and MariaDB cuts every
 * connection and resets new ones — what a MySQL restart looks like from the servers) while
 * users on two servers message each other: requests during the outage are answered with
 * errno 9 (no hang, no crash), the same servers serve again afterwards by themselves, and
 * nothing acknowledged is lost (the errno-9 sends, retried with their cmid, are stored once).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';
import {
  type ChatNode,
  checkDelivery,
  openTestStore,
  Peer,
  resendUnacked,
  ringTraffic,
  sleep,
  startChatNode,
  TcpProxy,
  uniquePrefix,
  waitConverged,
} from './support.js';

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const MYSQL = new URL(process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306');

describe('MySQL outage during traffic', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let nodes: ChatNode[] = [];
  let store: ChatStore;
  const prefix = uniquePrefix('mysql');
  const peers: Peer[] = [];

  beforeAll(async () => {
    db = await createTestMysqlUrl();
    proxy = await TcpProxy.start(MYSQL.hostname, MYSQL.port === '' ? 3306 : Number(MYSQL.port));
    const proxied = new URL(db.url);
    proxied.host = `127.0.0.1:${proxy.port}`;
    nodes = await Promise.all(
      [0, 1].map((i) => startChatNode({ db: proxied.toString(), redis: REDIS, prefix, serverId: `m${i}` })),
    );
    store = await openTestStore(db.url); // straight to MariaDB: the test's view is not cut
  }, 90_000);

  afterAll(async () => {
    for (const p of peers) p.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    await proxy?.close();
    await store?.close();
    await db?.drop();
  }, 60_000);

  it('answers errno 9 during the outage, recovers by itself, and loses nothing acknowledged', async () => {
    const stamp = `${process.pid}_${Date.now() % 1e6}`;
    const extra: Peer[] = [];
    for (let i = 0; i < 5; i++) {
      const node = nodes[i % 2]!;
      const p = await Peer.register(() => ({ host: '127.0.0.1', port: node.port }), `m${i}_${stamp}`);
      if (i < 4) {
        p.autoReconnect = true;
        await p.login(20_000);
        peers.push(p);
      } else extra.push(p);
    }
    const late = extra[0]!; // logs in only during the outage

    const traffic = ringTraffic(peers, 'm', 20);
    await sleep(1500);
    const downAt = Date.now();
    proxy.outage();

    // During the outage: chat sends, a login and a group creation all get errno 9, promptly.
    await sleep(300);
    const during: { what: string; errno: number; ms: number }[] = [];
    const timed = async (what: string, run: () => Promise<number>): Promise<void> => {
      const t0 = Date.now();
      const errno = await run();
      during.push({ what, errno, ms: Date.now() - t0 });
    };
    const loginClient = await ChatClient.connect({
      host: '127.0.0.1',
      port: nodes[1]!.port,
      requestTimeoutMs: 15_000,
    });
    const sender = peers[0]!;
    await Promise.all([
      timed('login', async () => (await loginClient.login(late.id, late.password)).errno),
      timed('chat', async () => {
        const r = await sender.send(peers[1]!.id, `outage-${sender.id}`);
        return r === 'lost' ? -1 : r;
      }),
      timed('register', async () => (await loginClient.register(`x_${stamp}`, 'pw')).errno),
    ]);
    await sleep(2000 - (Date.now() - downAt));
    proxy.restore();
    const upAt = Date.now();
    loginClient.destroy();
    for (const d of during) {
      expect(d.errno, `${d.what} during the outage`).toBe(9);
      expect(d.ms, `${d.what} took ${d.ms} ms`).toBeLessThan(10_000);
    }
    const failedDuring = peers
      .flatMap((p) => [...p.sent.values()])
      .filter((m) => m.failures.includes('errno 9'));
    expect(failedDuring.length).toBeGreaterThan(0);

    // Afterwards, the same processes serve again: traffic flows, a login succeeds.
    await sleep(2500);
    await traffic.stop();
    for (const n of nodes) expect(n.alive(), n.output()).toBe(true);
    const ackedAfter = peers.flatMap((p) => p.acked()).filter((m) => m.ackedAt! > upAt).length;
    expect(ackedAfter).toBeGreaterThan(0);
    late.address = () => ({ host: '127.0.0.1', port: nodes[1]!.port });
    await late.login(15_000);
    late.stop();

    // The errno-9 sends, retried with the same cmid, are stored once each.
    await resendUnacked(peers);
    for (const p of peers) expect(p.unacked().map((m) => m.body)).toEqual([]);
    await waitConverged(store, peers, 30_000);
    const result = await checkDelivery(store, peers);
    expect(result.problems).toEqual([]);
    const reconnects = peers.map((p) => p.logins.length - 1);
    console.log(
      `mysql outage: ${upAt - downAt} ms, ${failedDuring.length} sends answered errno 9 ` +
        `(${during.map((d) => `${d.what} ${d.ms} ms`).join(', ')}); ${ackedAfter} acked after it; ` +
        `${result.acked} acked, ${result.delivered} delivered; client reconnects ${reconnects.join(',')}; ` +
        `proxy refused ${proxy.refused}`,
    );
  }, 120_000);
});
