/**
 * The gateway registry on a real ZooKeeper (standalone, then a three-node ensemble): a
 * registrar's node and its record, connection counts reported at a bounded rate and only when
 * changed, the directory's added/updated/removed events (clean stop, session expiry and
 * re-registration), and an ensemble that keeps working with one member stopped.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeGateway,
  GatewayDirectory,
  type GatewayRecord,
  GatewayRegistrar,
  gatewayPath,
} from '../../src/app/distributed/GatewayRegistry.js';
import { ZkSession } from '../../src/rpc/registry/ZkSession.js';
import { startZooKeeper, startZooKeeperEnsemble, type ZooKeeperHandle } from '../helpers/zookeeper.js';
import { expireSession, startZkProxy } from '../rpc/zkTools.js';

let zk: ZooKeeperHandle;
const cleanups: (() => Promise<void> | void)[] = [];
let rootSeq = 0;

beforeAll(async () => {
  zk = await startZooKeeper();
}, 60_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await zk?.dispose();
});

const root = (): string => `/gw-test-${process.pid}-${++rootSeq}`;

function session(connect = zk.connectString, sessionTimeoutMs = 4000): ZkSession {
  const s = new ZkSession({ connect, sessionTimeoutMs, spinDelayMs: 50 });
  cleanups.push(() => s.close());
  return s;
}

/** Every event of a directory, in order. */
function record(directory: GatewayDirectory): { type: string; gateway: GatewayRecord }[] {
  const events: { type: string; gateway: GatewayRecord }[] = [];
  for (const type of ['added', 'updated', 'removed'] as const) {
    directory.on(type, (gateway) => events.push({ type, gateway }));
  }
  return events;
}

