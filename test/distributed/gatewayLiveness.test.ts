/**
 * A gateway's liveness wiring (watchGatewayLiveness) on a real ZooKeeper and the real Redis, two
 * gateways in this process. One cut off from ZooKeeper (but not Redis) past its session: the
 * other releases its users and fences that incarnation; it closes its sessions at its next
 * presence refresh and takes nobody while fenced; back, it learns of the expiry, takes a new
 * epoch and registers with it. A gateway that leaves the registry has its users released by the
 * survivor.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisCluster } from '../../src/app/cluster/RedisCluster.js';
import { GatewayDirectory, GatewayRegistrar } from '../../src/app/distributed/GatewayRegistry.js';
import { newEpoch, watchGatewayLiveness } from '../../src/app/distributed/gatewayLiveness.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { ZkSession } from '../../src/rpc/registry/ZkSession.js';
import { TEST_REDIS, uniquePrefix, waitUntil } from '../cluster/support.js';
import { recordingSession } from '../helpers/recordingSession.js';
import { TcpProxy } from '../helpers/tcpProxy.js';
import { startZooKeeper, type ZooKeeperHandle } from '../helpers/zookeeper.js';

let zk: ZooKeeperHandle;
const redis = new Redis(TEST_REDIS, { maxRetriesPerRequest: 2 });
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  zk = await startZooKeeper();
}, 60_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  redis.disconnect();
  await zk?.dispose();
});

/** What chat-gateway wires: a registry session, presence with an epoch, the registrar, liveness. */
const trace: string[] = [];

async function gateway(
  root: string,
  prefix: string,
  id: string,
  gone: string[],
  options: { zookeeper?: string; presenceTtlMs?: number } = {},
) {
  const zkSession = new ZkSession({
    connect: options.zookeeper ?? zk.connectString,
    sessionTimeoutMs: 4000,
    spinDelayMs: 50,
  });
  const cluster = new RedisCluster({
    url: TEST_REDIS,
    serverId: id,
    epoch: newEpoch(),
    prefix,
    ...(options.presenceTtlMs === undefined ? {} : { presenceTtlMs: options.presenceTtlMs }),
    onServerGone: async (gid, epoch) => {
      gone.push(`${gid}|${epoch ?? '*'}`);
    },
    log: (_l, m) => trace.push(`${Date.now() % 100000} ${id} ${m}`),
  });
  for (const e of ['expired', 'session', 'disconnected', 'connected'])
    zkSession.on(e, () => trace.push(`${Date.now() % 100000} ${id} zk ${e}`));
  await cluster.start();
  const registrar = new GatewayRegistrar({
    session: zkSession,
    root,
    id,
    host: '127.0.0.1',
    port: 7000,
    connections: () => 0,
    epoch: () => cluster.epoch,
  });
  await registrar.start(10_000);
  // No provider is ever lost here; the channel is what the gateway hands over.
  const channel = new RpcChannel({ providers: ['127.0.0.1:9'] });
  const liveness = watchGatewayLiveness({ session: zkSession, root, cluster, channel, log: () => {} });
  cleanups.push(async () => {
    liveness.close();
    await registrar.stop();
    await zkSession.close();
    await cluster.stop();
    await channel.close();
  });
  return { zkSession, cluster, registrar, liveness };
}

describe('gateway liveness', () => {
  it('a gateway cut off from ZooKeeper (not Redis) past its session: released and fenced at once; back, it takes a new epoch', async () => {
    const root = `/liveness-${process.pid}-1`;
    const prefix = uniquePrefix('live');
    const goneB: string[] = [];
    const proxy = await TcpProxy.start('127.0.0.1', zk.port);
    cleanups.push(() => proxy.close());
    // ga reaches ZooKeeper through the proxy; its presence is refreshed every second.
    const a = await gateway(root, prefix, 'ga', [], {
      zookeeper: `127.0.0.1:${proxy.port}`,
      presenceTtlMs: 3000,
    });
    const b = await gateway(root, prefix, 'gb', goneB);
    await b.liveness.waitKnown(10_000);
    const held = recordingSession();
    expect(await a.cluster.claim(41, held)).toBe(true);
    const first = a.cluster.epoch;
    expect(await redis.get(`${prefix}:presence:41`)).toBe(`ga|${first}`);
    const watcher = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 4000 });
    cleanups.push(() => watcher.close());
    const directory = new GatewayDirectory(watcher, root);
    cleanups.push(() => directory.close());
    await waitUntil(() => directory.get('ga')?.epoch === first, 'ga listed with its epoch', 10_000);

    proxy.outage();
    // Its session ends (4 s): gb releases its user and fences that incarnation, cleaning up once.
    await waitUntil(
      async () => (await redis.get(`${prefix}:presence:41`)) === null,
      () => `the cut-off gateway's user released\n${trace.join('\n')}`,
      15_000,
    );
    expect(await redis.exists(`${prefix}:fenced:ga|${first}`)).toBe(1);
    await waitUntil(() => goneB.length > 0, 'gb to clean up the store after ga', 5000);
    expect(goneB).toEqual([`ga|${first}`]);
    // ga still runs and still reaches Redis: its next refresh finds the fence and closes its
    // sessions, and it cannot take anybody while fenced.
    await waitUntil(() => held.closedByServer(), 'the fenced gateway to close its sessions', 5000);
    expect(await a.cluster.claim(42, recordingSession())).toBe(false);
    expect(await redis.get(`${prefix}:presence:42`)).toBeNull();

    // Back: it learns that its session expired, takes a new epoch, registers with it, serves.
    proxy.restore();
    await waitUntil(
      () => a.cluster.epoch !== first,
      () => `ga to take a new epoch\n${trace.join('\n')}`,
      20_000,
    );
    await waitUntil(
      () => directory.get('ga')?.epoch === a.cluster.epoch,
      'ga listed again with its new epoch',
      15_000,
    );
    expect(await a.cluster.claim(41, recordingSession())).toBe(true);
    expect(await redis.get(`${prefix}:presence:41`)).toBe(`ga|${a.cluster.epoch}`);
  }, 60_000);

  it('a gateway that leaves the registry has its users released by the survivor', async () => {
    const root = `/liveness-${process.pid}-2`;
    const prefix = uniquePrefix('live');
    const gone: string[] = [];
    const a = await gateway(root, prefix, 'ga', []);
    const b = await gateway(root, prefix, 'gb', gone);
    expect(await a.cluster.claim(51, recordingSession())).toBe(true);
    // Its node goes without a clean stop of its presence (as when its session ends).
    await b.liveness.waitKnown(10_000);
    await a.registrar.stop();
    await waitUntil(
      async () => (await redis.get(`${prefix}:presence:51`)) === null,
      'the survivor to release user 51',
      10_000,
    );
    await waitUntil(() => gone.length > 0, 'the survivor to clean up the store after ga', 5000);
    // That incarnation only: a restart of 'ga' keeps the users it holds.
    expect(gone).toEqual([`ga|${a.cluster.epoch}`]);
  }, 60_000);
});
