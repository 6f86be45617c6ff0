/**
 * A descriptor storm against a chat-server run under `ulimit -n 64`: the server keeps its
 * connections below the descriptor limit, refuses (and logs) the rest, keeps serving its store,
 * and lets a genuine client in once the attackers go.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import type { ChatServerProcess } from '../helpers/chatServer.js';
import { startChatServer } from '../helpers/chatServer.js';
import { RawSocket, sleep, uniqueName, waitUntil, within } from './support.js';

let server: ChatServerProcess | undefined;
const attackers: Socket[] = [];

afterEach(async () => {
  for (const s of attackers.splice(0)) s.destroy();
  await server?.cleanup();
  server = undefined;
});

function attack(port: number, firstBytes: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    attackers.push(socket);
    socket.on('error', () => resolve());
    socket.resume(); // read, so that the server's close is noticed
    socket.once('close', () => resolve());
    socket.once('connect', () => {
      if (firstBytes !== '') socket.write(firstBytes);
      resolve();
    });
  });
}

test('600 connections under a 64-descriptor limit: refused and logged, server whole, a genuine client gets in after', async () => {
  // Long deadlines: the attackers that stay must hold their descriptors for the whole test.
  server = await startChatServer({
    db: 'sqlite',
    logLevel: 'info',
    maxOpenFiles: 64,
    extraArgs: ['--message-timeout', '600'],
  });
  const { host, port } = server;
  // Silent ones and classic ones that never finish a message (the issue's `{`).
  for (let batch = 0; batch < 6; batch++) {
    await Promise.all(Array.from({ length: 100 }, (_, i) => attack(port, i % 2 === 0 ? '' : '{')));
  }
  // The refused ones are closed within a second; those that got in (fewer than 64) stay.
  await waitUntil(
    () => attackers.filter((s) => !s.destroyed).length < 64,
    'the refused attackers to be closed',
  );
  await sleep(1500);
  const stayed = attackers.filter((s) => !s.destroyed).length;
  expect(stayed).toBeGreaterThan(0);
  expect(stayed).toBeLessThan(64);
  // Still full: a framed client is told why it cannot get in rather than left hanging.
  const during = await RawSocket.connect(host, port);
  await during.sendJson({ msgid: 18 });
  expect(await during.waitFor(() => true)).toMatchObject({ msgid: 20, errno: 8, errmsg: /descriptor limit/ });
  await within(during.closed, 15_000, 'the refused client to be closed');
  expect(server.alive()).toBe(true);
  expect(server.output()).toMatch(/WARN security: connection refused: 127\.0\.0\.1:\d+: descriptor limit/);

  // The attackers go; a genuine client gets in and the store still works (register writes to it).
  for (const s of attackers.splice(0)) s.destroy();
  let client: ChatClient | undefined;
  for (let attempt = 1; client === undefined; attempt++) {
    const c = await ChatClient.connect({ host, port, connectTimeoutMs: 15_000, requestTimeoutMs: 15_000 });
    const pong = await c.ping('in?').catch(() => undefined);
    if (pong?.msgid === 19) client = c;
    else c.destroy();
    if (client === undefined) {
      if (attempt >= 50) throw new Error('never got in after the storm');
      await sleep(200);
    }
  }
  try {
    const name = uniqueName('genuine');
    const reg = await client.register(name, 'pw');
    expect(reg).toMatchObject({ msgid: 5, errno: 0 });
    expect(await client.login(reg.id, 'pw')).toMatchObject({ msgid: 2, errno: 0, name });
  } finally {
    client.destroy();
  }
  expect(server.alive()).toBe(true);
}, 120_000);
