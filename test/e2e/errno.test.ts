/**
 * Every errno of docs/PROTOCOL.md §5 from the real server, over both stores and both framed codecs,
 * with the reply id DECISIONS.md assigns and a check that the refused request changed nothing.
 */
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { ChatClient } from '../../src/app/client/ChatClient.js';
import type { WireObject } from '../../src/app/client/types.js';
import { type ChatServerProcess, startChatServer } from '../helpers/chatServer.js';
import {
  barrier,
  Clients,
  CODECS,
  login,
  RawSocket,
  rawCall,
  STORES,
  sharedServer,
  sleep,
  uniqueName,
  waitUntil,
} from './support.js';

const UNKNOWN_ID = 99_999_999;

function expectError(got: object, msgid: number, errno: number, what: string): void {
  const reply = got as WireObject;
  expect({ msgid: reply.msgid, errno: reply.errno }, `${what}: ${JSON.stringify(reply)}`).toEqual({
    msgid,
    errno,
  });
  expect(typeof reply.errmsg === 'string' && reply.errmsg.length > 0, `${what} has an errmsg`).toBe(true);
}

/** The client's own codec when it can express `body` (typed fields), else a raw JSON frame. */
function send(c: ChatClient, body: WireObject, typed: boolean): Promise<WireObject> {
  return typed ? c.request(body) : rawCall(c, body);
}

