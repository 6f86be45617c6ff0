/**
 * The distributed unit survives any one failure (issue 15). One unit, real processes, shared by
 * the scenarios in order: a three-node ZooKeeper ensemble, two gateways, two user/friend/group
 * nodes, two message nodes, a private Redis, MariaDB. A steady ring of chat traffic runs through
 * every scenario; each message carries a cmid and what was not acknowledged is re-sent (peers
 * reconnect to a surviving gateway). After each scenario: nothing acknowledged lost, nothing
 * stored twice, no inbox gaps, and the measured re-login and push delays (printed) under 5 s.
 * During the rolling restart, every user connected elsewhere than the gateway being restarted is
 * checked to be online (presence and store) continuously, not only at the end.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { stopProcess } from '../../src/app/cluster/localCluster.js';
import { type LocalDistributed, startLocalDistributed } from '../../src/app/cluster/localDistributed.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { ZkSession } from '../../src/rpc/registry/ZkSession.js';
import {
  type Address,
  checkDelivery,
  openTestStore,
  Peer,
  PresenceReader,
  PrivateRedis,
  resendUnacked,
  ringTraffic,
  sleep,
  uniquePrefix,
  waitConverged,
  waitUntil,
} from '../cluster/support.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';

/** The promise under test: a user is back and a committed push arrives within this. */
const kBoundMs = 5000;
/** Gateways' and services' ZooKeeper session: a killed one is gone from the registry after this. */
const kSessionMs = 2500;
const kPeers = 12;

let unit: LocalDistributed;
let redis: PrivateRedis;
let db: TestDatabase;
let store: ChatStore;
let presence: PresenceReader;
let dir: string;
const peers: Peer[] = [];
const output: string[] = [];

const alive = (g: { process: ChildProcess }): boolean =>
  g.process.exitCode === null && g.process.signalCode === null;

/**
 * A peer's way to a gateway: its home gateway (peer i: gateway i % 2, so that every ring message
 * crosses gateways) while that runs, else the running ones in turn (a retry takes the next).
 */
function gatewayPicker(home: number): () => Address {
  let turn = 0;
  return () => {
    const own = unit.gateways[home % unit.gateways.length]!;
    const live = unit.gateways.filter(alive);
    const g = alive(own) ? own : (live[turn++ % Math.max(1, live.length)] ?? own);
    return { host: '127.0.0.1', port: g.port };
  };
}

/** Peers that failed over (or were moved by a restart) go back to their home gateway. */
async function rebalance(): Promise<void> {
  peers.forEach((p, i) => {
    const home = unit.gateways[i % unit.gateways.length]!;
    if (alive(home) && p.client !== null && p.client.port !== home.port) p.drop();
  });
  await waitUntil(
    () =>
      peers.every((p, i) => p.connected && p.client!.port === unit.gateways[i % unit.gateways.length]!.port),
    'every peer back on its home gateway',
    30_000,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chat-failures-'));
  db = await createTestMysqlUrl();
  redis = await PrivateRedis.start();
  const prefix = uniquePrefix('failures');
  unit = await startLocalDistributed({
    gateways: 2,
    userNodes: 2,
    messageNodes: 2,
    host: '127.0.0.1',
    port: 0,
    nginx: false,
    db: db.url,
    redis: redis.url,
    redisPrefix: prefix,
    zookeeperPort: 0,
    zookeeperNodes: 3,
    zookeeperTickMs: 1000,
    zkSessionTimeoutMs: kSessionMs,
    logLevel: 'warn',
    prefix: dir,
    onOutput: (name, line) => output.push(`${name}: ${line}`),
  });
  store = await openTestStore(db.url);
  presence = new PresenceReader(redis.url, prefix);
  for (let i = 0; i < kPeers; i++) {
    const peer = await Peer.register(gatewayPicker(i), uniquePrefix('f').slice(-24));
    peer.autoReconnect = true;
    await peer.login();
    peers.push(peer);
  }
}, 180_000);

