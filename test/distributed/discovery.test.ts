/**
 * Client-side discovery against real processes: a three-node ZooKeeper ensemble, the chat
 * services, three gateways registered in it, and ReconnectingChatClients given only
 * `discover: zk://…`. 300 clients spread evenly (±15 %) and the registry shows each gateway's
 * count; a gateway SIGKILLed under chat traffic sends its clients to the survivors, where they
 * log in again with lastseq, get what was sent meanwhile and re-send what was not acknowledged:
 * nothing lost, nothing twice, no gap.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ReconnectingChatClient } from '../../src/app/client/ReconnectingChatClient.js';
import type { ChatPush } from '../../src/app/client/types.js';
import { GatewayDirectory, type GatewayRecord } from '../../src/app/distributed/GatewayRegistry.js';
import { ZkSession } from '../../src/rpc/registry/ZkSession.js';
import { waitUntil } from '../cluster/support.js';
import { uniqueName } from '../e2e/support.js';
import { type DistributedDeployment, startDistributed } from '../helpers/chatServer.js';
import { startZooKeeperEnsemble, type ZooKeeperEnsembleHandle } from '../helpers/zookeeper.js';

const CLIENTS = 300;
const USERS = 30;

let ensemble: ZooKeeperEnsembleHandle;
let unit: DistributedDeployment;
let session: ZkSession;
let directory: GatewayDirectory;
let discover: string;
const clients: ReconnectingChatClient[] = [];

beforeAll(async () => {
  ensemble = await startZooKeeperEnsemble();
  unit = await startDistributed({
    gateways: 3,
    services: ['user,friend,group', 'message'],
    zookeeper: ensemble.connectString,
    extraArgs: ['--idle-timeout', '0'],
  });
  discover = `zk://${ensemble.connectString}${unit.registryRoot}`;
  session = new ZkSession({ connect: ensemble.connectString, sessionTimeoutMs: 10_000 });
  directory = new GatewayDirectory(session, unit.registryRoot);
  await directory.waitKnown(20_000);
}, 180_000);

afterAll(async () => {
  for (const c of clients) c.destroy();
  directory?.close();
  await session?.close();
  await unit?.cleanup();
  await ensemble?.dispose();
}, 60_000);

/** Clients per gateway id, as the clients see it. */
function spread(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of clients) counts.set(c.gateway ?? '?', (counts.get(c.gateway ?? '?') ?? 0) + 1);
  return counts;
}

