/**
 * The ZooKeeper registry with a real server: registration with load, watched and cached provider
 * lists, balancing, failover when a provider process is SIGKILLed, ZooKeeper restarts, and
 * session expiry with re-registration.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { loadRpcConfig } from '../../src/rpc/config.js';
import type { RpcError } from '../../src/rpc/errors.js';
import type { ZkSession } from '../../src/rpc/registry/ZkSession.js';
import { RpcProvider } from '../../src/rpc/server/RpcProvider.js';
import { createStub } from '../../src/rpc/stub.js';
import { startZooKeeper, type ZooKeeperHandle } from '../helpers/zookeeper.js';
import { assertDistFresh, type ChildProvider, startChildProvider } from './childProvider.js';
import { type EchoShape, echoImpl, echoService, HOST, sleep } from './helpers.js';
import {
  children,
  eventually,
  expireSession,
  getNode,
  startZkProxy,
  withClient,
  withTimeout,
} from './zkTools.js';

const SERVICE = 'fixbug.EchoService';
const PROVIDERS = `/mprpc/services/${SERVICE}/providers`;

let zk: ZooKeeperHandle;
beforeAll(async () => {
  assertDistFresh();
  zk = await startZooKeeper();
});
afterAll(async () => {
  await zk?.dispose();
});

const readNode = (path: string) => withClient(zk.connectString, (client) => getNode(client, path));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function provider(name: string, options: ConstructorParameters<typeof RpcProvider>[0] = {}) {
  const p = new RpcProvider({
    host: HOST,
    loop: new EventLoop(),
    zookeeper: zk.connectString,
    zkSessionTimeoutMs: 4000,
    loadReportIntervalMs: 100,
    ...options,
  });
  p.notifyService(echoService, echoImpl(name));
  const address = await p.run();
  cleanups.push(() => p.stop({ graceMs: 500 }));
  return { provider: p, port: address.port, key: `127.0.0.1:${address.port}` };
}

function channel(options: Partial<ConstructorParameters<typeof RpcChannel>[0]> = {}): RpcChannel {
  const c = new RpcChannel({
    zookeeper: zk.connectString,
    zkSessionTimeoutMs: 4000,
    loop: new EventLoop(),
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

async function child(name: string): Promise<ChildProvider> {
  const c = await startChildProvider(zk.connectString, name, 2000);
  cleanups.push(() => c.kill('SIGTERM'));
  return c;
}

describe('registration', () => {
  it('publishes an ephemeral node per provider with host, port, methods and load', async () => {
    const { key, port } = await provider('p1');
    const node = await readNode(`${PROVIDERS}/${key}`);
    expect(node).not.toBeNull();
    expect(node!.stat.ephemeralOwner.equals(Buffer.alloc(8))).toBe(false);
    const record = JSON.parse(node!.data);
    expect(record).toMatchObject({
      host: '127.0.0.1',
      port,
      methods: ['Echo', 'Append'],
      protocols: ['native', 'classic'],
    });

    // Load shows up in the registry while calls run, and the consumer sees it through its watch.
    const c = channel();
    const echo = createStub<EchoShape>(c, echoService);
    const slow = Array.from({ length: 30 }, (_, i) => echo.Echo({ seq: i, delay_ms: 600 }));
    await eventually(
      async () => JSON.parse((await readNode(`${PROVIDERS}/${key}`))!.data).load >= 20,
      3000,
      'load >= 20',
    );
    await eventually(() => (c.providers(SERVICE)[0]?.reportedLoad ?? 0) >= 20, 3000, 'watched load');
    await Promise.all(slow);
    await eventually(
      async () => JSON.parse((await readNode(`${PROVIDERS}/${key}`))!.data).load === 0,
      3000,
      'load back to 0',
    );
  });

  it('runs provider and consumer from the classic config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mprpc-conf-'));
    const [zkHost, zkPort] = zk.connectString.split(':');
    const path = join(dir, 'test.conf');
    writeFileSync(
      path,
      `# rpc provider\nrpcserverip=127.0.0.1\nrpcserverport=0\nzookeeperip=${zkHost}\nzookeeperport=${zkPort}\n`,
    );
    const p = new RpcProvider({ ...loadRpcConfig(path), loop: new EventLoop(), zkSessionTimeoutMs: 4000 });
    p.notifyService(echoService, echoImpl('from-config'));
    const address = await p.run();
    cleanups.push(() => p.stop({ graceMs: 200 }));
    expect(await readNode(`${PROVIDERS}/127.0.0.1:${address.port}`)).not.toBeNull();
    const c = channel({ ...loadRpcConfig(path) }); // zookeeper wins over host/port
    expect((await createStub<EchoShape>(c, echoService).Echo({ seq: 1 })).served_by).toBe('from-config');
  });

  it('fails run() with UNAVAILABLE, not a hang, when ZooKeeper cannot be reached', async () => {
    const p = new RpcProvider({
      host: HOST,
      loop: new EventLoop(),
      zookeeper: '127.0.0.1:1',
      zkConnectTimeoutMs: 300,
    });
    p.notifyService(echoService, echoImpl('x'));
    const error = (await p.run().catch((e: unknown) => e)) as RpcError;
    expect(error.code).toBe('UNAVAILABLE');
  });
});

describe('balancing and failover', () => {
  it('spreads calls over two providers, least outstanding first', async () => {
    await provider('a');
    await provider('b');
    const c = channel();
    await c.waitForProviders(SERVICE, 2);
    const echo = createStub<EchoShape>(c, echoService);
    const served = { a: 0, b: 0 } as Record<string, number>;
    // 10 callers, each with one call in flight at a time.
    await Promise.all(
      Array.from({ length: 10 }, async (_, w) => {
        for (let i = 0; i < 40; i++)
          served[(await echo.Echo({ seq: w * 100 + i, delay_ms: 1 })).served_by]!++;
      }),
    );
    expect(served.a! + served.b!).toBe(400);
    // Both take a real share (an even split is not guaranteed: load reports lag).
    expect(served.a).toBeGreaterThan(80);
    expect(served.b).toBeGreaterThan(80);
  });

  it('fails over when a provider process is SIGKILLed mid-load: idempotent calls retried, others UNAVAILABLE', async () => {
    const a = await child('a');
    const b = await child('b');
    const c = channel({ defaultTimeoutMs: 3000 });
    await c.waitForProviders(SERVICE, 2);
    const echo = createStub<EchoShape>(c, echoService);

    let stop = false;
    let seq = 0;
    const echoResults: { ok: boolean; ms: number }[] = [];
    const appendResults: {
      seq: number;
      ok: boolean;
      code?: string;
      mayHaveExecuted?: boolean;
      ms: number;
    }[] = [];
    const echoLoop = async (): Promise<void> => {
      while (!stop) {
        const started = performance.now();
        const ok = await echo.Echo({ seq: seq++, delay_ms: 5 }).then(
          () => true,
          () => sleep(5).then(() => false),
        );
        echoResults.push({ ok, ms: performance.now() - started });
      }
    };
    const appendLoop = async (): Promise<void> => {
      while (!stop) {
        const s = seq++;
        const started = performance.now();
        try {
          await echo.Append({ seq: s, delay_ms: 30 });
          appendResults.push({ seq: s, ok: true, ms: performance.now() - started });
        } catch (error) {
          const e = error as RpcError;
          appendResults.push({
            seq: s,
            ok: false,
            code: e.code,
            mayHaveExecuted: e.mayHaveExecuted,
            ms: performance.now() - started,
          });
          await sleep(5);
        }
      }
    };
    const loops = [...Array.from({ length: 8 }, echoLoop), ...Array.from({ length: 6 }, appendLoop)];
    await sleep(400);
    await a.kill('SIGKILL');
    const killedAt = appendResults.length;
    await sleep(800);
    stop = true;
    await Promise.all(loops);

    // Every idempotent call succeeded: the ones on the dead provider were retried on the other.
    expect(echoResults.length).toBeGreaterThan(100);
    expect(echoResults.every((r) => r.ok)).toBe(true);
    // Non-idempotent calls in flight on the dead provider failed as UNAVAILABLE, quickly.
    const failed = appendResults.filter((r) => !r.ok);
    expect(failed.length).toBeGreaterThan(0);
    for (const f of failed) {
      expect(f.code).toBe('UNAVAILABLE');
      expect(f.mayHaveExecuted).toBe(true);
      expect(f.ms).toBeLessThan(1000);
    }
    // ... and were not run again elsewhere: each ran at most once, on the provider that died.
    const ranOnB = new Set(b.ran.filter((r) => r.startsWith('Append ')).map((r) => Number(r.split(' ')[1])));
    for (const f of failed) expect(ranOnB.has(f.seq)).toBe(false);
    // Every successful Append ran exactly once, and calls after the kill went to the survivor.
    const allRuns = [...a.ran, ...b.ran].filter((r) => r.startsWith('Append '));
    expect(new Set(allRuns).size).toBe(allRuns.length);
    expect(appendResults.slice(killedAt + 6).every((r) => r.ok)).toBe(true);
    // ZooKeeper drops the dead provider once its session times out; the cache follows.
    await eventually(() => c.providers(SERVICE).length === 1, 8000, 'dead provider removed');
    expect(c.providers(SERVICE)[0]!.key).toBe(`127.0.0.1:${b.port}`);
  });
});

describe('ZooKeeper trouble', () => {
  it('keeps serving from the cached list while ZooKeeper restarts under load', async () => {
    const { key } = await provider('p1');
    await provider('p2');
    const c = channel();
    await c.waitForProviders(SERVICE, 2);
    const echo = createStub<EchoShape>(c, echoService);
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const loops = Array.from({ length: 8 }, async () => {
      while (!stop) {
        await echo.Echo({ delay_ms: 1 }).then(
          () => ok++,
          // A failure must not spin this loop on microtasks alone.
          (e: RpcError) => sleep(5).then(() => failures.push(e.code)),
        );
      }
    });
    await sleep(200);
    await zk.stop();
    const duringOutage = ok;
    await sleep(1500); // within the 4 s session timeout: sessions survive the restart
    const servedDuringOutage = ok - duringOutage;
    await zk.start();
    await sleep(500);
    stop = true;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(servedDuringOutage).toBeGreaterThan(200);
    expect(c.providers(SERVICE).length).toBe(2);
    // Registrations are intact, still owned by the original sessions.
    expect(await readNode(`${PROVIDERS}/${key}`)).not.toBeNull();
  });

  it('re-registers after its session expires, and callers never notice', async () => {
    // The provider reaches ZooKeeper through a proxy, so it can be kept away while its session ends.
    const proxy = await startZkProxy(zk.connectString);
    cleanups.push(() => proxy.close());
    const { provider: p, key } = await provider('p1', { zookeeper: proxy.connectString });
    const c = channel();
    await c.waitForProviders(SERVICE, 1);
    const echo = createStub<EchoShape>(c, echoService);
    const before = (await readNode(`${PROVIDERS}/${key}`))!.stat.ephemeralOwner;
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const loop = (async () => {
      while (!stop) {
        await echo.Echo({ delay_ms: 2 }).then(
          () => ok++,
          (e: RpcError) => sleep(5).then(() => failures.push(`${e.code}: ${e.message}`)),
        );
      }
    })();
    const credentials = p.zookeeperSession!.credentials()!;
    const expired = new Promise<void>((resolve) => p.zookeeperSession!.once('expired', () => resolve()));
    proxy.cut();
    await expireSession(zk.connectString, credentials);
    // Its nodes are gone; callers keep using the connection they have (see unlistedGraceMs).
    await eventually(async () => (await readNode(`${PROVIDERS}/${key}`)) === null, 3000, 'node removed');
    await sleep(300);
    proxy.restore();
    await withTimeout(expired, 10_000, 'provider told its session expired');
    await eventually(
      async () => {
        const node = await readNode(`${PROVIDERS}/${key}`);
        return node !== null && !node.stat.ephemeralOwner.equals(before);
      },
      8000,
      'native node re-created by a new session',
    );
    expect((await readNode('/EchoService/Echo'))?.data).toBe(key);
    await eventually(() => c.providers(SERVICE).length === 1, 3000, 'consumer sees it again');
    stop = true;
    await loop;
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
  });

  it('a consumer whose own session expires watches again and sees new providers', async () => {
    const proxy = await startZkProxy(zk.connectString);
    cleanups.push(() => proxy.close());
    await provider('p1');
    const c = channel({ zookeeper: proxy.connectString });
    await c.waitForProviders(SERVICE, 1);
    const session = (c as unknown as { zk: ZkSession }).zk;
    const credentials = session.credentials()!;
    const expired = new Promise<void>((resolve) => session.once('expired', () => resolve()));
    proxy.cut();
    await expireSession(zk.connectString, credentials);
    await provider('p2'); // registered while the consumer cannot see ZooKeeper
    proxy.restore();
    await withTimeout(expired, 10_000, 'consumer told its session expired');
    await c.waitForProviders(SERVICE, 2, 8000);
    const echo = createStub<EchoShape>(c, echoService);
    const served = new Set<string>();
    for (let i = 0; i < 20; i++) served.add((await echo.Echo({})).served_by);
    expect([...served].sort()).toEqual(['p1', 'p2']);
  });

  it('lists no providers for an unknown service: calls fail UNAVAILABLE at once', async () => {
    await provider('p1');
    const c = channel();
    const { clientViewRoot } = await import('./helpers.js');
    const ghost = createStub(c, clientViewRoot.lookupService('fixbug.GhostService'));
    const error = (await ghost.Echo!({}).catch((e: unknown) => e)) as RpcError;
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/no provider registered/);
    expect(
      await withClient(zk.connectString, (client) =>
        children(client, '/mprpc/services/fixbug.GhostService/providers'),
      ),
    ).toEqual([]);
  });
});
