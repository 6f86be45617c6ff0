/**
 * Client-side discovery against real processes: a three-node ZooKeeper ensemble, the chat
 * services, three gateways registered in it, and ReconnectingChatClients given only
 * `discover: zk://…`. 300 clients spread evenly (±15 %) and the registry shows each gateway's
 * count; a gateway SIGKILLed under chat traffic sends its clients to the survivors, where they
 * log in again with lastseq, get what was sent meanwhile and re-send what was not acknowledged:
 * nothing lost, nothing twice, no gap.
 */
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../../src/app/client/cli/run.js';
import { ReconnectingChatClient } from '../../src/app/client/ReconnectingChatClient.js';
import type { ChatPush } from '../../src/app/client/types.js';
import { distPath } from '../../src/app/cluster/paths.js';
import { GatewayDirectory, type GatewayRecord } from '../../src/app/distributed/GatewayRegistry.js';
import { ZkSession } from '../../src/rpc/registry/ZkSession.js';
import { waitUntil } from '../cluster/support.js';
import { uniqueName } from '../e2e/support.js';
import { type DistributedDeployment, startDistributed } from '../helpers/chatServer.js';
import { startZooKeeperEnsemble, type ZooKeeperEnsembleHandle } from '../helpers/zookeeper.js';

const run = promisify(execFile);
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
    // Each login after the move asked for exactly what followed the last push processed.
    expect(users.reduce((n, c) => n + c.stats.duplicates, 0)).toBe(0);
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

describe('tools with a ZooKeeper ensemble', () => {
  test('chat-client --discover logs in through a discovered gateway and chats', async () => {
    const peer = await ReconnectingChatClient.connect({ discover, requestTimeoutMs: 30_000 });
    clients.push(peer);
    const users = [];
    for (const name of [uniqueName('cli-a'), uniqueName('cli-b')]) {
      const r = await peer.register(name, 'pw');
      expect(r.errno).toBe(0);
      users.push(r.id);
    }
    expect((await peer.login(users[1]!, 'pw')).errno).toBe(0);
    const pushed = new Promise<ChatPush>((resolve) => peer.onPush(resolve));
    const input = new PassThrough();
    let stdout = '';
    let stderr = '';
    const done = runCli(['--discover', discover], {
      input,
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
    });
    input.end(
      ['1', String(users[0]), 'pw', `chat:${users[1]}:hello via discovery`].map((l) => `${l}\n`).join(''),
    );
    expect(await done, stderr).toBe(0);
    expect(stdout).toContain('======================login user======================');
    expect(await pushed).toMatchObject({ id: users[0], msg: 'hello via discovery', seq: 1 });

    const bad = runCli(['--discover', 'zk://127.0.0.1:1'], {
      input: new PassThrough(),
      stdout: { write: () => true },
      stderr: { write: (t: string) => (stderr = t) },
      clientOptions: { connectTimeoutMs: 500 },
    });
    expect(await bad).toBe(1);
    expect(stderr).toMatch(/ZooKeeper 127\.0\.0\.1:1|no gateway listing|no connection within/);
  }, 60_000);

  test('mprpc list takes the three-host connect string', async () => {
    const { stdout } = await run(process.execPath, [
      distPath('rpc/bin/mprpc.js'),
      'list',
      '--zookeeper',
      ensemble.connectString,
      '--root',
      unit.registryRoot,
    ]);
    expect(stdout).toContain('chat.svc.UserService');
    expect(stdout).toContain('chat.svc.MessageService');
    // The gateways and their connection counts.
    expect(stdout).toMatch(/^gateways {2}\(2 nodes\)$/m);
    expect(stdout).toMatch(/"connections":\d+/);
  });

  test('--help of chat-gateway, chat-distributed, chat-service and chat-client shows the new options', async () => {
    const help = async (bin: string): Promise<string> =>
      (await run(process.execPath, [distPath(`app/bin/${bin}.js`), '--help'])).stdout;
    const gateway = await help('chat-gateway');
    for (const flag of [
      '--advertise HOST:PORT',
      '--zk-session-timeout MS',
      '--report-interval MS',
      'HOST:PORT[,HOST:PORT…]',
    ]) {
      expect(gateway).toContain(flag);
    }
    expect(await help('chat-distributed')).toContain('--zk N');
    expect(await help('chat-service')).toContain(
      '--zookeeper HOSTS      ZooKeeper connect string, HOST:PORT[,HOST:PORT…]',
    );
    await expect(
      run(process.execPath, [
        distPath('app/bin/chat-service.js'),
        '--services',
        'user',
        '--zookeeper',
        'a:1,',
      ]),
    ).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining("bad --zookeeper 'a:1,'") });
    expect(await help('chat-client')).toContain('--discover zk://');
    await expect(
      run(process.execPath, [
        distPath('app/bin/chat-gateway.js'),
        '--zookeeper',
        'a:1,b',
        '--redis',
        'redis://x',
      ]),
    ).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining("bad --zookeeper 'a:1,b'") });
  });

  test('chat-client --discover: its gateway killed, it says so, logs in elsewhere and keeps chatting', async () => {
    const peer = await ReconnectingChatClient.connect({ discover, requestTimeoutMs: 30_000 });
    clients.push(peer);
    const ids: number[] = [];
    for (const name of [uniqueName('cli-c'), uniqueName('cli-d')])
      ids.push((await peer.register(name, 'pw')).id);
    expect((await peer.login(ids[1]!, 'pw')).errno).toBe(0);
    const pushes: ChatPush[] = [];
    peer.onPush((p) => pushes.push(p));
    const counts = (): Map<string, number> => new Map(directory.list().map((g) => [g.id, g.connections]));
    await waitUntil(
      () => [...counts().values()].reduce((n, c) => n + c, 0) === clients.length,
      'the registry to count every client',
      15_000,
    );
    const before = counts();

    const input = new PassThrough();
    let stdout = '';
    let stderr = '';
    const done = runCli(['--discover', discover], {
      input,
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
    });
    input.write(['1', String(ids[0]), 'pw', `chat:${ids[1]}:before the move`].map((l) => `${l}\n`).join(''));
    await waitUntil(() => pushes.some((p) => p.msg === 'before the move'), 'the first chat', 30_000);
    // Its gateway is the one whose count went up by one.
    let mine: string | undefined;
    await waitUntil(
      () => {
        mine = [...counts()].find(([id, n]) => n === (before.get(id) ?? 0) + 1)?.[0];
        return mine !== undefined;
      },
      'the CLI connection in the registry',
      15_000,
    );
    await unit.gateways.find((g) => g.port === directory.get(mine!)!.port)!.kill();
    await waitUntil(
      () => /reconnected to /.test(stderr),
      () => `the CLI to reconnect:\n${stderr}`,
      90_000,
    );
    expect(stderr).toMatch(/connection to \S+ lost.*; reconnecting/);
    input.end(`chat:${ids[1]}:after the move\n`);
    expect(await done, stderr).toBe(0);
    await waitUntil(() => pushes.some((p) => p.msg === 'after the move'), 'the chat after the move', 30_000);
    expect(pushes.map((p) => p.msg)).toEqual(['before the move', 'after the move']);
  }, 150_000);
});
