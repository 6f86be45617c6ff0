/**
 * ReconnectingChatClient on a fixed address (as behind Nginx) against the real chat-server:
 * the server is SIGKILLed and started again; the client reconnects, logs in again with the
 * lastseq it reached (no push twice, none missed), and re-sends the message sent while the
 * server was down (acknowledged once, delivered once).
 */
import { afterAll, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { ReconnectingChatClient } from '../../src/app/client/ReconnectingChatClient.js';
import type { ChatPush } from '../../src/app/client/types.js';
import { uniqueName, waitUntil } from '../e2e/support.js';
import { type ChatServerProcess, startChatServer } from '../helpers/chatServer.js';

let server: ChatServerProcess | null = null;
let limited: ChatServerProcess | null = null;
const open: { destroy(): void }[] = [];

afterAll(async () => {
  for (const c of open) c.destroy();
  await server?.cleanup();
  await limited?.cleanup();
});

async function plainLogin(id: number): Promise<ChatClient> {
  const c = await ChatClient.connect({ host: server!.host, port: server!.port, requestTimeoutMs: 20_000 });
  open.push(c);
  expect((await c.login(id, 'pw')).errno).toBe(0);
  return c;
}

test('server crash and restart: logs in again with lastseq and re-sends the unacknowledged message', async () => {
  server = await startChatServer({ db: 'sqlite', extraArgs: ['--idle-timeout', '0'] });
  const a = await ReconnectingChatClient.connect({
    host: server.host,
    port: server.port,
    requestTimeoutMs: 20_000,
    reconnectMaxDelayMs: 200,
  });
  open.push(a);
  const ids: number[] = [];
  for (const name of [uniqueName('rc-a'), uniqueName('rc-b')]) {
    const r = await a.register(name, 'pw');
    expect(r.errno).toBe(0);
    ids.push(r.id);
  }
  const [aId, bId] = ids as [number, number];
  expect((await a.login(aId, 'pw')).errno).toBe(0);
  const pushes: ChatPush[] = [];
  a.onPush((p) => pushes.push(p));
  const events: string[] = [];
  a.on('disconnect', () => events.push('disconnect'));
  a.on('reconnect', (info) => events.push(`reconnect resent=${info.resent}`));

  const b = await plainLogin(bId);
  for (let i = 1; i <= 3; i++) expect((await b.sendChat(aId, `before ${i}`)).errno).toBe(0);
  await waitUntil(() => pushes.length === 3, '3 pushes before the crash');
  await a.ping(); // the coalesced DELIVER_ACK has gone out (its cursor is not what is tested here)

  await server.kill();
  await waitUntil(() => events.includes('disconnect'), 'the client to notice');
  expect(a.connected).toBe(false);
  const whileDown = a.sendChat(bId, 'sent while the server was down', { cmid: 'down-1' });
  expect(a.unacknowledged).toBe(1);
  await server.restart(['--idle-timeout', '0']);

  const ack = await whileDown;
  expect(ack).toMatchObject({ errno: 0, cmid: 'down-1' });
  expect(ack.mid).toBeGreaterThan(0);
  expect(a.unacknowledged).toBe(0);
  expect(events).toEqual(['disconnect', 'reconnect resent=1']);
  expect(a.connected).toBe(true);

  // B, back too, gets the re-sent message once; A gets new messages after the lastseq it reached.
  const b2 = await plainLogin(bId);
  const [got] = await b2.waitForPushes(1, 15_000);
  expect(got).toMatchObject({ id: aId, msg: 'sent while the server was down', mid: ack.mid });
  await b2.ping();
  expect(b2.takePushes()).toEqual([]);
  for (let i = 4; i <= 5; i++) expect((await b2.sendChat(aId, `after ${i}`)).errno).toBe(0);
  await waitUntil(() => pushes.length === 5, '2 pushes after the restart');
  await a.ping();
  expect(pushes.map((p) => [p.seq, p.msg])).toEqual([
    [1, 'before 1'],
    [2, 'before 2'],
    [3, 'before 3'],
    [4, 'after 4'],
    [5, 'after 5'],
  ]);
  expect(a.lastSeq).toBe(5);
  // The second login asked for what follows seq 3: nothing came twice.
  expect(a.stats).toMatchObject({ reconnects: 1, resent: 1, duplicates: 0 });
  await a.close();
  await expect(a.sendChat(bId, 'after close')).rejects.toMatchObject({ code: 'CLOSED' });
}, 120_000);

test('"retry" answers (errno 8, rate limited) are sent again with the same cmid until acknowledged, once each', async () => {
  limited = await startChatServer({ db: 'sqlite', extraArgs: ['--rate', '5'] });
  const a = await ReconnectingChatClient.connect({
    host: limited.host,
    port: limited.port,
    requestTimeoutMs: 20_000,
    reconnectMaxDelayMs: 300,
  });
  open.push(a);
  const ids: number[] = [];
  for (const name of [uniqueName('rl-a'), uniqueName('rl-b')]) ids.push((await a.register(name, 'pw')).id);
  expect((await a.login(ids[0]!, 'pw')).errno).toBe(0);
  const b = await ChatClient.connect({ host: limited.host, port: limited.port, requestTimeoutMs: 20_000 });
  open.push(b);
  expect((await b.login(ids[1]!, 'pw')).errno).toBe(0);
  // 20 at once against 5 a second: most are first answered errno 8.
  const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => a.sendChat(ids[1]!, `burst ${i}`)));
  expect(acks.every((ack) => ack.errno === 0)).toBe(true);
  expect(new Set(acks.map((ack) => ack.mid)).size).toBe(20);
  const pushes = await b.waitForPushes(20, 15_000);
  expect(new Set(pushes.map((p) => p.msg)).size).toBe(20);
  await b.ping();
  expect(b.takePushes()).toEqual([]);
}, 60_000);
