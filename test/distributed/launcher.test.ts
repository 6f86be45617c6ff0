/**
 * `npm run distributed` (chat-distributed): ZooKeeper, services, gateways and Nginx come up,
 * the printed address serves clients, and Ctrl-C (SIGINT) stops every process it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { distPath } from '../../src/app/cluster/paths.js';
import { login, register, within } from '../e2e/support.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';

let child: ChildProcess | null = null;
let db: TestDatabase | null = null;

afterAll(async () => {
  const proc = child;
  if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
    // A failed test: Ctrl-C lets it stop what it started; SIGKILL only if that hangs.
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGINT');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await gone;
    clearTimeout(timer);
  }
  await db?.drop();
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

test('starts the unit behind Nginx, serves the printed address, and SIGINT stops every process', async () => {
  db = await createTestMysqlUrl();
  const { createServer } = await import('node:net');
  const freePort = (): Promise<number> =>
    new Promise((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
      });
    });
  const [port, zkPort] = [await freePort(), await freePort()];
  const proc = spawn(
    process.execPath,
    [
      distPath('app/bin/chat-distributed.js'),
      '--gateways',
      '2',
      '--services',
      '2',
      '--port',
      String(port),
      '--zookeeper-port',
      String(zkPort),
      '--db',
      db.url,
      '--redis-prefix',
      `launcher-${process.pid}`,
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child = proc;
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await within(
    (async () => {
      while (!out.includes('ready')) {
        if (proc.exitCode !== null) throw new Error(`exited early:\n${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
    90_000,
    `chat-distributed to be ready:\n${err}`,
  );
  expect(out).toContain(`connect to 127.0.0.1:${port}`);
  // The services (user/friend/group and two message nodes) and the two gateways came up.
  expect(err.match(/\[(users|message-\d|gateway-\d)\] listening on/g)?.length).toBe(5);

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

  const children = await childPids(proc.pid!);
  expect(children.length).toBeGreaterThanOrEqual(6); // ZooKeeper, 3 services, 2 gateways (+ nginx)
  proc.kill('SIGINT');
  expect(await within(exited, 60_000, 'chat-distributed to exit')).toBe(0);
  for (const pid of children) expect(running(pid), `process ${pid} stopped`).toBe(false);
}, 180_000);

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