afterAll(async () => {
  for (const p of peers) p.stop();
  await store?.close();
  await presence?.close();
  await unit?.stop();
  await redis?.stop();
  await db?.drop().catch(() => {});
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

interface Figures {
  relogins: number;
  maxReloginMs: number;
  pushes: number;
  maxPushMs: number;
}

/**
 * Runs traffic around `fault`, then re-sends what was not acknowledged and checks the delivery
 * guarantees against the store; returns the delays measured for this scenario.
 */
async function scenario(
  name: string,
  fault: () => Promise<void>,
  options: { since?: number; traffic?: boolean } = {},
): Promise<Figures> {
  if (options.traffic !== false) await rebalance();
  const since = options.since ?? Date.now();
  const reloginsBefore = peers.map((p) => p.reloginDelays.length);
  const traffic = options.traffic === false ? null : ringTraffic(peers, name.replace(/\W+/g, ''), 50);
  try {
    if (traffic !== null) await sleep(1000);
    await fault();
    await waitUntil(() => peers.every((p) => p.connected), `every peer back after: ${name}`, 30_000);
    if (traffic !== null) await sleep(1500);
  } finally {
    await traffic?.stop();
  }
  await resendUnacked(peers, 30_000);
  await waitConverged(store, peers, 30_000);
  const { problems } = await checkDelivery(store, peers);
  expect(problems, `${name}: ${problems.slice(0, 5).join('; ')}\n${output.slice(-20).join('\n')}`).toEqual(
    [],
  );
  const unacked = peers.flatMap((p) => p.unacked());
  expect(unacked.map((m) => m.body)).toEqual([]);

  // Nobody connected is judged offline: every peer's presence names the gateway it is on, and
  // the store shows it online.
  const where = await Promise.all(peers.map((p) => presence.serverOf(p.id)));
  const states = await Promise.all(peers.map((p) => store.users.findById(p.id)));
  peers.forEach((p, i) => {
    const gateway = unit.gateways.findIndex((g) => g.port === p.client?.port);
    expect(p.connected && where[i], `${name}: user ${p.id}'s presence`).toBe(`gateway-${gateway}`);
    expect(states[i]?.state, `${name}: user ${p.id}'s state in the store`).toBe('online');
  });

  const relogins = peers.flatMap((p, i) => p.reloginDelays.slice(reloginsBefore[i]));
  // Push delay: from the sender's acknowledgement to the recipient's receipt, for every
  // message acknowledged in this scenario (the recipient may have been re-logging in).
  const arrival = new Map<number, number>();
  for (const p of peers) {
    p.received.forEach((push, i) => {
      arrival.set(push.mid, p.receivedAt[i]!);
    });
  }
  const delays: number[] = [];
  for (const p of peers) {
    for (const m of p.acked()) {
      if (m.ackedAt === undefined || m.ackedAt < since) continue;
      const at = arrival.get(m.mid!);
      if (at !== undefined) delays.push(Math.max(0, at - m.ackedAt));
    }
  }
  const figures = {
    relogins: relogins.length,
    maxReloginMs: Math.max(0, ...relogins),
    pushes: delays.length,
    maxPushMs: Math.max(0, ...delays),
  };
  process.stdout.write(
    `failure "${name}": ${figures.relogins} re-logins, max ${figures.maxReloginMs} ms; ` +
      `${figures.pushes} pushes, max push delay ${figures.maxPushMs} ms\n`,
  );
  expect(figures.maxReloginMs).toBeLessThan(kBoundMs);
  expect(figures.maxPushMs).toBeLessThan(kBoundMs);
  return figures;
}

const kill = (p: { process: ChildProcess }) => stopProcess(p.process, 'SIGKILL');

/**
 * Samples, until stopped, whether every peer connected at that moment to a gateway other than
 * the one `excluded()` names is judged online: its presence names its gateway and the store says
 * 'online'. A peer whose session changed during a sample (dropped, logged in again) is not judged.
 */
function watchOnline(excluded: () => number | null, everyMs = 150) {
  const violations: string[] = [];
  let samples = 0;
  let checks = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const skip = excluded();
      const watched = peers
        .filter((p) => p.connected && p.client!.port !== skip)
        .map((p) => ({ p, client: p.client!, logins: p.logins.length }));
      let where: (string | null)[];
      let states: ({ state: string } | undefined)[];
      try {
        [where, states] = await Promise.all([
          Promise.all(watched.map(({ p }) => presence.serverOf(p.id))),
          Promise.all(watched.map(({ p }) => store.users.findById(p.id))),
        ]);
      } catch (error) {
        violations.push(`sample failed: ${error instanceof Error ? error.message : String(error)}`);
        running = false; // reported as a violation; nobody waits for more samples
        break;
      }
      samples++;
      watched.forEach(({ p, client, logins }, i) => {
        // Still the same session, on a gateway not being stopped meanwhile: it must be online.
        if (!(p.connected && p.client === client && p.logins.length === logins)) return;
        if (excluded() === client.port) return;
        checks++;
        const gateway = `gateway-${unit.gateways.findIndex((g) => g.port === client.port)}`;
        if (where[i] !== gateway || states[i]?.state !== 'online')
          violations.push(
            `user ${p.id} connected to ${gateway}: presence ${where[i]}, state ${states[i]?.state}`,
          );
      });
      await sleep(everyMs);
    }
  })();
  return {
    /** Resolves once `n` more samples are taken: each step of the restart is watched settled too. */
    async more(n: number) {
      const target = samples + n;
      await waitUntil(() => samples >= target || !running, `${n} more presence samples`, 30_000);
    },
    async stop() {
      running = false;
      await loop;
      return { samples, checks, violations };
    },
  };
}