describe.each(STORES)('errno on %s', (store) => {
  const server = sharedServer({ db: store });

  describe.each(CODECS)('over framed %s', (codec) => {
    const clients = new Clients(server);
    afterEach(() => clients.closeAll());

    test('1: wrong password or unknown id, with the classic errmsg', async () => {
      const { client, user } = await clients.withNewUser(codec);
      const wrong = await client.login(user.id, 'not the password');
      expect(wrong).toMatchObject({ msgid: 2, errno: 1, errmsg: 'id or password is invalid!' });
      const unknown = await client.login(UNKNOWN_ID, user.password);
      expect(unknown).toMatchObject({ msgid: 2, errno: 1, errmsg: 'id or password is invalid!' });
      // Still not logged in; the right password works afterwards.
      expect((await client.sendChat(user.id, 'x')).errno).toBe(4);
      await login(client, user);
    });

    test('2: an account that is online cannot log in again until it leaves', async () => {
      const first = await clients.loggedIn(codec);
      const other = await clients.connect(codec);
      const second = await other.login(first.user.id, first.user.password);
      expect(second).toMatchObject({ msgid: 2, errno: 2, errmsg: 'this account is using, input another!' });
      // Same account again on the same connection: errno 2; another account there: errno 3.
      expect((await first.client.login(first.user.id, first.user.password)).errno).toBe(2);
      const someoneElse = await clients.withNewUser(codec);
      expect((await first.client.login(someoneElse.user.id, someoneElse.user.password)).errno).toBe(3);
      // The first session is untouched by all this…
      expect((await first.client.sendChat(first.user.id, 'still here')).errno).toBe(0);
      // …and once its connection is gone the account may log in elsewhere.
      first.client.destroy();
      await waitUntil(
        async () => (await other.login(first.user.id, first.user.password)).errno === 0,
        'the account to be free after its connection closed',
      );
    });

    test('2: of many simultaneous logins of one account exactly one wins', async () => {
      const { user } = await clients.withNewUser(codec);
      const conns = await Promise.all(Array.from({ length: 8 }, () => clients.connect(codec)));
      const acks = await Promise.all(conns.map((c) => c.login(user.id, user.password)));
      expect(acks.map((a) => a.errno).sort()).toEqual([0, 2, 2, 2, 2, 2, 2, 2]);
      const winner = conns[acks.findIndex((a) => a.errno === 0)]!;
      expect((await winner.sendChat(user.id, 'mine')).errno).toBe(0);
      expect(await winner.waitForPushes(1, 15_000)).toMatchObject([{ msg: 'mine', seq: 1 }]);
    });

    test('3: missing fields, wrong types, over-long values, unknown msgids', async () => {
      const { client: c, user } = await clients.loggedIn(codec);
      const peer = await clients.loggedIn(codec);
      const gid = (await c.createGroup(uniqueName('g'), '')).groupid;
      const to = peer.user.id;
      const long = (n: number, ch = 'x') => ch.repeat(n);
      // [request, reply msgid, representable in protobuf]
      const cases: [WireObject, number, boolean][] = [
        [{ msgid: 4, name: uniqueName() }, 5, true],
        [{ msgid: 4, password: 'p' }, 5, true],
        [{ msgid: 4, name: 123, password: 'p' }, 5, false],
        [{ msgid: 4, name: uniqueName(), password: ['p'] }, 5, false],
        [{ msgid: 4, name: '', password: 'p' }, 5, true],
        [{ msgid: 4, name: long(51), password: 'p' }, 5, true],
        [{ msgid: 4, name: long(51, 'é'), password: 'p' }, 5, true],
        [{ msgid: 4, name: uniqueName(), password: long(51) }, 5, true],
        [{ msgid: 6, msg: 'no toid' }, 11, true],
        [{ msgid: 6, toid: to }, 11, true],
        [{ msgid: 6, toid: String(to), msg: 'x' }, 11, false],
        [{ msgid: 6, toid: to + 0.5, msg: 'x' }, 11, false],
        [{ msgid: 6, toid: 0, msg: 'x' }, 11, true],
        [{ msgid: 6, toid: -to, msg: 'x' }, 11, true],
        [{ msgid: 6, toid: to, msg: 42 }, 11, false],
        [{ msgid: 6, toid: to, msg: { text: 'x' } }, 11, false],
        [{ msgid: 6, toid: to, msg: long(4097) }, 11, true],
        [{ msgid: 6, toid: to, msg: long(1366, '€') }, 11, true], // 1366 chars, 4098 bytes
        [{ msgid: 6, toid: to, msg: 'x', cmid: long(65) }, 11, true],
        [{ msgid: 6, toid: to, msg: 'x', cmid: '' }, 11, true],
        [{ msgid: 6, toid: to, msg: 'x', cmid: 7 }, 11, false],
        [{ msgid: 6, toid: to, msg: 'x', time: long(65) }, 11, true],
        [{ msgid: 7 }, 13, true],
        [{ msgid: 7, friendid: 'x' }, 13, false],
        [{ msgid: 7, friendid: true }, 13, false],
        [{ msgid: 7, friendid: user.id }, 13, true], // yourself
        [{ msgid: 8, groupdesc: 'd' }, 14, true],
        [{ msgid: 8, groupname: uniqueName('g') }, 14, true],
        [{ msgid: 8, groupname: long(51), groupdesc: '' }, 14, true],
        [{ msgid: 8, groupname: uniqueName('g'), groupdesc: long(201) }, 14, true],
        [{ msgid: 8, groupname: { n: 1 }, groupdesc: '' }, 14, false],
        [{ msgid: 9 }, 15, true],
        [{ msgid: 9, groupid: String(gid) }, 15, false],
        [{ msgid: 9, groupid: -1 }, 15, true],
        [{ msgid: 10, msg: 'x' }, 12, true],
        [{ msgid: 10, groupid: gid, msg: long(4097) }, 12, true],
        [{ msgid: 10, groupid: gid, msg: 'x', cmid: long(65) }, 12, true],
        [{ msgid: 10, groupid: [gid], msg: 'x' }, 12, false],
        [{ msgid: 17 }, 20, true],
        [{ msgid: 17, seq: 'x' }, 20, false],
        [{ msgid: 17, seq: -1 }, 20, true],
        [{ msgid: 18, t: { x: 1 } }, 20, false],
        [{ msgid: 18, t: true }, 20, false],
        [{ msgid: 6, id: String(user.id), toid: to, msg: 'x' }, 11, false],
        // unknown and reply-only msgids, and msgids that are not integers
        [{ msgid: 99 }, 20, false],
        [{ msgid: 0 }, 20, false],
        [{ msgid: 21 }, 20, false],
        [{ msgid: -6 }, 20, false],
        [{ msgid: 6.5, toid: to, msg: 'x' }, 20, false],
        [{ msgid: '6', toid: to, msg: 'x' }, 20, false],
        [{ toid: to, msg: 'x' }, 20, false],
        ...[2, 5, 11, 12, 13, 14, 15, 16, 19, 20].map((id): [WireObject, number, boolean] => [
          { msgid: id },
          20,
          true,
        ]),
      ];
      for (const [body, ack, typed] of cases) {
        expectError(await send(c, body, typed), ack, 3, JSON.stringify(body).slice(0, 120));
      }
      // Values exactly at each limit are accepted (characters are code points: 50 emoji fit).
      const okName = Array.from(`${uniqueName('n')}${'😀'.repeat(50)}`)
        .slice(0, 50)
        .join('');
      expect(await c.request({ msgid: 4, name: okName, password: long(50, '密') })).toMatchObject({
        errno: 0,
      });
      const okGroup = Array.from(`${uniqueName('g')}${'𝄞'.repeat(50)}`)
        .slice(0, 50)
        .join('');
      expect(await c.createGroup(okGroup, long(200, 'ü'))).toMatchObject({ errno: 0 });
      const max = await c.sendChat(to, long(1024, '😀'), { cmid: long(64, 'c') }); // 4096 bytes
      expect(max).toMatchObject({ msgid: 11, errno: 0, cmid: long(64, 'c') });
      // Only the accepted message reached the peer; the rejected ones were never stored.
      const [push] = await peer.client.waitForPushes(1, 15_000);
      expect(push).toMatchObject({ seq: 1, mid: max.mid, msg: long(1024, '😀') });
      await barrier(c);
      await barrier(peer.client);
      expect(peer.client.takePushes()).toEqual([]);
      // The connection survived every refusal.
      expect((await c.ping(1)).msgid).toBe(19);
    });

    test('3: before login too, and for bad login requests', async () => {
      const c = await clients.connect(codec);
      const reg = await c.register(uniqueName(), 'pw');
      const cases: [WireObject, number, boolean][] = [
        [{ msgid: 99 }, 20, false],
        [{ msgid: 1, password: 'pw' }, 2, true],
        [{ msgid: 1, id: String(reg.id), password: 'pw' }, 2, false],
        [{ msgid: 1, id: reg.id, password: 77 }, 2, false],
        [{ msgid: 1, id: reg.id, password: 'x'.repeat(51) }, 2, true],
        [{ msgid: 1, id: reg.id, password: 'pw', lastseq: -1 }, 2, true],
        [{ msgid: 1, id: reg.id, password: 'pw', lastseq: 'x' }, 2, false],
        [{ msgid: 6, toid: reg.id, msg: 42 }, 11, false], // validation comes before the login check
      ];
      for (const [body, ack, typed] of cases) {
        expectError(await send(c, body, typed), ack, 3, JSON.stringify(body));
      }
      // JSON objects whose reqid cannot be echoed (wrong type) or that lack a msgid: ERROR without
      // reqid, and the connection stays.
      const errors: WireObject[] = [];
      c.on('serverError', (e) => errors.push(e as unknown as WireObject));
      const payloads = ['{}', '{"msgid":18,"reqid":{"x":1}}', '{"msgid":18,"reqid":true}', '{"reqid":[1]}'];
      for (const payload of payloads) {
        const bytes = Buffer.from(payload);
        const frame = Buffer.alloc(4 + bytes.length);
        frame.writeUInt32BE(bytes.length, 0);
        bytes.copy(frame, 4);
        c.writeBytes(frame);
      }
      await waitUntil(() => errors.length === payloads.length, 'an ERROR for each');
      for (const e of errors) expect(e).toMatchObject({ msgid: 20, errno: 3 });
      expect(errors.every((e) => e.reqid === undefined)).toBe(true);
      expect((await c.login(reg.id, 'pw')).errno).toBe(0);
    });

    test('4: every request but LOGIN, REG and PING needs a login', async () => {
      const c = await clients.connect(codec);
      const target = await clients.withNewUser(codec);
      const groupname = uniqueName('g');
      const cases: [WireObject, number][] = [
        [{ msgid: 3 }, 16],
        [{ msgid: 6, toid: target.user.id, msg: 'x' }, 11],
        [{ msgid: 7, friendid: target.user.id }, 13],
        [{ msgid: 8, groupname, groupdesc: '' }, 14],
        [{ msgid: 9, groupid: 1 }, 15],
        [{ msgid: 10, groupid: 1, msg: 'x' }, 12],
        [{ msgid: 17, seq: 1 }, 20],
      ];
      for (const [body, ack] of cases) expectError(await c.request(body), ack, 4, JSON.stringify(body));
      // After a logout it is the same.
      await login(target.client, target.user);
      expect((await target.client.logout()).errno).toBe(0);
      for (const [body, ack] of cases) {
        expectError(await target.client.request(body), ack, 4, `after logout: ${JSON.stringify(body)}`);
      }
      // None of them did anything: the group name is still free, the target has no friend and no message.
      const { client: u } = await clients.loggedIn(codec);
      expect((await u.createGroup(groupname, '')).errno).toBe(0);
      const ack = await login(target.client, target.user);
      expect(ack.friends).toEqual([]);
      await barrier(target.client);
      expect(target.client.takePushes()).toEqual([]);
    });

    test('5: an id field that is not the session user, and group chat by a non-member', async () => {
      const me = await clients.loggedIn(codec);
      const victim = await clients.loggedIn(codec);
      const gid = (await victim.client.createGroup(uniqueName('g'), '')).groupid;
      const v = victim.user.id;
      const cases: [WireObject, number][] = [
        [{ msgid: 6, id: v, toid: me.user.id, msg: 'spoofed' }, 11],
        [{ msgid: 7, id: v, friendid: me.user.id }, 13],
        [{ msgid: 8, id: v, groupname: uniqueName('g'), groupdesc: '' }, 14],
        [{ msgid: 9, id: v, groupid: gid }, 15],
        [{ msgid: 10, id: v, groupid: gid, msg: 'spoofed' }, 12],
        [{ msgid: 17, id: v, seq: 1 }, 20],
        [{ msgid: 18, id: v }, 20],
        [{ msgid: 3, id: v }, 16],
      ];
      for (const [body, ack] of cases)
        expectError(await me.client.request(body), ack, 5, JSON.stringify(body));
      expectError(await me.client.groupChat(gid, 'not a member'), 12, 5, 'group chat by a non-member');
      // Still logged in as me; with my own id (what the classic client sends) it works.
      const own = await me.client.request({ msgid: 6, id: me.user.id, toid: v, msg: 'mine' });
      expect(own).toMatchObject({ msgid: 11, errno: 0 });
      // The victim got only that message, and its group still has just its creator.
      const [push] = await victim.client.waitForPushes(1, 15_000);
      expect(push).toMatchObject({ seq: 1, id: me.user.id, msg: 'mine' });
      expect((await victim.client.logout()).errno).toBe(0);
      const ack = await login(victim.client, victim.user);
      expect(ack.friends).toEqual([]);
      expect(ack.groups).toHaveLength(1);
      expect(ack.groups[0]!.users.map((u) => u.id)).toEqual([v]);
      await barrier(victim.client);
      expect(victim.client.takePushes()).toEqual([]);
    });

    test('6: unknown user or group', async () => {
      const { client } = await clients.loggedIn(codec);
      expectError(await client.sendChat(UNKNOWN_ID, 'hello?'), 11, 6, 'chat to an unknown user');
      expectError(await client.addFriend(UNKNOWN_ID), 13, 6, 'add an unknown friend');
      expectError(await client.joinGroup(UNKNOWN_ID), 15, 6, 'join an unknown group');
      expectError(await client.groupChat(UNKNOWN_ID, 'hello?'), 12, 6, 'chat to an unknown group');
      expect((await client.ping()).msgid).toBe(19);
    });

    test('7: name taken, already friends, already a member, group name taken', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      const taken = await a.client.register(b.user.name, 'other');
      expect(taken).toMatchObject({ msgid: 5, errno: 7 });
      expect(typeof taken.errmsg).toBe('string');
      // Names compare exactly (both stores): case and trailing spaces make another name.
      for (const variant of [b.user.name.toUpperCase(), `${b.user.name} `, ` ${b.user.name}`]) {
        expect((await a.client.register(variant, 'pw')).errno, JSON.stringify(variant)).toBe(0);
      }
      expect((await a.client.addFriend(b.user.id)).errno).toBe(0);
      expectError(await a.client.addFriend(b.user.id), 13, 7, 'already friends');
      expectError(await b.client.addFriend(a.user.id), 13, 7, 'already friends (other way)');
      const groupname = uniqueName('g');
      const gid = (await a.client.createGroup(groupname, '')).groupid;
      expectError(await a.client.joinGroup(gid), 15, 7, 'creator joins its own group');
      expect((await b.client.joinGroup(gid)).errno).toBe(0);
      expectError(await b.client.joinGroup(gid), 15, 7, 'already a member');
      expectError(await b.client.createGroup(groupname, 'again'), 14, 7, 'group name taken');
      // Nothing was duplicated.
      expect((await b.client.logout()).errno).toBe(0);
      const ack = await login(b.client, b.user);
      expect(ack.friends.map((f) => f.id)).toEqual([a.user.id]);
      expect(ack.groups.map((g) => [g.id, g.groupdesc, g.users.map((u) => u.role)])).toEqual([
        [gid, '', ['creator', 'normal']],
      ]);
    });
  });
});