describe('discovery clients', () => {
  test(`${CLIENTS} clients spread across 3 gateways within ±15 % of even; the registry shows the counts`, async () => {
    expect(directory.list()).toHaveLength(3);
    const opened = await Promise.all(
      Array.from({ length: CLIENTS }, () =>
        ReconnectingChatClient.connect({ discover, requestTimeoutMs: 30_000, connectTimeoutMs: 20_000 }),
      ),
    );
    clients.push(...opened);
    const counts = spread();
    process.stdout.write(`discovery spread of ${CLIENTS} clients: ${JSON.stringify([...counts])}\n`);
    expect(counts.size).toBe(3);
    const even = CLIENTS / 3;
    for (const [id, n] of counts) {
      expect(n, `clients on ${id}`).toBeGreaterThanOrEqual(Math.floor(even * 0.85));
      expect(n, `clients on ${id}`).toBeLessThanOrEqual(Math.ceil(even * 1.15));
    }
    // Each gateway reports its own count (within a report interval).
    await waitUntil(
      () => directory.list().every((g) => g.connections === counts.get(g.id)),
      () => `registry counts ${JSON.stringify(directory.list().map((g) => [g.id, g.connections]))}`,
      10_000,
    );
  }, 120_000);

  test('SIGKILL one gateway under chat traffic: its clients move, log in again, and nothing is lost or doubled', async () => {
    expect(clients).toHaveLength(CLIENTS);
    const users = clients.slice(0, USERS);
    const ids: number[] = [];
    for (const c of users) {
      const name = uniqueName('disc');
      const r = await c.register(name, 'pw');
      expect(r.errno).toBe(0);
      expect((await c.login(r.id, 'pw')).errno).toBe(0);
      ids.push(r.id);
    }
    const received = users.map(() => [] as ChatPush[]);
    for (const [i, c] of users.entries()) c.onPush((p) => received[i]!.push(p));
    const acked = users.map(() => new Map<string, number>()); // per sender: cmid → mid
    const reconnects: number[] = [];
    for (const c of clients) c.on('reconnect', (info) => reconnects.push(info.downMs));

    // Ring traffic: user i sends to user i+1, one message in flight each, every cmid unique.
    let running = true;
    const failures: string[] = [];
    const loops = users.map(async (c, i) => {
      const to = ids[(i + 1) % USERS]!;
      for (let n = 0; running; n++) {
        const cmid = `r-${ids[i]}-${n}`;
        try {
          const ack = await c.sendChat(to, cmid, { cmid });
          if (ack.errno === 0) acked[i]!.set(cmid, ack.mid);
          else failures.push(`${cmid}: errno ${ack.errno}`);
        } catch (error) {
          failures.push(`${cmid}: ${(error as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 30));
      }
    });
    await waitUntil(() => acked.every((m) => m.size >= 3), 'traffic to flow', 30_000);

    // Kill the gateway holding the most logged-in users.
    const byGateway = new Map<string, number>();
    for (const c of users) byGateway.set(c.gateway!, (byGateway.get(c.gateway!) ?? 0) + 1);
    const victimId = [...byGateway].sort((a, b) => b[1] - a[1])[0]![0];
    const record = directory.get(victimId) as GatewayRecord;
    const victimProcess = unit.gateways.find((g) => g.port === record.port)!;
    const victims = clients.filter((c) => c.gateway === victimId);
    const removed = new Promise<void>((resolve) =>
      directory.on('removed', (g) => {
        if (g.id === victimId) resolve();
      }),
    );
    const killedAt = Date.now();
    await victimProcess.kill();

    // Every client is back on a survivor (the logged-in ones logged in again).
    await waitUntil(
      () => clients.every((c) => c.connected && c.gateway !== victimId),
      () => `${clients.filter((c) => !c.connected || c.gateway === victimId).length} clients still to move`,
      90_000,
    );
    const movedAfter = Date.now() - killedAt;
    await removed;
    const loggedIn = users.filter((c) => c.gateway !== undefined && c.userId !== 0).length;
    expect(loggedIn).toBe(USERS);

    // A little more traffic on the survivors, then everything sent must be acknowledged and delivered.
    const ackedBefore = acked.reduce((n, m) => n + m.size, 0);
    await waitUntil(
      () => acked.reduce((n, m) => n + m.size, 0) >= ackedBefore + USERS,
      'traffic after the move',
      30_000,
    );
    running = false;
    await Promise.all(loops);
    expect(failures).toEqual([]);
    expect(users.every((c) => c.unacknowledged === 0)).toBe(true);
    await waitUntil(
      () => users.every((_, i) => received[(i + 1) % USERS]!.length >= acked[i]!.size),
      () =>
        `deliveries: ${users.map((_, i) => `${received[(i + 1) % USERS]!.length}/${acked[i]!.size}`).join(' ')}`,
      30_000,
    );
    for (let i = 0; i < USERS; i++) {
      const got = received[(i + 1) % USERS]!;
      // No gap and nothing twice: seqs 1..n in order; exactly the acknowledged messages.
      expect(got.map((p) => p.seq)).toEqual(got.map((_, k) => k + 1));
      const bodies = got.map((p) => p.msg);
      expect(new Set(bodies).size).toBe(bodies.length);
      const sent = acked[i]!;
      expect(got.length).toBe(sent.size);
      for (const p of got) expect(sent.get(p.msg), `push ${p.msg}`).toBe(p.mid);
    }
    const downs = reconnects.sort((a, b) => a - b);
    process.stdout.write(
      `gateway ${victimId} killed: ${victims.length} clients moved within ${movedAfter} ms ` +
        `(reconnect downtime median ${downs[Math.floor(downs.length / 2)]} ms, max ${downs.at(-1)} ms); ` +
        `${acked.reduce((n, m) => n + m.size, 0)} messages acknowledged and delivered once\n`,
    );
    // The survivors' counts in the registry add up to every client again.
    await waitUntil(
      () =>
        directory.list().reduce((n, g) => n + g.connections, 0) === CLIENTS && directory.list().length === 2,
      () => `registry ${JSON.stringify(directory.list().map((g) => [g.id, g.connections]))}`,
      15_000,
    );
  }, 240_000);
});
