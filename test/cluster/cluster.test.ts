/**
 * A cluster on one machine: chat servers sharing one MariaDB database and one Redis, behind a
 * private Nginx (stream) — users on different servers (and on different workers of one server)
 * exchange one-to-one and group messages, framed and legacy, and each gets everything in
 * order, once.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LegacyClient } from '../../src/app/client/LegacyClient.js';
import type { LocalCluster } from '../../src/app/cluster/localCluster.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';
import {
  type Address,
  type ChatNode,
  checkDelivery,
  openTestStore,
  Peer,
  PresenceReader,
  startChatNode,
  startTwoServerCluster,
  type TwoServerCluster,
  uniquePrefix,
  waitConverged,
  waitUntil,
} from './support.js';

const REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Per recipient: the indices of each sender's bodies `${tag}-${sender}-${i}` must increase. */
function perSenderOrder(peer: Peer, tag: string): string[] {
  const last = new Map<number, number>();
  const problems: string[] = [];
  for (const push of peer.received) {
    const m = new RegExp(`^${tag}-(\\d+)-(\\d+)$`).exec(push.msg);
    if (m === null) continue;
    const from = Number(m[1]);
    const i = Number(m[2]);
    if ((last.get(from) ?? -1) >= i)
      problems.push(`user ${peer.id}: ${push.msg} after index ${last.get(from)}`);
    last.set(from, i);
  }
  return problems;
}