describe.each(STORES)('errno 8 (rate limit, --rate 5) on %s', (store) => {
  let server: ChatServerProcess;

  beforeAll(async () => {
    server = await startChatServer({ db: store, extraArgs: ['--rate', '5'] });
  });

  afterAll(async () => {
    await server?.cleanup();
  });

  describe.each(CODECS)('over framed %s', (codec) => {
    const clients = new Clients(() => server);
    afterEach(() => clients.closeAll());

    test('a burst beyond the bucket gets errno 8 and is not stored; the rest is delivered', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      const acks = await Promise.all(
        Array.from({ length: 100 }, (_, i) => a.client.sendChat(b.user.id, `burst ${i}`)),
      );
      const accepted = acks.flatMap((ack, i) => (ack.errno === 0 ? [i] : []));
      const limited = acks.filter((ack) => ack.errno === 8);
      expect(accepted.length + limited.length).toBe(100);
      expect(limited.length).toBeGreaterThan(0);
      expect(accepted.length).toBeGreaterThanOrEqual(10); // the burst: twice the rate
      for (const ack of limited) expect(ack).toMatchObject({ msgid: 11, errno: 8, mid: 0 });
      // Other requests are not limited.
      expect((await a.client.ping(1)).msgid).toBe(19);
      const pushes = await b.client.waitForPushes(accepted.length, 15_000);
      expect(pushes.map((p) => p.msg)).toEqual(accepted.map((i) => `burst ${i}`));
      expect(pushes.map((p) => p.seq)).toEqual(accepted.map((_, k) => k + 1));
      // The bucket refills: after a pause a message goes through again.
      await sleep(1200);
      expect((await a.client.sendChat(b.user.id, 'later')).errno).toBe(0);
      const [later] = await b.client.waitForPushes(1, 15_000);
      expect(later).toMatchObject({ msg: 'later', seq: accepted.length + 1 });
    });
  });
});

