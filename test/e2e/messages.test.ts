/**
 * Every message id of docs/PROTOCOL.md §3–4 against the real server binary, over both stores and both
 * framed codecs: the replies' shapes and what they do to the server's state.
 */
import { afterEach, describe, expect, test } from 'vitest';
import {
  barrier,
  CHAT_TIME,
  Clients,
  CODECS,
  login,
  rawCall,
  STORES,
  sharedServer,
  uniqueName,
} from './support.js';

describe.each(STORES)('message ids on %s', (store) => {
  const server = sharedServer({ db: store });

  describe.each(CODECS)('over framed %s', (codec) => {
    const clients = new Clients(server);
    afterEach(() => clients.closeAll());

    test('REG (4 → 5) returns a new id; LOGIN (1 → 2) returns the user with empty lists', async () => {
      const c = await clients.connect(codec);
      const name = uniqueName();
      const reg = await c.register(name, 'pw');
      expect(reg).toMatchObject({ msgid: 5, errno: 0 });
      expect(reg.id).toBeGreaterThan(0);
      const other = await c.register(uniqueName(), 'pw');
      expect(other.errno).toBe(0);
      expect(other.id).not.toBe(reg.id);
      const ack = await c.login(reg.id, 'pw');
      expect(ack).toMatchObject({ msgid: 2, errno: 0, id: reg.id, name, friends: [], groups: [] });
    });

    test('LOGIN lists friends with their state and groups with members and roles', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      const c = await clients.withNewUser(codec); // registered, never logged in: offline
      expect(await a.client.addFriend(b.user.id)).toMatchObject({ msgid: 13, errno: 0, friendid: b.user.id });
      expect(await a.client.addFriend(c.user.id)).toMatchObject({ msgid: 13, errno: 0, friendid: c.user.id });
      const groupname = uniqueName('g');
      const created = await a.client.createGroup(groupname, 'the group');
      expect(created).toMatchObject({ msgid: 14, errno: 0 });
      const gid = created.groupid;
      expect(gid).toBeGreaterThan(0);
      expect(await b.client.joinGroup(gid)).toMatchObject({ msgid: 15, errno: 0, groupid: gid });

      expect(await a.client.logout()).toMatchObject({ msgid: 16, errno: 0 });
      const ackA = await login(a.client, a.user);
      expect(ackA.friends).toEqual([
        { id: b.user.id, name: b.user.name, state: 'online' },
        { id: c.user.id, name: c.user.name, state: 'offline' },
      ]);
      const members = [
        { id: a.user.id, name: a.user.name, state: 'online', role: 'creator' },
        { id: b.user.id, name: b.user.name, state: 'online', role: 'normal' },
      ];
      expect(ackA.groups).toEqual([{ id: gid, groupname, groupdesc: 'the group', users: members }]);

      // Friends are mutual: B and C see A without having asked.
      expect(await b.client.logout()).toMatchObject({ msgid: 16, errno: 0 });
      const ackB = await login(b.client, b.user);
      expect(ackB.friends).toEqual([{ id: a.user.id, name: a.user.name, state: 'online' }]);
      expect(ackB.groups).toEqual([{ id: gid, groupname, groupdesc: 'the group', users: members }]);
      const ackC = await login(c.client, c.user);
      expect(ackC.friends).toEqual([{ id: a.user.id, name: a.user.name, state: 'online' }]);
      expect(ackC.groups).toEqual([]);
    });

    test('LOGINOUT (3 → 16) ends the session: requests need a login again, friends see offline', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      expect((await a.client.addFriend(b.user.id)).errno).toBe(0);
      expect(await b.client.logout()).toMatchObject({ msgid: 16, errno: 0 });
      expect(await b.client.sendChat(a.user.id, 'after logout')).toMatchObject({ msgid: 11, errno: 4 });
      expect(await b.client.logout()).toMatchObject({ msgid: 16, errno: 4 });
      expect(await a.client.logout()).toMatchObject({ msgid: 16, errno: 0 });
      const ackA = await login(a.client, a.user);
      expect(ackA.friends).toEqual([{ id: b.user.id, name: b.user.name, state: 'offline' }]);
      // The account is free again, from this connection or another one.
      const elsewhere = await clients.connect(codec);
      const ackB = await login(elsewhere, b.user);
      expect(ackB.friends).toEqual([{ id: a.user.id, name: a.user.name, state: 'online' }]);
    });

    test('LOGINOUT waits for the chat messages sent before it; the connection may log in as another user', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      const c = await clients.withNewUser(codec);
      const order: string[] = [];
      const sends = Array.from({ length: 50 }, (_, i) =>
        a.client.sendChat(b.user.id, `p${i}`).then((ack) => {
          order.push(`ack ${ack.errno}`);
          return ack;
        }),
      );
      const bye = a.client.logout().then((r) => {
        order.push(`logout ${r.errno}`);
      });
      await Promise.all([...sends, bye]);
      expect(order).toEqual([...Array.from({ length: 50 }, () => 'ack 0'), 'logout 0']);
      expect((await b.client.waitForPushes(50, 15_000)).map((p) => p.msg)).toEqual(
        Array.from({ length: 50 }, (_, i) => `p${i}`),
      );
      // The same connection as C: it gets C's messages, and A's no more.
      await login(a.client, c.user);
      expect((await b.client.sendChat(a.user.id, 'for A')).errno).toBe(0);
      const forC = await b.client.sendChat(c.user.id, 'for C');
      const [push] = await a.client.waitForPushes(1, 15_000);
      expect(push).toMatchObject({ mid: forC.mid, toid: c.user.id, seq: 1, msg: 'for C' });
      await barrier(a.client);
      expect(a.client.takePushes()).toEqual([]);
    });

    test('ONE_CHAT (6): ack 11 with mid; the push carries mid, seq, id, name, toid, msg, time', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      const text = 'hello 你好 😀 "quoted" \\ done';
      const ack = await a.client.sendChat(b.user.id, text);
      expect(ack).toMatchObject({ msgid: 11, errno: 0 });
      expect(ack.mid).toBeGreaterThan(0);
      const [push] = await b.client.waitForPushes(1, 15_000);
      expect(push).toEqual({
        msgid: 6,
        mid: ack.mid,
        seq: 1,
        id: a.user.id,
        name: a.user.name,
        toid: b.user.id,
        msg: text,
        time: expect.stringMatching(CHAT_TIME),
      });
      // With a cmid and the client's own time: the ack echoes the cmid, the push the time.
      const ack2 = await a.client.sendChat(b.user.id, 'second', { cmid: 'c-1', time: '2001-02-03 04:05:06' });
      expect(ack2).toMatchObject({ msgid: 11, errno: 0, cmid: 'c-1' });
      expect(ack2.mid).toBeGreaterThan(ack.mid);
      const [push2] = await b.client.waitForPushes(1, 15_000);
      expect(push2).toMatchObject({
        msgid: 6,
        mid: ack2.mid,
        seq: 2,
        msg: 'second',
        time: '2001-02-03 04:05:06',
      });
      // Chat to yourself is allowed and lands in your own inbox.
      const self = await a.client.sendChat(a.user.id, 'note to self');
      expect(self.errno).toBe(0);
      const [own] = await a.client.waitForPushes(1, 15_000);
      expect(own).toMatchObject({ msgid: 6, mid: self.mid, seq: 1, id: a.user.id, toid: a.user.id });
    });

    test('GROUP_CHAT (10): ack 12; every member but the sender gets the push', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec);
      const c = await clients.loggedIn(codec);
      const outsider = await clients.loggedIn(codec);
      const gid = (await a.client.createGroup(uniqueName('g'), '')).groupid;
      expect((await b.client.joinGroup(gid)).errno).toBe(0);
      expect((await c.client.joinGroup(gid)).errno).toBe(0);
      const ack = await a.client.groupChat(gid, 'to the group', { cmid: 'g-1' });
      expect(ack).toMatchObject({ msgid: 12, errno: 0, cmid: 'g-1' });
      expect(ack.mid).toBeGreaterThan(0);
      for (const member of [b, c]) {
        const [push] = await member.client.waitForPushes(1, 15_000);
        expect(push).toEqual({
          msgid: 10,
          mid: ack.mid,
          seq: 1,
          id: a.user.id,
          name: a.user.name,
          groupid: gid,
          msg: 'to the group',
          time: expect.stringMatching(CHAT_TIME),
        });
      }
      // Neither the sender nor a non-member got it: their first push is a later one-to-one message.
      for (const who of [a, outsider]) {
        const sentinel = await b.client.sendChat(who.user.id, 'sentinel');
        const [first] = await who.client.waitForPushes(1, 15_000);
        expect(first).toMatchObject({ msgid: 6, mid: sentinel.mid, seq: 1 });
      }
      // A member's reply reaches the creator.
      const reply = await c.client.groupChat(gid, 'reply');
      expect(reply.errno).toBe(0);
      const [atA] = await a.client.waitForPushes(1, 15_000);
      expect(atA).toMatchObject({ msgid: 10, mid: reply.mid, seq: 2, id: c.user.id, groupid: gid });
    });

    test('DELIVER_ACK (17): acknowledged pushes are not sent again at the next login', async () => {
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(codec, { autoAck: false });
      for (let i = 1; i <= 5; i++) expect((await a.client.sendChat(b.user.id, `m${i}`)).errno).toBe(0);
      const first = await b.client.waitForPushes(5, 15_000);
      expect(first.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
      b.client.deliverAck(3);
      expect((await b.client.logout()).errno).toBe(0);
      await login(b.client, b.user); // no lastseq: the server's acknowledged seq counts
      const rest = await b.client.waitForPushes(2, 15_000);
      expect(rest.map((p) => [p.seq, p.msg])).toEqual([
        [4, 'm4'],
        [5, 'm5'],
      ]);
      await barrier(b.client);
      expect(b.client.takePushes()).toEqual([]);
    });

    test('PING (18 → 19) echoes t, before and after login', async () => {
      const c = await clients.connect(codec);
      expect(await c.ping(42)).toMatchObject({ msgid: 19, t: 42 });
      expect(await c.ping(1.5)).toMatchObject({ msgid: 19, t: 1.5 });
      expect(await c.ping('stamp-x')).toMatchObject({ msgid: 19, t: 'stamp-x' });
      const bare = await c.ping();
      expect(bare.msgid).toBe(19);
      expect(bare.t).toBeUndefined();
      const user = await clients.withNewUser(codec);
      await login(user.client, user.user);
      expect(await user.client.ping(7)).toMatchObject({ msgid: 19, t: 7 });
    });

    test('reqid (string or number) is echoed on replies, failures and ERRORs', async () => {
      const c = await clients.connect(codec);
      // framed protobuf carries reqid as a string (chat.proto), JSON as it came
      const asSent = (r: number | string) => (codec === 'protobuf' ? String(r) : r);
      const pong = await rawCall(c, { msgid: 18, t: 1, reqid: 987_654_321 });
      expect(pong).toMatchObject({ msgid: 19, t: 1, reqid: asSent(987_654_321) });
      const strPong = await rawCall(c, { msgid: 18, reqid: 'abc-1' });
      expect(strPong).toMatchObject({ msgid: 19, reqid: 'abc-1' });
      const refused = await rawCall(c, { msgid: 6, toid: 1, msg: 'x', reqid: 'before-login' });
      expect(refused).toMatchObject({ msgid: 11, errno: 4, reqid: 'before-login' });
      const unknown = await rawCall(c, { msgid: 99, reqid: 123_456 });
      expect(unknown).toMatchObject({ msgid: 20, errno: 3, reqid: asSent(123_456) });
      const reg = await rawCall(c, { msgid: 4, name: uniqueName(), password: 'p', reqid: 'reg-7' });
      expect(reg).toMatchObject({ msgid: 5, errno: 0, reqid: 'reg-7' });
      const logged = await rawCall(c, { msgid: 1, id: reg.id, password: 'p', reqid: 55 });
      expect(logged).toMatchObject({ msgid: 2, errno: 0, id: reg.id, reqid: asSent(55) });
      const group = await rawCall(c, { msgid: 8, groupname: uniqueName('g'), groupdesc: 'd', reqid: 'grp' });
      expect(group).toMatchObject({ msgid: 14, errno: 0, reqid: 'grp' });
      const chat = await rawCall(c, { msgid: 10, groupid: group.groupid, msg: 'alone', reqid: 'gc' });
      expect(chat).toMatchObject({ msgid: 12, errno: 0, reqid: 'gc' });
      const bye = await rawCall(c, { msgid: 3, reqid: 'bye' });
      expect(bye).toMatchObject({ msgid: 16, errno: 0, reqid: 'bye' });
    });
  });
});