async function eventually(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function registrar(
  s: ZkSession,
  base: string,
  id: string,
  count: { n: number },
  reportIntervalMs = 1000,
): Promise<GatewayRegistrar> {
  const r = new GatewayRegistrar({
    session: s,
    root: base,
    id,
    host: '127.0.0.1',
    port: 7000,
    connections: () => count.n,
    reportIntervalMs,
  });
  await r.start(10_000);
  cleanups.push(() => r.stop());
  return r;
}

describe('gateway registry', () => {
  it('registers an ephemeral node whose record the directory lists', async () => {
    const base = root();
    const gw = session();
    await registrar(gw, base, 'gw-a', { n: 3 });
    const node = await gw.getData(gatewayPath(base, 'gw-a'));
    expect(node).not.toBeNull();
    expect(gw.ownsEphemeral(node!.stat)).toBe(true);
    expect(decodeGateway('gw-a', node!.data)).toMatchObject({
      id: 'gw-a',
      host: '127.0.0.1',
      port: 7000,
      connections: 3,
      pid: process.pid,
    });

    const directory = new GatewayDirectory(session(), base);
    cleanups.push(() => directory.close());
    await directory.waitKnown(10_000);
    expect(directory.list()).toEqual([expect.objectContaining({ id: 'gw-a', connections: 3 })]);
  });

  it('reports connection counts at most once per interval, and only when they changed', async () => {
    const base = root();
    const count = { n: 0 };
    await registrar(session(), base, 'gw-b', count, 500);
    const directory = new GatewayDirectory(session(), base);
    cleanups.push(() => directory.close());
    const events = record(directory);
    await directory.waitKnown(10_000);

    // The count changes every 10 ms for 2 s: at most one report per 500 ms reaches ZooKeeper.
    const started = Date.now();
    while (Date.now() - started < 2000) {
      count.n++;
      await new Promise((r) => setTimeout(r, 10));
    }
    const elapsed = Date.now() - started;
    await eventually(() => directory.get('gw-b')?.connections === count.n, 5000, `count ${count.n} reported`);
    const updates = events.filter((e) => e.type === 'updated').length;
    expect(updates).toBeGreaterThanOrEqual(2);
    expect(updates).toBeLessThanOrEqual(Math.ceil(elapsed / 500) + 2);

    // Unchanged: nothing is written (the next change shows the watch still works).
    const before = events.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(events.length).toBe(before);
    count.n = 1;
    await eventually(() => directory.get('gw-b')?.connections === 1, 5000, 'count 1 reported');
  });

  it('says removed when a gateway stops, and when its session ends; it registers again in a new session', async () => {
    const base = root();
    const directory = new GatewayDirectory(session(), base);
    cleanups.push(() => directory.close());
    const events = record(directory);
    await directory.waitKnown(10_000);

    const stopping = await registrar(session(), base, 'gw-stop', { n: 1 });
    await eventually(() => directory.get('gw-stop') !== undefined, 5000, 'gw-stop added');
    await stopping.stop();
    await eventually(
      () => events.some((e) => e.type === 'removed' && e.gateway.id === 'gw-stop'),
      5000,
      'gw-stop removed',
    );
    expect(events.find((e) => e.type === 'removed')!.gateway).toMatchObject({ port: 7000, connections: 1 });

    // Its session expires (as when the gateway is cut off for longer than its session timeout):
    // removed; the registrar's new session puts it back. Cut first, as in test/rpc: a client
    // reconnecting while the session is taken over from under it is not what is tested here.
    const proxy = await startZkProxy(zk.connectString);
    cleanups.push(() => proxy.close());
    const s = session(proxy.connectString);
    await registrar(s, base, 'gw-exp', { n: 2 });
    await eventually(() => directory.get('gw-exp') !== undefined, 5000, 'gw-exp added');
    const firstOwner = (await s.getData(gatewayPath(base, 'gw-exp')))!.stat.ephemeralOwner;
    const credentials = s.credentials()!;
    proxy.cut();
    await expireSession(zk.connectString, credentials);
    await eventually(
      () => events.some((e) => e.type === 'removed' && e.gateway.id === 'gw-exp'),
      10_000,
      'gw-exp removed after its session expired',
    );
    proxy.restore();
    await eventually(
      () => events.filter((e) => e.type === 'added' && e.gateway.id === 'gw-exp').length === 2,
      15_000,
      'gw-exp added again',
    );
    const node = await s.getData(gatewayPath(base, 'gw-exp'));
    expect(node!.stat.ephemeralOwner.equals(firstOwner)).toBe(false);
  });

  it('puts its node back when it was removed behind its back (the next report finds it gone)', async () => {
    const base = root();
    const count = { n: 1 };
    const gw = session();
    await registrar(gw, base, 'gw-gone', count, 100);
    const other = session();
    await other.waitConnected(10_000);
    await other.remove(gatewayPath(base, 'gw-gone'));
    expect(await other.getData(gatewayPath(base, 'gw-gone'))).toBeNull();
    // The session is fine, so only the report (setData: no node) can notice.
    count.n = 2;
    await eventually(
      async () =>
        decodeGateway('gw-gone', (await other.getData(gatewayPath(base, 'gw-gone')))?.data ?? Buffer.alloc(0))
          ?.connections === 2,
      5000,
      'gw-gone registered again with count 2',
    );
    const node = await other.getData(gatewayPath(base, 'gw-gone'));
    expect(gw.ownsEphemeral(node!.stat)).toBe(true);
  });

  it('refuses an id that cannot name a node', () => {
    expect(
      () =>
        new GatewayRegistrar({
          session: session(),
          root: '/x',
          id: 'a/b',
          host: 'h',
          port: 1,
          connections: () => 0,
        }),
    ).toThrow(/cannot name a ZooKeeper node/);
  });
});

describe('three-node ensemble', () => {
  it('keeps registrations and reports flowing with any one member stopped; resumes when a quorum is back', async () => {
    const ensemble = await startZooKeeperEnsemble();
    cleanups.push(() => ensemble.dispose());
    expect(ensemble.connectString.split(',')).toHaveLength(3);
    const base = root();
    const count = { n: 0 };
    await registrar(session(ensemble.connectString), base, 'gw-e', count, 200);
    const directory = new GatewayDirectory(session(ensemble.connectString), base);
    cleanups.push(() => directory.close());
    await directory.waitKnown(15_000);
    await eventually(() => directory.get('gw-e') !== undefined, 10_000, 'gw-e listed');

    for (const member of ensemble.members) {
      await member.stop({ hard: true });
      count.n++;
      // Clients on the stopped member move to another; the quorum of two serves writes and watches.
      await eventually(
        () => directory.get('gw-e')?.connections === count.n,
        20_000,
        `count ${count.n} with member ${member.id} down`,
      );
      expect(directory.get('gw-e')).toBeDefined();
      await member.start();
    }

    // Two of three down: the last one stops serving (no quorum). One back: reports resume.
    await ensemble.members[0]!.stop({ hard: true });
    await ensemble.members[1]!.stop({ hard: true });
    await eventually(async () => !(await ensemble.serving(2)), 20_000, 'member 3 to stop serving');
    count.n++;
    await ensemble.members[1]!.start();
    await eventually(
      () => directory.get('gw-e')?.connections === count.n,
      30_000,
      `count ${count.n} once a quorum is back`,
    );
  }, 180_000);
});
