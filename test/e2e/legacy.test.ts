/**
 * The classic C++ client's bytes (`JSON\0`, docs/PROTOCOL.md §4, the legacy LOGIN_MSG_ACK) against the
 * real server: classic request and reply shapes, stream splitting, the ids a legacy session may
 * see, and chat between legacy and framed users.
 */
import { connect as netConnect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { LegacyClient, type LegacyMessage } from '../../src/app/client/LegacyClient.js';
import { type ChatServerProcess, startChatServer } from '../helpers/chatServer.js';
import { CHAT_TIME, Clients, CODECS, login, STORES, uniqueName, waitUntil, within } from './support.js';

const CLASSIC_TIME = '2024-05-06 07:08:09';

/** A legacy user, registered and logged in; every message it receives is recorded. */
async function legacyUser(clients: Clients) {
  const client = await clients.legacy();
  const seen: LegacyMessage[] = [];
  client.onMessage((m) => seen.push(m));
  const name = uniqueName('l');
  const reg = await client.register(name, 'pw');
  expect(reg).toEqual({ msgid: 5, errno: 0, id: expect.any(Number) });
  const id = reg.id as number;
  const ack = await client.login(id, 'pw');
  expect(ack).toMatchObject({ msgid: 2, errno: 0, id, name });
  return { client, id, name, seen };
}

const parseAll = (v: unknown): unknown[] => (v as string[]).map((s) => JSON.parse(s) as unknown);

describe.each(STORES)('legacy codec on %s', (store) => {
  let server: ChatServerProcess;
  const clients = new Clients(() => server);

  beforeAll(async () => {
    server = await startChatServer({ db: store });
  });

  afterEach(() => clients.closeAll());

  afterAll(async () => {
    await server?.cleanup();
  });

  test('register, login, chat, offline messages: the classic shapes, keys only when non-empty', async () => {
    const a = await legacyUser(clients);
    const b = await legacyUser(clients);
    // A fresh account's ack has none of the optional keys.
    const c = await clients.legacy();
    const cName = uniqueName('l');
    const cId = (await c.register(cName, 'pw')).id as number;
    expect(await c.login(cId, 'pw')).toEqual({ msgid: 2, errno: 0, id: cId, name: cName });

    a.client.addFriend(b.id);
    const groupname = uniqueName('g');
    a.client.createGroup(groupname, 'classic group');
    // The classic client learns ids and lists from its next login.
    a.client.loginout();
    const relog = await a.client.login(a.id, 'pw');
    expect(Object.keys(relog).sort()).toEqual(['errno', 'friends', 'groups', 'id', 'msgid', 'name']);
    expect(relog.friends).toEqual([JSON.stringify({ id: b.id, name: b.name, state: 'online' })]);
    const [group] = parseAll(relog.groups) as { id: number; users: string[] }[];
    expect(group).toEqual({
      id: expect.any(Number),
      groupname,
      groupdesc: 'classic group',
      users: [JSON.stringify({ id: a.id, name: a.name, state: 'online', role: 'creator' })],
    });
    b.client.addGroup(group!.id);

    // Live: exactly the fields the classic client sends.
    a.client.chat(b.id, 'live hello', CLASSIC_TIME);
    expect(await b.client.waitForMsgid(6)).toEqual({
      msgid: 6,
      id: a.id,
      name: a.name,
      toid: b.id,
      msg: 'live hello',
      time: CLASSIC_TIME,
    });

    // Offline: B leaves, A sends one-to-one and group messages, B gets them in `offlinemsg`.
    b.client.loginout();
    await waitUntil(async () => {
      // B is offline once A's next login shows it so.
      a.client.loginout();
      const ack = await a.client.login(a.id, 'pw');
      return (parseAll(ack.friends) as { state: string }[])[0]?.state === 'offline';
    }, 'B to be offline');
    a.client.chat(b.id, 'offline 1', CLASSIC_TIME);
    a.client.groupChat(group!.id, 'offline group');
    a.client.chat(b.id, 'offline "2" \\ 😀');
    a.client.loginout(); // barrier: the chats above are stored before A's login ack below
    expect((await a.client.login(a.id, 'pw')).errno).toBe(0);
    const ackB = await b.client.login(b.id, 'pw');
    expect(Object.keys(ackB).sort()).toEqual([
      'errno',
      'friends',
      'groups',
      'id',
      'msgid',
      'name',
      'offlinemsg',
    ]);
    const offline = parseAll(ackB.offlinemsg);
    expect(offline).toEqual([
      { msgid: 6, id: a.id, name: a.name, toid: b.id, msg: 'offline 1', time: CLASSIC_TIME },
      {
        msgid: 10,
        id: a.id,
        name: a.name,
        groupid: group!.id,
        msg: 'offline group',
        time: expect.stringMatching(CHAT_TIME),
      },
      {
        msgid: 6,
        id: a.id,
        name: a.name,
        toid: b.id,
        msg: 'offline "2" \\ 😀',
        time: expect.stringMatching(CHAT_TIME),
      },
    ]);
    expect(parseAll(ackB.friends)).toEqual([{ id: a.id, name: a.name, state: 'online' }]);
    const [bGroup] = parseAll(ackB.groups) as { users: string[] }[];
    expect(bGroup!.users.map((u) => JSON.parse(u) as unknown)).toEqual([
      { id: a.id, name: a.name, state: 'online', role: 'creator' },
      { id: b.id, name: b.name, state: 'online', role: 'normal' },
    ]);
    // Delivered in the ack: not again at the next login.
    b.client.loginout();
    expect(await b.client.login(b.id, 'pw')).not.toHaveProperty('offlinemsg');
  });

  test('login and registration failures get the classic acks', async () => {
    const a = await legacyUser(clients);
    const other = await clients.legacy();
    expect(await other.login(a.id, 'wrong')).toEqual({
      msgid: 2,
      errno: 1,
      errmsg: 'id or password is invalid!',
    });
    expect(await other.login(a.id, 'pw')).toEqual({
      msgid: 2,
      errno: 2,
      errmsg: 'this account is using, input another!',
    });
    expect(await other.register(a.name, 'pw')).toMatchObject({ msgid: 5, errno: 7 });
    expect(await other.register('x'.repeat(51), 'pw')).toMatchObject({ msgid: 5, errno: 3 });
  });

  test('several messages in one write, one message over several writes', async () => {
    const c = await clients.legacy();
    const n1 = uniqueName('l');
    const n2 = uniqueName('l');
    c.writeRaw(
      Buffer.concat([
        LegacyClient.encode({ msgid: 4, name: n1, password: 'p1' }),
        LegacyClient.encode({ msgid: 4, name: n2, password: 'p2' }),
        LegacyClient.encode({ msgid: 18 }), // no reply for a classic client
      ]),
    );
    const r1 = await c.waitForMsgid(5);
    const r2 = await c.waitForMsgid(5);
    expect([r1.errno, r2.errno]).toEqual([0, 0]);
    expect(r2.id as number).toBeGreaterThan(r1.id as number);
    // One login split into five writes.
    const bytes = LegacyClient.encode({ msgid: 1, id: r1.id, password: 'p1' });
    await c.writeChunks(LegacyClient.split(bytes, [1, 2, 9, bytes.length - 1]));
    expect(await c.waitForMsgid(2)).toMatchObject({ errno: 0, id: r1.id, name: n1 });
    // Message boundaries inside writes: a chat to self and a logout+login, cut across each other.
    const stream = Buffer.concat([
      LegacyClient.encode({ msgid: 6, id: r1.id, name: n1, toid: r1.id, msg: 'split', time: CLASSIC_TIME }),
      LegacyClient.encode({ msgid: 3, id: r1.id }),
      LegacyClient.encode({ msgid: 1, id: r2.id, password: 'p2' }),
    ]);
    const cuts = [5, 40, 41, 90, stream.length - 3].filter((x) => x < stream.length).sort((x, y) => x - y);
    await c.writeChunks(LegacyClient.split(stream, cuts));
    expect(await c.waitForMsgid(6)).toMatchObject({ id: r1.id, toid: r1.id, msg: 'split' });
    expect(await c.waitForMsgid(2)).toMatchObject({ errno: 0, id: r2.id, name: n2 });
  });

  test('a legacy session is sent nothing but 2, 5, 6 and 10', async () => {
    const l = await legacyUser(clients);
    const peer = await legacyUser(clients);
    const send = (obj: object) => l.client.send(obj);
    l.client.chat(peer.id, 'a chat'); // would be 11 for a framed client
    l.client.chat(99_999_999, 'to nobody'); // errno 6
    send({ msgid: 6, id: l.id, toid: peer.id, msg: 42 }); // errno 3
    send({ msgid: 6, id: peer.id, toid: l.id, msg: 'spoofed' }); // errno 5
    send({ msgid: 99 }); // unknown msgid
    send({ msgid: 2, errno: 0 }); // a reply id
    send({ msgid: 18, t: 5 }); // PING
    send({ msgid: 17, seq: 1 }); // DELIVER_ACK
    l.client.addFriend(peer.id);
    l.client.addFriend(peer.id); // errno 7
    const groupname = uniqueName('g');
    l.client.createGroup(groupname, '');
    l.client.createGroup(groupname, ''); // errno 7
    l.client.addGroup(99_999_999); // errno 6
    l.client.groupChat(99_999_999, 'nobody'); // errno 6
    send({ msgid: 1, id: l.id, password: 'pw' }); // already logged in: errno 2, as a LOGIN ack
    l.client.chat(l.id, 'to myself');
    // A registration as the last request: its ack comes after everything above was handled.
    expect(await l.client.register(uniqueName('l'), 'pw')).toMatchObject({ msgid: 5, errno: 0 });
    expect(await l.client.waitForMsgid(6)).toMatchObject({ id: l.id, toid: l.id, msg: 'to myself' });
    expect(await peer.client.waitForMsgid(6)).toMatchObject({ id: l.id, msg: 'a chat' });
    expect(l.client.connected).toBe(true);
    // register, login, the refused second login; then the self-chat push and the last
    // registration's ack in either order (chat messages are pipelined, registration is not).
    expect(l.seen.slice(0, 3).map((m) => m.msgid)).toEqual([5, 2, 2]);
    expect(l.seen[2]).toMatchObject({ msgid: 2, errno: 2 });
    expect(
      l.seen
        .slice(3)
        .map((m) => m.msgid)
        .sort(),
    ).toEqual([5, 6]);
    for (const m of [...l.seen, ...peer.seen]) expect([2, 5, 6, 10]).toContain(m.msgid);
  });

  test('bytes that are not JSON close the legacy connection without a reply', async () => {
    for (const garbage of ['{not json}\0', '{"msgid":4,\0', `{"a":"${'\xff'}"}\0`]) {
      const socket = netConnect({ host: server.host, port: server.port });
      const received: Buffer[] = [];
      socket.on('data', (d: Buffer) => received.push(d));
      socket.on('error', () => {});
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.write(Buffer.from(garbage, 'latin1'));
      await within(closed, 10_000, `the server to close on ${JSON.stringify(garbage)}`);
      expect(Buffer.concat(received).length).toBe(0);
    }
    // A classic message longer than --max-message (1 MiB) without its `\0`: closed as well.
    const big = netConnect({ host: server.host, port: server.port });
    big.on('error', () => {});
    const bigClosed = new Promise<void>((r) => big.once('close', () => r()));
    await new Promise<void>((r) => big.once('connect', () => r()));
    big.write(`{"msgid":4,"name":"${'n'.repeat(1024 * 1024 + 16)}`);
    await within(bigClosed, 15_000, 'the server to close an oversized classic message');
    // The server is fine.
    const c = await clients.legacy();
    expect((await c.register(uniqueName('l'), 'pw')).errno).toBe(0);
  });

  describe.each(CODECS)('with framed %s users', (codec) => {
    test('legacy ↔ framed chat, one-to-one and in a group', async () => {
      const l = await legacyUser(clients);
      const f = await clients.loggedIn(codec);
      l.client.chat(f.user.id, 'from legacy', CLASSIC_TIME);
      const [push] = await f.client.waitForPushes(1, 15_000);
      expect(push).toEqual({
        msgid: 6,
        mid: expect.any(Number),
        seq: 1,
        id: l.id,
        name: l.name,
        toid: f.user.id,
        msg: 'from legacy',
        time: CLASSIC_TIME,
      });
      expect((await f.client.sendChat(l.id, 'from framed')).errno).toBe(0);
      expect(await l.client.waitForMsgid(6)).toEqual({
        msgid: 6,
        id: f.user.id,
        name: f.user.name,
        toid: l.id,
        msg: 'from framed',
        time: expect.stringMatching(CHAT_TIME),
      });
      const gid = (await f.client.createGroup(uniqueName('g'), 'mixed')).groupid;
      l.client.addGroup(gid);
      // The join is done once the legacy user's group chat reaches the framed creator.
      l.client.groupChat(gid, 'legacy to group', CLASSIC_TIME);
      const [gpush] = await f.client.waitForPushes(1, 15_000);
      expect(gpush).toMatchObject({
        msgid: 10,
        seq: 2,
        id: l.id,
        name: l.name,
        groupid: gid,
        msg: 'legacy to group',
      });
      expect((await f.client.groupChat(gid, 'framed to group')).errno).toBe(0);
      expect(await l.client.waitForMsgid(10)).toEqual({
        msgid: 10,
        id: f.user.id,
        name: f.user.name,
        groupid: gid,
        msg: 'framed to group',
        time: expect.stringMatching(CHAT_TIME),
      });
      // A framed user's message to an offline legacy user waits in `offlinemsg`.
      l.client.loginout();
      await waitUntil(async () => {
        expect((await f.client.logout()).errno).toBe(0);
        const ack = await login(f.client, f.user);
        return ack.groups[0]?.users.find((u) => u.id === l.id)?.state === 'offline';
      }, 'the legacy user to be offline');
      expect((await f.client.sendChat(l.id, 'while you were away')).errno).toBe(0);
      const ack = await l.client.login(l.id, 'pw');
      expect(parseAll(ack.offlinemsg)).toEqual([
        {
          msgid: 6,
          id: f.user.id,
          name: f.user.name,
          toid: l.id,
          msg: 'while you were away',
          time: expect.stringMatching(CHAT_TIME),
        },
      ]);
      for (const m of l.seen) expect([2, 5, 6, 10]).toContain(m.msgid);
    });
  });
});