describe.each(CODECS)('errno 9 (store unavailable) on mysql over framed %s', (codec) => {
  const clients = new Clients(() => server);
  let server: ChatServerProcess;

  beforeAll(async () => {
    server = await startChatServer({ db: 'mysql' });
  });

  afterAll(async () => {
    await clients.closeAll();
    await server?.cleanup();
  });

  test('the database is dropped under a running server: errno 9, and the server lives on', async () => {
    const a = await clients.loggedIn(codec);
    const b = await clients.loggedIn(codec);
    const spare = await clients.withNewUser(codec);
    expect((await a.client.sendChat(b.user.id, 'before')).errno).toBe(0);
    const database = new URL(server.dbUrl).pathname.slice(1);
    const admin = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
    try {
      await admin.query(`DROP DATABASE \`${database}\``);
      const chat = await a.client.sendChat(b.user.id, 'after');
      expect(chat).toMatchObject({ msgid: 11, errno: 9, mid: 0 });
      expect((await a.client.register(uniqueName(), 'pw')).errno).toBe(9);
      expect((await a.client.createGroup(uniqueName('g'), '')).errno).toBe(9);
      expect((await a.client.addFriend(b.user.id)).errno).toBe(9);
      expect((await spare.client.login(spare.user.id, spare.user.password)).errno).toBe(9);
      // The process, its sessions and its connections are all still there.
      expect((await a.client.ping(9)).msgid).toBe(19);
      expect((await b.client.ping(9)).msgid).toBe(19);
      expect(server.alive()).toBe(true);
      // An empty database of that name (no tables): still errno 9, still no crash.
      await admin.query(`CREATE DATABASE \`${database}\``);
      expect((await a.client.sendChat(b.user.id, 'still broken')).errno).toBe(9);
      expect(server.alive()).toBe(true);
    } finally {
      await admin.end();
    }
  });
});