describe('two chat servers + Nginx, one MariaDB, one Redis', () => {
  let env: TwoServerCluster;
  let cluster: LocalCluster;
  let store: ChatStore;
  let presence: PresenceReader;
  const prefix = uniquePrefix('two');
  const peers: Peer[] = [];
  const legacies: LegacyClient[] = [];
  let viaNginx: () => Address;
  let direct: (i: number) => () => Address;

  beforeAll(async () => {
    env = await startTwoServerCluster(prefix);
    ({ cluster, store, presence } = env);
    viaNginx = () => cluster.address;
    direct = (i) => () => ({ host: '127.0.0.1', port: cluster.servers[i]!.port });
  }, 90_000);

  afterAll(async () => {
    for (const p of peers) p.stop();
    for (const l of legacies) l.destroy();
    await env?.dispose();
  }, 60_000);

  it('routes users to both servers and delivers one-to-one and group messages to each, in order, once', async () => {
    // Two users straight on each server, four through Nginx (least_conn spreads them).
    const plan: (() => Address)[] = [direct(0), direct(0), direct(1), direct(1)];
    for (let i = 0; i < 4; i++) plan.push(viaNginx);
    const mine: Peer[] = [];
    for (const [i, address] of plan.entries()) {
      const p = await Peer.register(viaNginx, `two_${process.pid}_${i}_${Date.now() % 1e6}`);
      p.address = address;
      await p.login(20_000);
      mine.push(p);
    }
    peers.push(...mine);
    const where = await Promise.all(mine.map((p) => presence.serverOf(p.id)));
    expect(where.slice(0, 4)).toEqual(['server-0', 'server-0', 'server-1', 'server-1']);
    expect(new Set(where.slice(4))).toEqual(new Set(['server-0', 'server-1']));

    // One-to-one: everybody to everybody, 5 each, pipelined.
    const perPair = 5;
    await Promise.all(
      mine.flatMap((from) =>
        mine
          .filter((to) => to !== from)
          .flatMap((to) =>
            Array.from({ length: perPair }, (_, i) => from.send(to.id, `one-${from.id}-${to.id * 1000 + i}`)),
          ),
      ),
    );
    // Group: created on server-0, joined from everywhere, 3 messages per member.
    const group = await mine[0]!.client!.createGroup(`g_${prefix}`.slice(0, 50), 'cluster test');
    expect(group.errno).toBe(0);
    for (const p of mine.slice(1)) expect((await p.client!.joinGroup(group.groupid)).errno).toBe(0);
    const perMember = 3;
    await Promise.all(
      mine.flatMap((from) =>
        Array.from({ length: perMember }, (_, i) => from.send(group.groupid, `grp-${from.id}-${i}`, 'group')),
      ),
    );
    for (const p of mine) expect(p.unacked().map((m) => `${m.body}: ${m.failures.join(', ')}`)).toEqual([]);

    await waitConverged(store, mine, 30_000);
    const members = new Map([[group.groupid, mine.map((p) => p.id)]]);
    const result = await checkDelivery(store, mine, members);
    expect(result.problems).toEqual([]);
    const each = (mine.length - 1) * (perPair + perMember);
    for (const p of mine) {
      expect(p.received.length).toBe(each);
      expect(p.received.map((r) => r.seq)).toEqual(Array.from({ length: each }, (_, i) => i + 1));
      expect(perSenderOrder(p, 'one')).toEqual([]);
      expect(perSenderOrder(p, 'grp')).toEqual([]);
    }
    expect(result.acked).toBe(mine.length * ((mine.length - 1) * perPair + perMember));
    for (const p of mine) expect(p.client!.stats.gaps + p.client!.stats.duplicates).toBe(0);
    for (const p of mine) p.stop();
  }, 90_000);

  it('routes a notification only to the server holding the recipient, and none for an offline one', async () => {
    const stamp = `${process.pid}_${Date.now() % 1e6}`;
    const a = await Peer.register(viaNginx, `ra_${stamp}`);
    const b = await Peer.register(viaNginx, `rb_${stamp}`);
    const offline = await Peer.register(viaNginx, `rc_${stamp}`);
    peers.push(a, b, offline);
    a.address = direct(0);
    b.address = direct(1);
    await a.login();
    await b.login();
    const seen: { channel: string; users: number[] }[] = [];
    const spy = new Redis(REDIS, { maxRetriesPerRequest: 2 });
    try {
      spy.on('pmessage', (_pattern: string, channel: string, message: string) => {
        seen.push({ channel, users: (JSON.parse(message) as { u: number }[]).map((n) => n.u) });
      });
      await spy.psubscribe(`${prefix}:server:*`);
      expect(await a.send(b.id, 'routed-1')).toBe(0);
      expect(await a.send(offline.id, 'routed-2')).toBe(0);
      expect(await b.send(b.id, 'routed-3')).toBe(0); // to oneself: local, no Redis at all
      await waitUntil(() => b.received.length === 2, 'b to get its two messages', 15_000);
      // Barriers: one more message from each server. A server publishes in order on its one
      // Redis connection, so once these two are seen, anything published before them has been.
      expect(await a.send(b.id, 'barrier-0')).toBe(0);
      expect(await b.send(a.id, 'barrier-1')).toBe(0);
      await waitUntil(() => seen.length >= 3, 'the barrier notifications', 15_000);
      expect(seen).toEqual([
        { channel: `${prefix}:server:server-1`, users: [b.id] },
        { channel: `${prefix}:server:server-1`, users: [b.id] },
        { channel: `${prefix}:server:server-0`, users: [a.id] },
      ]);
      await waitUntil(() => b.received.length === 3, 'b to get the barrier', 15_000);
      expect(b.received.map((r) => r.msg)).toEqual(['routed-1', 'routed-3', 'barrier-0']);
    } finally {
      spy.disconnect();
      a.stop();
      b.stop();
    }
  }, 60_000);

  it('serves the classic (legacy JSON\\0) client through Nginx, across servers, live and offline', async () => {
    const framed = await Peer.register(viaNginx, `fr_${process.pid}_${Date.now() % 1e6}`);
    peers.push(framed);
    const name = `lg_${process.pid}_${Date.now() % 1e6}`;
    const connectLegacy = async (): Promise<LegacyClient> => {
      const c = await LegacyClient.connect({ host: cluster.address.host, port: cluster.address.port });
      legacies.push(c);
      return c;
    };
    let legacy = await connectLegacy();
    const reg = await legacy.register(name, 'pw', 10_000);
    expect(reg.errno).toBe(0);
    const legacyId = reg.id as number;
    const login = await legacy.login(legacyId, 'pw', 10_000);
    expect(login.errno).toBe(0);
    const legacyServer = await presence.serverOf(legacyId);
    expect(legacyServer).toMatch(/^server-[01]$/);
    // The framed user goes straight to the other server.
    framed.address = direct(legacyServer === 'server-0' ? 1 : 0);
    await framed.login(20_000);
    const framedServer = await presence.serverOf(framed.id);
    expect(framedServer).not.toBeNull();
    expect(framedServer).not.toBe(legacyServer);

    // framed → legacy, live, across servers: a classic msgid 6 push.
    expect(await framed.send(legacyId, 'to-legacy-1')).toBe(0);
    const push = await legacy.waitFor((m) => m.msgid === 6 && m.msg === 'to-legacy-1', 15_000);
    expect(push).toMatchObject({ msgid: 6, id: framed.id, toid: legacyId, msg: 'to-legacy-1' });

    // legacy → framed: classic request bytes, framed push with seq 1.
    legacy.chat(framed.id, 'from-legacy-1');
    await waitUntil(() => framed.received.length === 1, 'the legacy message to arrive', 15_000);
    expect(framed.received[0]).toMatchObject({ seq: 1, id: legacyId, toid: framed.id, msg: 'from-legacy-1' });

    // legacy goes offline; a message for it waits in the store; the next login (through
    // Nginx, whichever server) hands it over in offlinemsg.
    legacy.loginout();
    await legacy.close();
    await waitUntil(async () => (await presence.serverOf(legacyId)) === null, 'legacy user offline', 15_000);
    expect(await framed.send(legacyId, 'to-legacy-offline')).toBe(0);
    legacy = await connectLegacy();
    const again = await legacy.login(legacyId, 'pw', 10_000);
    expect(again.errno).toBe(0);
    const offline = ((again.offlinemsg as string[] | undefined) ?? []).map(
      (s) => JSON.parse(s) as { msg: string },
    );
    expect(offline.map((m) => m.msg)).toEqual(['to-legacy-offline']);
    framed.stop();
    legacy.destroy();
  }, 90_000);
});

