/**
 * `npm run distributed` (chat-distributed): ZooKeeper, services, gateways and Nginx come up,
 * the printed address serves clients, and Ctrl-C (SIGINT) stops every process it started. With
 * `--zk 3` a three-node ensemble runs and every component is given all three addresses.
 */
import { afterAll, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { ReconnectingChatClient } from '../../src/app/client/ReconnectingChatClient.js';
import { distPath } from '../../src/app/cluster/paths.js';
import { login, register, uniqueName, within } from '../e2e/support.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';
import { freePorts, interruptLaunched, type Launched, launch } from '../helpers/launcher.js';

const databases: TestDatabase[] = [];

afterAll(async () => {
  await interruptLaunched();
  for (const db of databases) await db.drop();
}, 60_000);

/** Whether a process with this pid still exists. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs chat-distributed on a fresh database and waits for "ready". */
async function launchUnit(args: readonly string[]): Promise<Launched> {
  const db = await createTestMysqlUrl();
  databases.push(db);
  const prefix = `launcher-${process.pid}-${databases.length}`;
  return launch(
    distPath('app/bin/chat-distributed.js'),
    ['--db', db.url, '--redis-prefix', prefix, '--log-level', 'info', ...args],
    'ready',
  );
}

/** SIGINT stops chat-distributed and every process it started. */
async function interruptAndCheck(launched: Launched, atLeast: number): Promise<void> {
  const started = await childPids(launched.proc.pid!);
  expect(started.length).toBeGreaterThanOrEqual(atLeast);
  launched.proc.kill('SIGINT');
  expect(await within(launched.exited, 60_000, 'chat-distributed to exit')).toBe(0);
  for (const pid of started) expect(running(pid), `process ${pid} stopped`).toBe(false);
}

test('starts the unit behind Nginx, serves the printed address, and SIGINT stops every process', async () => {
  const [port, zkPort, metricsPort] = [await freePorts(), await freePorts(), await freePorts(2)];
  const launched = await launchUnit([
    '--gateways',
    '2',
    '--services',
    '2',
    '--port',
    String(port),
    '--zookeeper-port',
    String(zkPort),
    '--metrics-port',
    String(metricsPort),
  ]);
  expect(launched.out()).toContain(`connect to 127.0.0.1:${port}`);
  // One metrics endpoint per gateway, each seeing both message nodes.
  const urls = [0, 1].map((k) => `http://127.0.0.1:${metricsPort + k}/metrics`);
  expect(launched.out()).toContain(`gateway metrics: ${urls.join(', ')}`);
  for (const url of urls) {
    expect(await (await fetch(url)).text()).toMatch(/^chat_service_providers\{service="message"\} 2$/m);
  }
  // The services (user/friend/group and two message nodes) and the two gateways came up.
  expect(launched.err().match(/\[(users|message-\d|gateway-\d)\] listening on/g)?.length).toBe(5);

  const a = await ChatClient.connect({ host: '127.0.0.1', port, codec: 'json', requestTimeoutMs: 20_000 });
  const b = await ChatClient.connect({
    host: '127.0.0.1',
    port,
    codec: 'protobuf',
    requestTimeoutMs: 20_000,
  });
  try {
    const [ua, ub] = [await register(a), await register(b)];
    await login(a, ua);
    await login(b, ub);
    expect((await a.sendChat(ub.id, 'through nginx')).errno).toBe(0);
    const [push] = await b.waitForPushes(1, 15_000);
    expect(push).toMatchObject({ id: ua.id, msg: 'through nginx' });
  } finally {
    a.destroy();
    b.destroy();
  }
  await interruptAndCheck(launched, 6); // ZooKeeper, 3 services, 2 gateways (+ nginx)
}, 180_000);

test('--zk 3: a three-node ensemble, every component on all three, discovering clients chat', async () => {
  const launched = await launchUnit([
    '--zk',
    '3',
    '--zookeeper-port',
    '0',
    '--gateways',
    '2',
    '--services',
    '1',
    '--no-nginx',
    '--port',
    String(await freePorts()),
  ]);
  const discover = /chat-client --discover (zk:\/\/\S+)/.exec(launched.out())?.[1];
  expect(discover, launched.out()).toMatch(/^zk:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
  const hosts = discover!.slice('zk://'.length);
  // Every service and gateway was given the three-host connect string.
  expect(launched.err().match(/\[(users|message-1|gateway-\d)\] listening on/g)?.length).toBe(4);
  expect(launched.err().split(`zookeeper=${JSON.stringify(hosts)}`).length - 1).toBe(4);

  // One explicit locator shared by both clients; it lists both gateways.
  const locator = await ReconnectingChatClient.createLocator(discover!);
  const a = await ReconnectingChatClient.connect({ discover: locator, requestTimeoutMs: 20_000 });
  const b = await ReconnectingChatClient.connect({ discover: locator, requestTimeoutMs: 20_000 });
  expect(
    locator
      .gateways()
      .map((g) => g.id)
      .sort(),
  ).toEqual(['gateway-0', 'gateway-1']);
  try {
    const ids: number[] = [];
    for (const c of [a, b]) {
      const r = await c.register(uniqueName('zk3'), 'pw');
      expect((await c.login(r.id, 'pw')).errno).toBe(0);
      ids.push(r.id);
    }
    const pushed = new Promise((resolve) => b.onPush(resolve));
    expect((await a.sendChat(ids[1]!, 'through a discovered gateway')).errno).toBe(0);
    expect(await within(pushed, 15_000, 'the push')).toMatchObject({ msg: 'through a discovered gateway' });
  } finally {
    a.destroy();
    b.destroy();
    await locator.release();
  }
  await interruptAndCheck(launched, 7); // 3 ZooKeeper members, 2 services, 2 gateways
}, 240_000);

/** Direct children of `pid` (from /proc). */
async function childPids(pid: number): Promise<number[]> {
  const { readdirSync, readFileSync } = await import('node:fs');
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
