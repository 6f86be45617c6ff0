/**
 * ChatClient against the real chat server (dist/app/bin/chat-server.js, spawned on a free
 * port with a throwaway SQLite file). The protocol suites run once over framed JSON and once over
 * protobuf; the connection life-cycle suite over JSON.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ChatClient, type ChatClientOptions } from '../../src/app/client/ChatClient.js';
import type { CodecName } from '../../src/app/client/codec.js';
import { ChatClientError } from '../../src/app/client/errors.js';
import type { ServerError } from '../../src/app/client/types.js';
import { type RunningServer, startServer, uniqueName } from './helpers/realServer.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: RunningServer;
const open: ChatClient[] = [];
/** The codec of the suite being run (set by its beforeAll). */
let codec: CodecName = 'json';

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function connect(options: Partial<ChatClientOptions> = {}): Promise<ChatClient> {
  const c = await ChatClient.connect({ host: server.host, port: server.port, codec, ...options });
  expect(c.codec.name).toBe(codec);
  open.push(c);
  return c;
}

interface User {
  id: number;
  name: string;
  password: string;
}

async function newUser(client?: ChatClient): Promise<User> {
  const c = client ?? (await connect());
  const name = uniqueName();
  const r = await c.register(name, 'secret');
  expect(r).toMatchObject({ msgid: 5, errno: 0 });
  expect(r.id).toBeGreaterThan(0);
  return { id: r.id, name, password: 'secret' };
}

async function loggedIn(
  options: Partial<ChatClientOptions> = {},
): Promise<{ client: ChatClient; user: User }> {
  const client = await connect(options);
  const user = await newUser(client);
  const ack = await client.login(user.id, user.password);
  expect(ack.errno).toBe(0);
  return { client, user };
}