describe('any one failure under a steady chat load', () => {
  test('kill -9 one gateway: its users log in again through the other within 5 s', async () => {
    const figures = await scenario('gateway killed', async () => {
      await kill(unit.gateways[1]!);
    });
    expect(figures.relogins).toBeGreaterThan(0);
    await unit.respawn('gateway', 1);
  }, 120_000);

  test('kill -9 one message-service node', async () => {
    await scenario('message node killed', async () => {
      await kill(unit.services[2]!);
    });
    await unit.respawn('service', 2);
  }, 120_000);

  test('kill -9 one message-service node whose pushes were not yet published: a gateway repair delivers them', async () => {
    // Redis stopped (not closed): the node commits and acknowledges, its publishes wait in its
    // client; it dies with them. Recipients on the other gateway learn of those messages only
    // from the inbox repair every gateway runs when a provider is lost (else: 30 s later).
    // The traffic stops before the kill, so no later message reveals the gap either.
    await rebalance();
    const victim = unit.services[3]!;
    const since = Date.now();
    const traffic = ringTraffic(peers, 'unpublished', 50);
    await sleep(1000);
    redis.pause();
    const pausedAt = Date.now();
    let killedAt = 0;
    try {
      await sleep(1000);
      await traffic.stop();
      killedAt = Date.now();
      await kill(victim);
    } finally {
      redis.resume();
    }
    await scenario('message node killed with pushes unpublished', async () => {}, {
      since,
      traffic: false,
    });
    // The scenario did what it says: messages acknowledged while Redis was stopped reached their
    // recipients only after the kill.
    const late = peers.flatMap((p) =>
      p.received.filter((push, i) => p.receivedAt[i]! >= killedAt && push.seq > 0 && push.mid > 0),
    );
    const ackedWhilePaused = peers.flatMap((p) =>
      p.acked().filter((m) => m.ackedAt! >= pausedAt && m.ackedAt! < killedAt),
    );
    process.stdout.write(
      `unpublished: ${ackedWhilePaused.length} acked while Redis was stopped, ${late.length} received after the kill\n`,
    );
    expect(ackedWhilePaused.length).toBeGreaterThan(0);
    expect(late.length).toBeGreaterThan(0);
    await unit.respawn('service', 3);
  }, 120_000);

  test('kill -9 one user-service node', async () => {
    await scenario('user node killed', async () => {
      await kill(unit.services[0]!);
    });
    await unit.respawn('service', 0);
  }, 120_000);

  test('one of three ZooKeeper nodes stopped', async () => {
    const zk = unit.zookeeperServers.servers[0]!;
    await scenario('zookeeper node stopped', async () => {
      await zk.stop({ hard: true });
      await sleep(3000);
    });
    await zk.start();
  }, 120_000);

  test('Redis restarted (every presence key and subscription lost)', async () => {
    await scenario('redis restarted', async () => {
      await redis.kill();
      await sleep(500);
      await redis.spawn();
    });
  }, 120_000);

  test('rolling restart: every gateway and service node SIGTERMed and restarted, one by one', async () => {
    let stopping: number | null = null; // the port of the gateway being stopped and restarted
    let watch: ReturnType<typeof watchOnline> | undefined;
    try {
      await scenario('rolling restart', async () => {
        watch = watchOnline(() => stopping);
        for (const kind of ['service', 'gateway'] as const) {
          const list = kind === 'gateway' ? unit.gateways : unit.services;
          for (let i = 0; i < list.length; i++) {
            if (kind === 'gateway') stopping = list[i]!.port;
            await stopProcess(list[i]!.process, 'SIGTERM');
            await unit.respawn(kind, i);
            stopping = null;
            // As an operator would: the next step only once everybody is back; watched meanwhile.
            await waitUntil(() => peers.every((p) => p.connected), `every peer back after ${kind} ${i}`);
            await watch.more(3);
          }
        }
        const seen = await watch.stop();
        process.stdout.write(
          `rolling restart: ${seen.samples} samples, ${seen.checks} connected users judged, ` +
            `${seen.violations.length} judged offline\n`,
        );
        expect(seen.samples).toBeGreaterThan(10);
        expect(seen.violations.slice(0, 10)).toEqual([]);
      });
    } finally {
      await watch?.stop();
    }
  }, 240_000);

  test('two of three ZooKeeper nodes down: no acknowledged message lost; a node registers again once one is back', async () => {
    const [a, b] = unit.zookeeperServers.servers;
    await scenario('zookeeper quorum lost', async () => {
      await Promise.all([a!.stop({ hard: true }), b!.stop({ hard: true })]);
      // No quorum: nobody can open a session, so nothing can register.
      const probe = new ZkSession({ connect: unit.zookeeper, sessionTimeoutMs: 4000 });
      try {
        await expect(probe.waitConnected(3000)).rejects.toThrow(/not reachable/);
      } finally {
        await probe.close();
      }
      await a!.start();
    });
    await b!.start();
    // Registrations work again: a restarted message node is found and used.
    await stopProcess(unit.services[3]!.process, 'SIGTERM');
    await unit.respawn('service', 3);
    await scenario('after the quorum came back', async () => {});
  }, 240_000);
});
