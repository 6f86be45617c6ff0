/**
 * ChatClient behaviour that the real server cannot be made to show on demand (duplicate and
 * out-of-order deliveries, missing/late/mismatched replies, undecodable frames, exact DELIVER_ACK
 * counts), against a scripted peer on a real socket. Everything the real server can show is tested
 * against it in ChatClient.integration.test.ts.
 */

import { afterEach, describe, expect, test } from 'vitest';
import { ChatClient, type ChatClientOptions } from '../../src/app/client/ChatClient.js';
import { type ClientCodec, JsonClientCodec } from '../../src/app/client/codec.js';
import { ChatClientError } from '../../src/app/client/errors.js';
import type { ChatPush, ServerError, WireObject } from '../../src/app/client/types.js';
import { EventLoop } from '../../src/net/EventLoop.js';
import { type FakePeer, type FakeServer, type Obj, push, startFakeServer } from './helpers/fakeServer.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: FakeServer | null = null;
const clients: ChatClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await server?.close();
  server = null;
});

async function setup(
  onRequest: (req: Obj, peer: FakePeer) => void = () => {},
  options: Partial<ChatClientOptions> = {},
): Promise<{ client: ChatClient; peer: FakePeer }> {
  server = await startFakeServer(onRequest);
  const client = await ChatClient.connect({ host: '127.0.0.1', port: server.port, ...options });
  clients.push(client);
  return { client, peer: await server.peer() };
}

/** Replies to a login with a successful ack. */
function loginResponder(req: Obj, peer: FakePeer): void {
  if (req.msgid === 1) {
    peer.send({ msgid: 2, errno: 0, id: req.id, name: 'me', friends: [], groups: [], reqid: req.reqid });
  }
}

async function expectRejects(p: Promise<unknown>, code: ChatClientError['code']): Promise<ChatClientError> {
  const e = await p.then(
    () => {
      throw new Error(`expected a ${code} rejection`);
    },
    (error: unknown) => error,
  );
  expect(e).toBeInstanceOf(ChatClientError);
  expect((e as ChatClientError).code).toBe(code);
  return e as ChatClientError;
}

