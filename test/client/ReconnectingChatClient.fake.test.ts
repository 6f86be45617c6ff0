/**
 * ReconnectingChatClient's seq bookkeeping against a scripted peer (repeated pushes, pushes in
 * the same read as the login ack, a refused login, a lost connection): each seq reaches its
 * listeners once, `lastSeq` is the last one processed, and the login after a reconnect asks
 * for what follows it. The de-duplication itself is ChatClient's; these tests hold the wrapper
 * to it across logins and connections.
 */
import { afterEach, expect, test } from 'vitest';
import { ReconnectingChatClient } from '../../src/app/client/ReconnectingChatClient.js';
import { FakePeer, type FakeServer, type Obj, push, startFakeServer } from './helpers/fakeServer.js';

let server: FakeServer | null = null;
const clients: ReconnectingChatClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await server?.close();
  server = null;
});

/** Answers a login with `errno` (0: accepted) and, in the same write, `pushes`. */
function loginReply(peer: FakePeer, req: Obj, errno: number, pushes: number[]): void {
  const ack = { msgid: 2, errno, id: req.id, name: 'me', friends: [], groups: [], reqid: req.reqid };
  peer.sendRaw(Buffer.concat([ack, ...pushes.map((seq) => push(seq))].map((o) => FakePeer.frame(o))));
}

/** `onRequest` sees every request; PINGs are answered. */
async function connect(onRequest: (req: Obj, peer: FakePeer) => void): Promise<ReconnectingChatClient> {
  server = await startFakeServer((req, peer) => {
    if (req.msgid === 18) peer.send({ msgid: 19, reqid: req.reqid });
    onRequest(req, peer);
  });
  const c = await ReconnectingChatClient.connect({
    host: '127.0.0.1',
    port: server.port,
    autoAck: false,
    reconnectDelayMs: 10,
    reconnectMaxDelayMs: 50,
  });
  clients.push(c);
  return c;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('login(…, lastseq): pushes up to lastseq in the same read as the ack are dropped, lastSeq carries on from there', async () => {
  const c = await connect((req, peer) => {
    if (req.msgid === 1) loginReply(peer, req, 0, [9, 10, 11, 12]);
  });
  const seen: number[] = [];
  c.onPush((p) => seen.push(p.seq));
  expect((await c.login(5, 'pw', 10)).errno).toBe(0);
  // The pushes came in the read that carried the ack: processed before login() resolved.
  expect(seen).toEqual([11, 12]);
  expect(c.lastSeq).toBe(12);
  expect(c.stats.duplicates).toBe(2);
});

test('login(…, lastseq) with nothing pushed after it: lastSeq is lastseq, and the next login asks for what follows', async () => {
  const c = await connect((req, peer) => {
    if (req.msgid === 1) loginReply(peer, req, 0, []);
  });
  expect((await c.login(5, 'pw', 10)).errno).toBe(0);
  expect(c.lastSeq).toBe(10);
  const reconnected = new Promise((resolve) => c.on('reconnect', resolve));
  (await server!.peer(0)).socket.destroy();
  await reconnected;
  expect((await server!.peer(1)).ofType(1)[0]).toMatchObject({ id: 5, lastseq: 10 });
});

test('a push the server repeats reaches the listeners once and is counted', async () => {
  let peer: FakePeer | null = null;
  const c = await connect((req, p) => {
    if (req.msgid === 1) loginReply(p, req, 0, []);
    peer = p;
  });
  const seen: number[] = [];
  c.onPush((p) => seen.push(p.seq));
  expect((await c.login(5, 'pw')).errno).toBe(0);
  for (const seq of [1, 2, 2, 3, 1, 3, 4]) peer!.send(push(seq));
  await until(() => seen.length === 4, '4 pushes');
  await c.ping(); // a round trip: every push sent before it has been read
  expect(seen).toEqual([1, 2, 3, 4]);
  expect(c.lastSeq).toBe(4);
  expect(c.stats.duplicates).toBe(3);
});

test('a refused login keeps the lastSeq reached; after a lost connection the login asks for what follows it', async () => {
  let logins = 0;
  const c = await connect((req, peer) => {
    if (req.msgid === 1) {
      logins++;
      if (logins === 1) loginReply(peer, req, 0, [1, 2, 3, 3]);
      else if (logins === 2)
        loginReply(peer, req, 2, [4]); // refused, pushes of the login in place go on
      else loginReply(peer, req, 0, [3, 4, 5]); // the reconnect's login: the server repeats 3 and 4
    }
  });
  const seen: number[] = [];
  c.onPush((p) => seen.push(p.seq));
  expect((await c.login(5, 'pw')).errno).toBe(0);
  await until(() => c.lastSeq === 3, 'seq 3');
  expect((await c.login(5, 'pw', 0)).errno).toBe(2);
  await until(() => c.lastSeq === 4, 'seq 4');

  const reconnected = new Promise((resolve) => c.on('reconnect', resolve));
  (await server!.peer(0)).socket.destroy();
  await reconnected;
  const relogin = (await server!.peer(1)).ofType(1)[0]!;
  expect(relogin).toMatchObject({ id: 5, password: 'pw', lastseq: 4 });
  await until(() => c.lastSeq === 5, 'seq 5');
  expect(seen).toEqual([1, 2, 3, 4, 5]);
  expect(c.stats).toEqual({ reconnects: 1, resent: 0, duplicates: 3 }); // one on the first connection, two on the second
});