describe('chat-server --workers 2 --redis: one server, two processes', () => {
  let db: TestDatabase;
  let node: ChatNode;
  let store: ChatStore;
  let presence: PresenceReader;
  const prefix = uniquePrefix('workers');
  const peers: Peer[] = [];

  beforeAll(async () => {
    db = await createTestMysqlUrl();
    node = await startChatNode({ db: db.url, redis: REDIS, prefix, serverId: 'wk', workers: 2 });
    store = await openTestStore(db.url);
    presence = new PresenceReader(REDIS, prefix);
  }, 90_000);

  afterAll(async () => {
    for (const p of peers) p.stop();
    await node?.stop();
    await presence?.close();
    await store?.close();
    await db?.drop();
  }, 60_000);

  it('delivers between clients on different workers', async () => {
    const address = (): Address => ({ host: '127.0.0.1', port: node.port });
    // Connections are spread over the workers (round robin); log users in until both hold one.
    for (let i = 0; i < 6; i++)
      peers.push(await Peer.register(address, `wk_${process.pid}_${i}_${Date.now() % 1e6}`));
    const byWorker = new Map<string, Peer>();
    for (const p of peers) {
      if (byWorker.size === 2) break;
      await p.login(20_000);
      const at = await presence.serverOf(p.id);
      expect(at).toMatch(/^wk\/w[01]$/);
      if (!byWorker.has(at!)) byWorker.set(at!, p);
    }
    expect([...byWorker.keys()].sort()).toEqual(['wk/w0', 'wk/w1']);
    const a = byWorker.get('wk/w0')!;
    const b = byWorker.get('wk/w1')!;
    const n = 20;
    await Promise.all([
      ...Array.from({ length: n }, (_, i) => a.send(b.id, `wk-${a.id}-${i}`)),
      ...Array.from({ length: n }, (_, i) => b.send(a.id, `wk-${b.id}-${i}`)),
    ]);
    expect(a.unacked().length + b.unacked().length).toBe(0);
    await waitConverged(store, [a, b], 20_000);
    const result = await checkDelivery(store, [a, b]);
    expect(result.problems).toEqual([]);
    for (const [p, from] of [
      [a, b],
      [b, a],
    ] as const) {
      expect(p.received.map((r) => r.msg)).toEqual(Array.from({ length: n }, (_, i) => `wk-${from.id}-${i}`));
      expect(p.received.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    }
    const log = node.output();
    expect(node.alive(), log).toBe(true);
  }, 90_000);
});