describe('request/reply matching', () => {
  test('every request carries a distinct reqid; replies arriving out of order reach their own request', async () => {
    const held: Obj[] = [];
    const { client } = await setup((req, peer) => {
      held.push(req);
      if (held.length === 3) {
        for (const r of [...held].reverse()) peer.send({ msgid: 19, t: r.t, reqid: r.reqid });
      }
    });
    const replies = await Promise.all([client.ping('a'), client.ping('b'), client.ping('c')]);
    expect(replies.map((r) => r.t)).toEqual(['a', 'b', 'c']);
    expect(replies.every((r) => r.errno === 0 && r.msgid === 19)).toBe(true);
    expect(new Set(held.map((r) => r.reqid)).size).toBe(3);
    expect(client.pendingRequests).toBe(0);
  });

  test('a reply without reqid resolves the oldest request waiting for that msgid', async () => {
    let n = 0;
    const { client } = await setup((req, peer) => {
      if (req.msgid === 13) return;
      n++;
      if (n === 2) {
        peer.send({ msgid: 5, errno: 0, id: 41 });
        peer.send({ msgid: 5, errno: 7, errmsg: 'name taken' });
      }
    });
    const friend = client.addFriend(3); // never answered; must not take the REG acks
    const [first, second] = await Promise.all([client.register('a', 'p'), client.register('b', 'p')]);
    expect(first).toMatchObject({ msgid: 5, errno: 0, id: 41 });
    expect(second).toMatchObject({ msgid: 5, errno: 7, errmsg: 'name taken', id: 0 });
    expect(client.pendingRequests).toBe(1);
    client.destroy();
    await expectRejects(friend, 'CLOSED');
  });

  test('ERROR (20) with the reqid resolves the request with its errno; other fields get defaults', async () => {
    const { client } = await setup((req, peer) => {
      peer.send({ msgid: 20, errno: 3, errmsg: "field 'msg' is required", reqid: req.reqid });
    });
    const reply = await client.sendChat(2, 'x');
    expect(reply).toMatchObject({ msgid: 20, errno: 3, errmsg: "field 'msg' is required", mid: 0 });
    const login = await client.login(1, 'p');
    expect(login).toMatchObject({ msgid: 20, errno: 3, id: 0, name: '', friends: [], groups: [] });
    expect(client.userId).toBe(0);
  });

  test('ERROR without a matching reqid is a serverError event; any other stray frame is unsolicited', async () => {
    const { client, peer } = await setup();
    const errors: ServerError[] = [];
    const stray: WireObject[] = [];
    client.on('serverError', (e) => errors.push(e));
    client.on('unsolicited', (m) => stray.push(m));
    peer.send({ msgid: 20, errno: 8, errmsg: 'rate limited' });
    peer.send({ msgid: 20, errno: 3, errmsg: 'late', reqid: 999 });
    peer.send({ msgid: 19, reqid: 12345 });
    await until(() => errors.length === 2 && stray.length === 1);
    expect(errors).toEqual([
      { msgid: 20, errno: 8, errmsg: 'rate limited' },
      { msgid: 20, errno: 3, errmsg: 'late', reqid: 999 },
    ]);
    expect(stray).toEqual([{ msgid: 19, reqid: 12345 }]);
    expect(client.connected).toBe(true);
  });

  test('a reply with the reqid but the wrong msgid rejects that request with PROTOCOL; the connection stays', async () => {
    const { client } = await setup((req, peer) => {
      if (req.msgid === 7) peer.send({ msgid: 14, errno: 0, groupid: 1, reqid: req.reqid });
      if (req.msgid === 18) peer.send({ msgid: 19, reqid: req.reqid });
    });
    const e = await expectRejects(client.addFriend(5), 'PROTOCOL');
    expect(e.message).toMatch(/has msgid 14, expected 13/);
    expect((await client.ping()).errno).toBe(0);
  });

  test('a successful reply missing its fields is a PROTOCOL rejection', async () => {
    const { client } = await setup((req, peer) => {
      peer.send({ msgid: 2, errno: 0, reqid: req.reqid });
    });
    const e = await expectRejects(client.login(1, 'p'), 'PROTOCOL');
    expect(e.message).toMatch(/lacks integer 'id'/);
  });

  test('requestTimeoutMs rejects with TIMEOUT; the late reply is then unsolicited', async () => {
    let lateReq: Obj | null = null;
    const { client, peer } = await setup(
      (req) => {
        lateReq = req;
      },
      { requestTimeoutMs: 80 },
    );
    const started = Date.now();
    const e = await expectRejects(client.ping(1), 'TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
    expect(e.message).toMatch(/within 80 ms/);
    expect(client.pendingRequests).toBe(0);
    const stray: WireObject[] = [];
    client.on('unsolicited', (m) => stray.push(m));
    peer.send({ msgid: 19, t: 1, reqid: lateReq!.reqid });
    await until(() => stray.length === 1);
  });

  test('a custom ClientCodec is used for every frame both ways', async () => {
    const counts = { encode: 0, decode: 0 };
    const json = new JsonClientCodec();
    const codec: ClientCodec = {
      name: 'counting',
      encode: (o) => {
        counts.encode++;
        return json.encode(o);
      },
      decode: (p) => {
        counts.decode++;
        return json.decode(p);
      },
    };
    const { client } = await setup((req, peer) => peer.send({ msgid: 19, t: req.t, reqid: req.reqid }), {
      codec,
    });
    expect((await client.ping(7)).t).toBe(7);
    expect((await client.ping(8)).t).toBe(8);
    expect(counts).toEqual({ encode: 2, decode: 2 });
  });

  test("codec 'protobuf' speaks muduo protobuf frames and matches replies whose reqid came back as a string", async () => {
    const { client, peer } = await setup(
      (req, p) => {
        if (req.msgid === 18) p.send({ msgid: 19, t: req.t, reqid: req.reqid });
        if (req.msgid === 6) p.send({ msgid: 11, errno: 0, mid: 77, cmid: req.cmid, reqid: req.reqid });
      },
      { codec: 'protobuf' },
    );
    expect(client.codec.name).toBe('protobuf');
    const pong = await client.ping(42);
    expect(pong).toMatchObject({ msgid: 19, errno: 0, t: 42 });
    const ack = await client.sendChat(3, 'héllo', { cmid: 'c-1' });
    expect(ack).toMatchObject({ msgid: 11, errno: 0, mid: 77, cmid: 'c-1' });
    expect(peer.kind).toBe('protobuf');
    expect(peer.received[1]).toMatchObject({ msgid: 6, toid: 3, msg: 'héllo', cmid: 'c-1' });
    expect(typeof peer.received[1]!.reqid).toBe('string');
    peer.send(push(1, 'über'));
    expect((await client.waitForPushes(1))[0]).toMatchObject({ msgid: 6, seq: 1, msg: 'über', toid: 1 });
    // A body the codec cannot encode is refused locally, leaving nothing pending.
    await expect(client.request({ msgid: 99 })).rejects.toThrow(/no protobuf type for msgid 99/);
    expect(client.pendingRequests).toBe(0);
    expect(client.connected).toBe(true);
  });

  test('request() sends a copy of the body with a reqid and resolves with the raw reply', async () => {
    const { client, peer } = await setup((req, p) =>
      p.send({ msgid: 20, errno: 3, errmsg: 'nope', reqid: req.reqid }),
    );
    const body = { msgid: 42, anything: [1, 2] };
    const reply = await client.request(body);
    expect(body).toEqual({ msgid: 42, anything: [1, 2] });
    expect(peer.received[0]).toEqual({ msgid: 42, anything: [1, 2], reqid: reply.reqid });
    expect(reply).toMatchObject({ msgid: 20, errno: 3, errmsg: 'nope' });
  });
});

describe('transport failures', () => {
  test('connection closed by the peer before the reply: every pending request rejects with CLOSED', async () => {
    const { client, peer } = await setup();
    const closes: unknown[] = [];
    client.on('close', (info) => closes.push(info));
    const a = client.register('a', 'p');
    const b = client.ping();
    await peer.waitForFrames(2);
    peer.socket.end();
    await expectRejects(a, 'CLOSED');
    await expectRejects(b, 'CLOSED');
    expect(await client.closed).toEqual({ error: null, local: false });
    expect(closes).toEqual([{ error: null, local: false }]);
    expect(client.connected).toBe(false);
    await expectRejects(client.ping(), 'CLOSED');
  });

  test('connection reset: the close carries the socket error in words', async () => {
    const { client, peer } = await setup();
    const p = client.ping();
    await peer.waitForFrames(1);
    peer.socket.resetAndDestroy();
    const e = await expectRejects(p, 'CLOSED');
    expect(e.message).toMatch(/connection reset by peer/);
  });

  test('an undecodable frame closes the connection with a PROTOCOL error', async () => {
    const { client, peer } = await setup();
    const p = client.ping();
    await peer.waitForFrames(1);
    peer.sendRaw(Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b]));
    const e = await expectRejects(p, 'PROTOCOL');
    expect(e.message).toMatch(/undecodable frame/);
    const info = await client.closed;
    expect(info.error?.code).toBe('PROTOCOL');
    expect(info.local).toBe(false);
  });

  test('a frame over maxFrameBytes closes the connection with a PROTOCOL error', async () => {
    const { client, peer } = await setup(() => {}, { maxFrameBytes: 1024 });
    const p = client.ping();
    await peer.waitForFrames(1);
    peer.send({ msgid: 19, pad: 'x'.repeat(2000) });
    const e = await expectRejects(p, 'PROTOCOL');
    expect(e.message).toMatch(/bad frame from server/);
  });

  test('a malformed push (no seq) is a PROTOCOL error', async () => {
    const { client, peer } = await setup();
    const { seq: _seq, ...noSeq } = push(1);
    peer.send(noSeq);
    const info = await client.closed;
    expect(info.error?.code).toBe('PROTOCOL');
    expect(info.error?.message).toMatch(/'seq' must be a positive integer/);
  });

  test('connecting to a closed port rejects with CONNECT and says why in words', async () => {
    server = await startFakeServer();
    const port = server.port;
    await server.close();
    server = null;
    const e = await expectRejects(ChatClient.connect({ host: '127.0.0.1', port }), 'CONNECT');
    expect(e.message).toBe(`cannot connect to 127.0.0.1:${port}: connection refused`);
  });

  test('destroy() rejects pending requests at once and reports a local close', async () => {
    const { client, peer } = await setup();
    const p = client.ping();
    await peer.waitForFrames(1);
    client.destroy();
    await expectRejects(p, 'CLOSED');
    expect(await client.closed).toEqual({ error: null, local: true });
  });
});