describe.each(['json', 'protobuf'] as const)('over %s', (suiteCodec) => {
  beforeAll(() => {
    codec = suiteCodec;
  });

  describe('accounts', () => {
    test('register returns a fresh id; a taken name is errno 7, an empty password errno 3', async () => {
      const c = await connect();
      const name = uniqueName();
      const first = await c.register(name, 'pw');
      const second = await c.register(uniqueName(), 'pw');
      expect(first.errno).toBe(0);
      expect(second.id).not.toBe(first.id);
      const taken = await c.register(name, 'other');
      expect(taken).toMatchObject({ msgid: 5, errno: 7, id: 0 });
      const empty = await c.register(uniqueName(), '');
      expect(empty.errno).toBe(3);
    });

    test('login: wrong password errno 1 with the classic text; the right one returns the user', async () => {
      const c = await connect();
      const user = await newUser(c);
      const bad = await c.login(user.id, 'wrong');
      expect(bad).toMatchObject({
        msgid: 2,
        errno: 1,
        errmsg: 'id or password is invalid!',
        id: 0,
        friends: [],
      });
      expect(c.userId).toBe(0);
      const ok = await c.login(user.id, user.password);
      expect(ok).toMatchObject({ msgid: 2, errno: 0, id: user.id, name: user.name, friends: [], groups: [] });
      expect(c.userId).toBe(user.id);
      expect(c.userName).toBe(user.name);
    });

    test('the same account on a second connection is errno 2', async () => {
      const { user } = await loggedIn();
      const other = await connect();
      const r = await other.login(user.id, user.password);
      expect(r).toMatchObject({ errno: 2, errmsg: 'this account is using, input another!' });
    });

    test('before login only LOGIN, REG and PING are accepted (errno 4); logout returns there', async () => {
      const c = await connect();
      expect((await c.addFriend(1)).errno).toBe(4);
      expect((await c.ping('x')).t).toBe('x');
      const user = await newUser(c);
      await c.login(user.id, user.password);
      expect((await c.logout()).errno).toBe(0);
      expect(c.userId).toBe(0);
      expect((await c.sendChat(user.id, 'hi')).errno).toBe(4);
    });

    test('a msgid that is not a request is answered with ERROR errno 3 echoing the reqid', async () => {
      const c = await connect();
      const reply = await c.request({ msgid: 19 }); // PONG: server → client only
      expect(reply).toMatchObject({ msgid: 20, errno: 3 });
      expect(reply.reqid === undefined).toBe(false);
      expect(c.connected).toBe(true);
      if (codec === 'json') {
        expect(await c.request({ msgid: 99 })).toMatchObject({
          msgid: 20,
          errno: 3,
          errmsg: 'unknown msgid 99',
        });
      } else {
        // protobuf has no type for an unknown msgid: refused locally, nothing is sent
        await expect(c.request({ msgid: 99 })).rejects.toThrow(/no protobuf type for msgid 99/);
      }
    });
  });

  describe('friends and groups', () => {
    test('addFriend is mutual and shows up in both login acks', async () => {
      const a = await loggedIn();
      const b = await loggedIn();
      expect(await a.client.addFriend(b.user.id)).toMatchObject({ msgid: 13, errno: 0, friendid: b.user.id });
      expect((await a.client.addFriend(b.user.id)).errno).toBe(7);
      expect((await a.client.addFriend(987_654_321)).errno).toBe(6);
      await a.client.logout();
      const again = await a.client.login(a.user.id, a.user.password);
      expect(again.friends).toEqual([{ id: b.user.id, name: b.user.name, state: 'online' }]);
      await b.client.logout();
      const bAgain = await b.client.login(b.user.id, b.user.password);
      expect(bAgain.friends.map((f) => f.id)).toEqual([a.user.id]);
    });

    test('createGroup / joinGroup; group chat reaches every member but the sender', async () => {
      const a = await loggedIn();
      const b = await loggedIn();
      const c = await loggedIn();
      const g = await a.client.createGroup(uniqueName('g'), 'a test group');
      expect(g).toMatchObject({ msgid: 14, errno: 0 });
      expect(await b.client.joinGroup(g.groupid)).toMatchObject({ msgid: 15, errno: 0, groupid: g.groupid });
      expect(await c.client.joinGroup(g.groupid)).toMatchObject({ errno: 0 });
      expect((await c.client.joinGroup(g.groupid)).errno).toBe(7);
      expect((await c.client.joinGroup(987_654_321)).errno).toBe(6);

      const ack = await b.client.groupChat(g.groupid, 'hello group');
      expect(ack).toMatchObject({ msgid: 12, errno: 0 });
      expect(ack.mid).toBeGreaterThan(0);
      for (const member of [a, c]) {
        const [p] = await member.client.waitForPushes(1);
        expect(p).toMatchObject({
          msgid: 10,
          groupid: g.groupid,
          id: b.user.id,
          name: b.user.name,
          msg: 'hello group',
          mid: ack.mid,
          seq: 1,
        });
        expect(p!.time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      }
      // Barrier: a one-to-one message to the sender. It must be the sender's first push (seq 1):
      // a push of its own group message would have taken seq 1 in its inbox.
      const probe = await a.client.sendChat(b.user.id, 'after the group message');
      const [first] = await b.client.waitForPushes(1);
      expect(first).toMatchObject({ msgid: 6, mid: probe.mid, seq: 1, msg: 'after the group message' });

      const outsider = await loggedIn();
      expect((await outsider.client.groupChat(g.groupid, 'let me in')).errno).toBe(5);
    });
  });

  describe('chat delivery', () => {
    test('one-to-one chat: ack with mid, push with every field, seq 1, 2, 3 and lastSeq', async () => {
      const a = await loggedIn();
      const b = await loggedIn();
      const acks = [];
      for (const text of ['one', 'two: with colon', '三'])
        acks.push(await a.client.sendChat(b.user.id, text));
      expect(acks.every((x) => x.msgid === 11 && x.errno === 0 && x.mid > 0)).toBe(true);
      const pushes = await b.client.waitForPushes(3);
      expect(pushes.map((p) => [p.seq, p.msg, p.mid])).toEqual([
        [1, 'one', acks[0]!.mid],
        [2, 'two: with colon', acks[1]!.mid],
        [3, '三', acks[2]!.mid],
      ]);
      expect(pushes[0]).toMatchObject({ msgid: 6, id: a.user.id, name: a.user.name, toid: b.user.id });
      expect(b.client.lastSeq).toBe(3);
      expect((await a.client.sendChat(987_654_321, 'nobody')).errno).toBe(6);
    });

    test('a client time is kept; a retried cmid is stored once and acknowledged with the same mid', async () => {
      const a = await loggedIn();
      const b = await loggedIn();
      const first = await a.client.sendChat(b.user.id, 'once', {
        cmid: 'retry-1',
        time: '2020-01-02 03:04:05',
      });
      const retry = await a.client.sendChat(b.user.id, 'once', {
        cmid: 'retry-1',
        time: '2020-01-02 03:04:05',
      });
      expect(first).toMatchObject({ errno: 0, cmid: 'retry-1' });
      expect(retry.mid).toBe(first.mid);
      const [p] = await b.client.waitForPushes(1);
      expect(p).toMatchObject({ msg: 'once', time: '2020-01-02 03:04:05', seq: 1 });
      // Barrier: the next message must be the next push, seq 2 (a stored duplicate would be seq 2).
      const next = await a.client.sendChat(b.user.id, 'next', { cmid: 'retry-2' });
      const [q] = await b.client.waitForPushes(1);
      expect(q).toMatchObject({ msg: 'next', mid: next.mid, seq: 2 });
    });

    test('300 concurrent sends: distinct mids, all pushed gap-free and in seq order', async () => {
      const a = await loggedIn();
      const b = await loggedIn();
      const n = 300;
      const arrivals: number[] = [];
      b.client.onPush(() => arrivals.push(Date.now()));
      const acks = await Promise.all(
        Array.from({ length: n }, (_, i) => a.client.sendChat(b.user.id, `m${i}`)),
      );
      expect(acks.every((x) => x.errno === 0)).toBe(true);
      expect(new Set(acks.map((x) => x.mid)).size).toBe(n);
      const pushes = await b.client.waitForPushes(n, 10_000);
      expect(pushes.map((p) => p.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(b.client.stats).toMatchObject({ pushes: n, gaps: 0, duplicates: 0 });
      // Coalesced: one DELIVER_ACK per 64 pushes plus at most one per 50 ms of arrivals, never one each.
      await sleep(120);
      const spreadMs = arrivals.at(-1)! - arrivals[0]!;
      expect(b.client.stats.acksSent).toBeGreaterThan(0);
      expect(b.client.stats.acksSent).toBeLessThanOrEqual(Math.ceil(n / 64) + Math.ceil(spreadMs / 50) + 2);
      expect(b.client.stats.acksSent).toBeLessThan(n / 4);
    });

    test('offline messages arrive after login; acknowledged ones are not sent again', async () => {
      const a = await loggedIn();
      const b = await newUser();
      for (let i = 1; i <= 3; i++) expect((await a.client.sendChat(b.id, `offline ${i}`)).errno).toBe(0);

      const first = await connect();
      await first.login(b.id, b.password);
      const got = await first.waitForPushes(3);
      expect(got.map((p) => [p.seq, p.msg])).toEqual([
        [1, 'offline 1'],
        [2, 'offline 2'],
        [3, 'offline 3'],
      ]);
      await first.close(); // flushes the coalesced DELIVER_ACK for seq 3

      const second = await connect();
      await second.login(b.id, b.password);
      // Barrier: a live message must be the first push of this session: had any acknowledged
      // message been sent again, it would have come first (the server pushes in seq order).
      expect((await a.client.sendChat(b.id, 'live')).errno).toBe(0);
      const [live] = await second.waitForPushes(1);
      expect(live).toMatchObject({ seq: 4, msg: 'live' });
      expect(second.stats.pushes).toBe(1);
    });

    test('without acks, a reconnect gets the messages again; lastseq skips what was processed', async () => {
      const a = await loggedIn();
      const b = await newUser();
      for (let i = 1; i <= 3; i++) await a.client.sendChat(b.id, `m${i}`);

      const noAck = await connect({ autoAck: false });
      await noAck.login(b.id, b.password);
      expect((await noAck.waitForPushes(3)).map((p) => p.seq)).toEqual([1, 2, 3]);
      await noAck.close();
      expect(noAck.stats.acksSent).toBe(0);

      const again = await connect({ autoAck: false });
      await again.login(b.id, b.password);
      expect((await again.waitForPushes(3)).map((p) => p.seq)).toEqual([1, 2, 3]);
      await again.close();

      const resumed = await connect();
      await resumed.login(b.id, b.password, 2);
      const rest = await resumed.waitForPushes(1);
      expect(rest.map((p) => [p.seq, p.msg])).toEqual([[3, 'm3']]);
      expect(resumed.lastSeq).toBe(3);
      // Barrier: the next message is the next push (seq 4); a re-sent 1 or 2 would come first.
      await a.client.sendChat(b.id, 'm4');
      const [fourth] = await resumed.waitForPushes(1);
      expect(fourth).toMatchObject({ seq: 4, msg: 'm4' });
      expect(resumed.stats.duplicates).toBe(0);
      expect(resumed.stats.pushes).toBe(2);
    });
  });
});

describe('connection life cycle', () => {
  beforeAll(() => {
    codec = 'json';
  });

  test('garbage on the wire: the server answers ERROR and closes; the client reports both', async () => {
    const c = await connect();
    const errors: ServerError[] = [];
    c.on('serverError', (e) => errors.push(e));
    c.writeBytes(Buffer.from([0, 0, 0, 5, 0x7b, 0x6e, 0x6f, 0x70, 0x65])); // "{nope": not JSON
    const info = await c.closed;
    expect(info.local).toBe(false);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.errno).toBe(3);
    expect(c.connected).toBe(false);
  });

  test('close() is graceful: replies to requests already sent still arrive, new requests are refused', async () => {
    const c = await connect();
    const pending = [c.register(uniqueName(), 'pw'), c.register(uniqueName(), 'pw')];
    const closed = c.close();
    await expect(c.ping()).rejects.toMatchObject({ code: 'CLOSED' });
    expect((await Promise.all(pending)).map((r) => r.errno)).toEqual([0, 0]);
    expect(await closed).toEqual({ error: null, local: true });
  });

  test('a server that crashes: pending work rejects with CLOSED and close is emitted', async () => {
    const own = await startServer();
    try {
      const c = await ChatClient.connect({ host: own.host, port: own.port });
      const user = await newUser(c);
      await c.login(user.id, user.password);
      const waiting = c.waitForPushes(1, 10_000).then(
        () => null,
        (error: unknown) => error,
      );
      await own.kill();
      const e = await waiting;
      expect(e).toBeInstanceOf(ChatClientError);
      expect((e as ChatClientError).code).toBe('CLOSED');
      expect((await c.closed).local).toBe(false);
      await expect(c.ping()).rejects.toMatchObject({ code: 'CLOSED' });
    } finally {
      await own.stop();
    }
  });

  test('connection refused is a CONNECT error in words', async () => {
    const own = await startServer();
    const port = own.port;
    await own.stop();
    await expect(ChatClient.connect({ host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'CONNECT',
      message: `cannot connect to 127.0.0.1:${port}: connection refused`,
    });
  });
});
