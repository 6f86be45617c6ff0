/**
 * Connection limits and the input memory budget, against the real chat-server process: over a
 * limit a connection is refused (a framed client gets ERROR errno 8 first) and the server
 * recovers once connections go; parked partial messages cannot grow the server's memory past
 * the budget, and the connections holding the most are closed first.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { ChatServerProcess } from '../helpers/chatServer.js';
import { startChatServer } from '../helpers/chatServer.js';
import { RawSocket, sleep, waitUntil, within } from './support.js';

let server: ChatServerProcess | undefined;
const sockets: { destroy(): void }[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.cleanup();
  server = undefined;
});

async function raw(from?: string): Promise<RawSocket> {
  const s = await RawSocket.connect(server!.host, server!.port, from);
  sockets.push(s);
  return s;
}

/** A connection the server serves: its PING gets a PONG. */
async function served(from?: string): Promise<RawSocket> {
  const s = await raw(from);
  await s.sendJson({ msgid: 18, t: 'in' });
  expect(await s.waitFor((m) => m.msgid === 19 || m.msgid === 20)).toEqual({ msgid: 19, t: 'in' });
  return s;
}

/** A connection refused over a limit: its first frame gets ERROR errno 8, then the close. */
async function refused(from?: string): Promise<RawSocket> {
  const s = await raw(from);
  await s.sendJson({ msgid: 18, t: 'in' });
  expect(await s.waitFor(() => true)).toMatchObject({ msgid: 20, errno: 8, errmsg: /too many connections/ });
  await within(s.closed, 15_000, 'the refused connection to close');
  return s;
}

/** A new connection until one is served: the server sees a client's close a little later than the client. */
async function servedOnceFreed(from?: string): Promise<RawSocket> {
  for (let attempt = 1; ; attempt++) {
    const s = await raw(from);
    await s.sendJson({ msgid: 18, t: 'in' });
    const reply = await s.waitFor(() => true);
    if (reply.msgid === 19) return s;
    expect(reply).toMatchObject({ msgid: 20, errno: 8 });
    if (attempt >= 50) throw new Error('the server never admitted a new connection');
    await sleep(100);
  }
}

describe('connection limits', () => {
  test('--max-connections: the next one is refused (framed: ERROR errno 8; classic: closed), then room again', async () => {
    server = await startChatServer({ db: 'sqlite', logLevel: 'info', extraArgs: ['--max-connections', '6'] });
    const open: RawSocket[] = [];
    for (let i = 0; i < 6; i++) open.push(await served());
    await refused();
    // A classic first byte: closed without a reply (the classic client has no ERROR).
    const classic = await raw();
    classic.mode = 'legacy';
    await classic.write('{"msgid":4,"name":"x","password":"y"}\0');
    await within(classic.closed, 15_000, 'the refused classic connection to close');
    expect(classic.bytesReceived).toBe(0);
    // Room again once some go; the ones that stayed are still served.
    open[0]!.destroy();
    open[1]!.destroy();
    await servedOnceFreed();
    await open[5]!.sendJson({ msgid: 18, t: 'still' });
    expect(await open[5]!.waitFor((m) => m.msgid === 19)).toEqual({ msgid: 19, t: 'still' });
    expect(server.output()).toMatch(/WARN security: connection refused: 127\.0\.0\.1:\d+: connection limit/);
  }, 60_000);

  test('--max-connections-per-ip: one address is capped, others (and the trusted loopback) are not', async () => {
    server = await startChatServer({
      db: 'sqlite',
      logLevel: 'info',
      extraArgs: ['--max-connections-per-ip', '3'],
    });
    const mine = [await served('127.0.0.2'), await served('127.0.0.2'), await served('127.0.0.2')];
    await refused('127.0.0.2');
    // Another address is not affected.
    for (let i = 0; i < 3; i++) await served('127.0.0.3');
    // 127.0.0.1 is trusted by default (a local proxy): no per-address cap.
    for (let i = 0; i < 5; i++) await served('127.0.0.1');
    mine[0]!.destroy();
    await servedOnceFreed('127.0.0.2');
    expect(server.output()).toMatch(/security: connection refused: 127\.0\.0\.2:\d+: per-address limit/);
  }, 60_000);
});

/** VmRSS and VmHWM (peak) of a process, in bytes. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Connects and writes `bytes`; resolves once they are all written or the server closed the connection. */
function park(port: number, bytes: Buffer): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    socket.resume(); // read, so that the server's close is noticed
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(socket);
    };
    socket.once('close', finish);
    socket.once('connect', () => socket.write(bytes, finish));
  });
}

describe('input memory budget', () => {
  test('500 connections parking 1 MiB partial messages raise RSS by less than 100 MB; the biggest holders go first', async () => {
    server = await startChatServer({
      db: 'sqlite',
      logLevel: 'info',
      // Long deadlines: the budget alone must hold the memory down here.
      extraArgs: ['--message-timeout', '600', '--idle-timeout', '600'],
    });
    const pid = server.pid!;
    // A small parked message from before the attack: it holds the least, so it must survive it.
    const small = await raw();
    const ping = Buffer.from(JSON.stringify({ msgid: 18, t: 'small' }));
    const smallFrame = Buffer.concat([Buffer.alloc(4), ping]);
    smallFrame.writeUInt32BE(ping.length, 0);
    await small.write(smallFrame.subarray(0, 10));
    // Settled memory before the attack.
    await sleep(1000);
    const before = memoryOf(pid).rss;

    const mib = 1024 * 1024;
    // Framed: a 1 MiB frame one byte short. Legacy: 1 MiB of a message that never ends.
    const framed = Buffer.alloc(4 + mib - 1, 0x20);
    framed.writeUInt32BE(mib, 0);
    framed[4] = 0x7b;
    const legacy = Buffer.alloc(mib, 0x61);
    legacy.write('{"msgid":4,"name":"', 0);
    const sockets500: Socket[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const parked = await Promise.all(
        Array.from({ length: 50 }, (_, i) => park(server!.port, i % 2 === 0 ? framed : legacy)),
      );
      sockets500.push(...parked);
    }
    const after = memoryOf(pid);
    const grownMb = (after.peak - before) / 1e6;
    console.log(
      `RSS before ${(before / 1e6).toFixed(1)} MB, peak during ${(after.peak / 1e6).toFixed(1)} MB (+${grownMb.toFixed(1)} MB), now ${(after.rss / 1e6).toFixed(1)} MB`,
    );
    expect(grownMb).toBeLessThan(100);
    // Most attackers were cut (each held far more than the small one)...
    await waitUntil(
      () => sockets500.filter((s) => s.destroyed).length >= 400,
      'the budget to close most attackers',
      30_000,
    );
    for (const s of sockets500) s.destroy();
    // ...and the small parked message is still there: it completes and is answered.
    await small.write(smallFrame.subarray(10));
    expect(await small.waitFor((m) => m.msgid === 19)).toEqual({ msgid: 19, t: 'small' });
    expect(server.output()).toMatch(/WARN security: input budget: 127\.0\.0\.1:\d+: holding \d+ bytes/);
    // Classic messages are capped per connection far below 1 MiB.
    expect(server.output()).toMatch(
      /closing connection peer=127\.0\.0\.1:\d+ reason=bad_input detail="legacy message longer than 65536 bytes"/,
    );
  }, 180_000);
});