describe('pushes, seq tracking and DELIVER_ACK', () => {
  test('pushes are delivered in order; a push with seq <= lastSeq is ignored but counted', async () => {
    const { client, peer } = await setup(() => {}, { autoAck: false });
    const seen: number[] = [];
    client.onPush((p) => seen.push(p.seq));
    for (const seq of [1, 2, 3, 2, 3, 4, 1]) peer.send(push(seq));
    peer.send(push(5));
    const got = await client.waitForPushes(5);
    expect(got.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(client.lastSeq).toBe(5);
    expect(client.stats).toMatchObject({ pushes: 5, duplicates: 3, gaps: 0 });
  });

  test('a seq that skips ahead is delivered and counted as a gap', async () => {
    const { client, peer } = await setup(() => {}, { autoAck: false });
    for (const seq of [1, 2, 5, 6]) peer.send(push(seq));
    await client.waitForPushes(4);
    expect(client.lastSeq).toBe(6);
    expect(client.stats.gaps).toBe(1);
  });

  test('login(…, lastseq) restarts seq tracking there, before the pushes that follow the ack', async () => {
    const { client } = await setup((req, peer) => {
      loginResponder(req, peer);
      if (req.msgid === 1) for (const seq of [9, 10, 11, 12]) peer.send(push(seq)); // same read as the ack
    });
    const ack = await client.login(5, 'pw', 10);
    expect(ack).toMatchObject({ errno: 0, id: 5, name: 'me' });
    expect(client.userId).toBe(5);
    const got = await client.waitForPushes(2);
    expect(got.map((p) => p.seq)).toEqual([11, 12]);
    expect(client.stats.duplicates).toBe(2);
  });

  test('acks are coalesced: a burst of 200 pushes gets 4 DELIVER_ACKs (every 64, then the rest after the delay)', async () => {
    const { client, peer } = await setup(() => {}, { ackDelayMs: 300 });
    const burst = Buffer.concat(Array.from({ length: 200 }, (_, i) => pushFrame(i + 1)));
    peer.sendRaw(burst);
    await client.waitForPushes(200);
    await until(() => peer.ofType(17).length === 4);
    await sleep(350);
    const acks = peer.ofType(17);
    expect(acks.map((a) => a.seq)).toEqual([64, 128, 192, 200]);
    expect(client.stats.acksSent).toBe(4);
  });

  test('a few pushes: one DELIVER_ACK after ackDelayMs, never one per message', async () => {
    const { client, peer } = await setup(() => {}, { ackDelayMs: 150 });
    for (let seq = 1; seq <= 5; seq++) peer.send(push(seq));
    await client.waitForPushes(5);
    expect(peer.ofType(17)).toHaveLength(0);
    await until(() => peer.ofType(17).length === 1);
    await sleep(200);
    expect(peer.ofType(17).map((a) => a.seq)).toEqual([5]);
  });

  test('close() sends the pending DELIVER_ACK before closing', async () => {
    const { client, peer } = await setup(() => {}, { ackDelayMs: 60_000 });
    for (let seq = 1; seq <= 3; seq++) peer.send(push(seq));
    await client.waitForPushes(3);
    await client.close();
    expect(peer.ofType(17).map((a) => a.seq)).toEqual([3]);
  });

  test('logout() flushes the pending DELIVER_ACK before the logout request', async () => {
    const { client, peer } = await setup(
      (req, p) => {
        loginResponder(req, p);
        if (req.msgid === 3) p.send({ msgid: 16, errno: 0, reqid: req.reqid });
      },
      { ackDelayMs: 60_000 },
    );
    await client.login(5, 'pw');
    peer.send(push(1));
    peer.send(push(2));
    await client.waitForPushes(2);
    expect((await client.logout()).errno).toBe(0);
    expect(peer.received.map((o) => o.msgid)).toEqual([1, 17, 3]);
    expect(peer.ofType(17)[0]!.seq).toBe(2);
    expect(client.userId).toBe(0);
    expect(client.lastSeq).toBe(0);
  });

  test('autoAck: false sends no DELIVER_ACK by itself; deliverAck(seq) sends exactly one', async () => {
    const { client, peer } = await setup(() => {}, { autoAck: false, ackDelayMs: 10 });
    for (let seq = 1; seq <= 70; seq++) peer.send(push(seq));
    await client.waitForPushes(70);
    await sleep(60);
    expect(peer.ofType(17)).toHaveLength(0);
    client.deliverAck(69);
    await until(() => peer.ofType(17).length === 1);
    expect(peer.ofType(17)[0]).toMatchObject({ msgid: 17, seq: 69 });
    await client.close();
    expect(peer.ofType(17)).toHaveLength(1);
  });

  test('waitForPushes counts buffered pushes, times out leaving them buffered, and rejects on close', async () => {
    const { client, peer } = await setup(() => {}, { autoAck: false });
    peer.send(push(1));
    await until(() => client.stats.pushes === 1);
    const e = await expectRejects(client.waitForPushes(2, 80), 'TIMEOUT');
    expect(e.message).toBe('waited 80 ms for 2 pushes, 1 arrived');
    peer.send(push(2));
    expect((await client.waitForPushes(2)).map((p) => p.seq)).toEqual([1, 2]);
    const waiting = client.waitForPushes(1, 5000);
    peer.socket.end();
    await expectRejects(waiting, 'CLOSED');
  });

  test('pushBufferSize bounds what is kept for waitForPushes; takePushes drains it', async () => {
    const { client, peer } = await setup(() => {}, { autoAck: false, pushBufferSize: 3 });
    const all: ChatPush[] = [];
    client.onPush((p) => all.push(p));
    for (let seq = 1; seq <= 5; seq++) peer.send(push(seq));
    await until(() => all.length === 5);
    expect(client.takePushes().map((p) => p.seq)).toEqual([3, 4, 5]);
    expect(client.takePushes()).toEqual([]);
  });

  test('a long stream into a bounded buffer keeps exactly the newest pushes', async () => {
    const { client, peer } = await setup(() => {}, { pushBufferSize: 100 });
    const n = 5000;
    peer.sendRaw(Buffer.concat(Array.from({ length: n }, (_, i) => pushFrame(i + 1))));
    await until(() => client.stats.pushes === n);
    const kept = client.takePushes().map((p) => p.seq);
    expect(kept).toEqual(Array.from({ length: 100 }, (_, i) => n - 99 + i));
  });

  test('off() and the unsubscribe function stop a listener', async () => {
    const { client, peer } = await setup(() => {}, { autoAck: false });
    const a: number[] = [];
    const b: number[] = [];
    const unsubscribe = client.onPush((p) => a.push(p.seq));
    const lb = (p: ChatPush): void => {
      b.push(p.seq);
    };
    client.on('push', lb);
    peer.send(push(1));
    await client.waitForPushes(1);
    unsubscribe();
    client.off('push', lb);
    peer.send(push(2));
    await client.waitForPushes(1);
    expect(a).toEqual([1]);
    expect(b).toEqual([1]);
  });
});

describe('keep-alive', () => {
  test('keepAliveMs sends PING while idle, and nothing once closed', async () => {
    const loop = new EventLoop();
    const { client, peer } = await setup((req, p) => p.send({ msgid: 19, reqid: req.reqid }), {
      keepAliveMs: 40,
      loop,
    });
    await until(() => peer.ofType(18).length >= 2, 10_000);
    const peerClosed = new Promise((resolve) => peer.socket.once('close', resolve));
    await client.close();
    // No timer of the client is left to send anything, and everything it sent has arrived.
    expect(loop.timerCount()).toBe(0);
    await peerClosed;
    expect(peer.received.length).toBe(client.stats.framesOut);
  });

  test('no keep-alive PING while the client keeps sending', async () => {
    const { client, peer } = await setup(
      (req, p) => p.send({ msgid: 13, errno: 0, friendid: 1, reqid: req.reqid }),
      { keepAliveMs: 200 },
    );
    const end = Date.now() + 700;
    while (Date.now() < end) {
      await client.addFriend(1);
      await sleep(10);
    }
    expect(peer.ofType(7).length).toBeGreaterThan(10);
    expect(peer.ofType(18)).toHaveLength(0);
  });
});

function pushFrame(seq: number): Buffer {
  const body = Buffer.from(JSON.stringify(push(seq)), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}