describe.each(STORES)('errno 2 lock-out with the cluster presence (Redis) on %s', (store) => {
  let server: ChatServerProcess;
  const clients = new Clients(() => server);

  beforeAll(async () => {
    server = await startChatServer({
      db: store,
      extraArgs: ['--redis', 'redis://127.0.0.1:6379', '--redis-prefix', uniqueName('e2e'), '--workers', '0'],
    });
  });

  afterAll(async () => {
    await clients.closeAll();
    await server?.cleanup();
  });

  test('a connection that drops in the middle of its login never leaves the account locked', async () => {
    const { user } = await clients.withNewUser('json');
    const probe = await clients.connect('json');
    for (let i = 0; i < 60; i++) {
      // LOGIN, then gone a few milliseconds later: sometimes before, during or after the
      // password check, the presence claim (a Redis round trip) and the state update.
      const raw = await RawSocket.connect(server.host, server.port);
      await raw.sendJson({ msgid: 1, id: user.id, password: user.password });
      await sleep(Math.random() * 8);
      raw.destroy();
      await raw.closed;
      await waitUntil(
        async () => {
          const ack = await probe.login(user.id, user.password);
          if (ack.errno !== 0 && ack.errno !== 2) throw new Error(`login: errno ${ack.errno}`);
          return ack.errno === 0;
        },
        `the account to be free again after attempt ${i}`,
        5000,
      );
      expect((await probe.logout()).errno).toBe(0);
    }
  }, 60_000);
});
