/**
 * LegacyClient: the classic byte format, and the legacy codec of the real server driven through it
 * (one message split over many writes, many messages in one write, classic reply shapes).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { LegacyClient, type LegacyMessage } from '../../src/app/client/LegacyClient.js';
import { classicTime } from '../../src/app/client/time.js';
import { type RunningServer, startServer, uniqueName } from './helpers/realServer.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('classic bytes (no server)', () => {
  test('encode is JSON text followed by exactly one NUL, keys in the given order', () => {
    expect(LegacyClient.encode({ msgid: 1, id: 13, password: '123' }).toString('latin1')).toBe(
      '{"msgid":1,"id":13,"password":"123"}\0',
    );
    const chat = LegacyClient.encode({ msgid: 6, id: 13, name: 'zhang', toid: 15, msg: '你好', time: 't' });
    expect(chat.at(-1)).toBe(0);
    expect(chat.subarray(0, -1).includes(0)).toBe(false);
    expect(JSON.parse(chat.subarray(0, -1).toString('utf8'))).toEqual({
      msgid: 6,
      id: 13,
      name: 'zhang',
      toid: 15,
      msg: '你好',
      time: 't',
    });
  });

  test('a NUL inside a string is escaped, so the terminator is unique', () => {
    const bytes = LegacyClient.encode({ msg: 'a\0b' });
    expect(bytes.indexOf(0)).toBe(bytes.length - 1);
  });

  test('split cuts at the offsets and the pieces concatenate back', () => {
    const bytes = LegacyClient.encode({ msgid: 1, id: 2, password: 'x' });
    const pieces = LegacyClient.split(bytes, [1, 1, 5, bytes.length - 1]);
    expect(pieces.map((p) => p.length)).toEqual([1, 0, 4, bytes.length - 6, 1]);
    expect(Buffer.concat(pieces).equals(bytes)).toBe(true);
    expect(() => LegacyClient.split(bytes, [5, 3])).toThrow(RangeError);
    expect(() => LegacyClient.split(bytes, [bytes.length + 1])).toThrow(RangeError);
  });

  test('classicTime is YYYY-MM-DD HH:MM:SS in local time', () => {
    expect(classicTime(new Date(2024, 0, 2, 3, 4, 5))).toBe('2024-01-02 03:04:05');
    expect(classicTime(new Date(2024, 11, 31, 23, 59, 58))).toBe('2024-12-31 23:59:58');
  });
});

describe('against the real server', () => {
  let server: RunningServer;
  const open: (LegacyClient | ChatClient)[] = [];

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    for (const c of open.splice(0)) c.destroy();
  });

  async function legacy(): Promise<LegacyClient> {
    const c = await LegacyClient.connect({ host: server.host, port: server.port });
    open.push(c);
    return c;
  }

  async function registered(c: LegacyClient): Promise<{ id: number; name: string }> {
    const name = uniqueName('l');
    const ack = await c.register(name, 'pw');
    expect(ack).toMatchObject({ msgid: 5, errno: 0 });
    return { id: ack.id as number, name };
  }

  test('classic register and login: the classic reply shapes, no extension fields', async () => {
    const c = await legacy();
    const { id, name } = await registered(c);
    const ack = await c.login(id, 'pw');
    expect(ack).toEqual({ msgid: 2, errno: 0, id, name });
    expect(c.userId).toBe(id);
    expect(c.userName).toBe(name);
    const other = await legacy();
    expect(await other.login(id, 'wrong')).toEqual({
      msgid: 2,
      errno: 1,
      errmsg: 'id or password is invalid!',
    });
  });

  test('one message split over many writes (byte by byte) is understood', async () => {
    const c = await legacy();
    const bytes = LegacyClient.encode({ msgid: 4, name: uniqueName('s'), password: 'pw' });
    const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    await c.writeChunks(LegacyClient.split(bytes, cuts), 1);
    const ack = await c.waitForMsgid(5);
    expect(ack).toMatchObject({ msgid: 5, errno: 0 });
  });

  test('several messages in one write, the last one split with the next write: all answered in order', async () => {
    const c = await legacy();
    const names = [uniqueName('a'), uniqueName('b'), uniqueName('c')];
    const all = Buffer.concat(names.map((name) => LegacyClient.encode({ msgid: 4, name, password: 'pw' })));
    const cut = all.length - 7;
    await c.writeChunks(LegacyClient.split(all, [cut]), 20);
    const acks: LegacyMessage[] = [];
    for (let i = 0; i < 3; i++) acks.push(await c.next());
    expect(acks.map((a) => [a.msgid, a.errno])).toEqual([
      [5, 0],
      [5, 0],
      [5, 0],
    ]);
    const ids = acks.map((a) => a.id as number);
    expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);
  });

  test('legacy ↔ legacy chat: the push carries the classic fields the classic client reads', async () => {
    const a = await legacy();
    const b = await legacy();
    const ua = await registered(a);
    const ub = await registered(b);
    await a.login(ua.id, 'pw');
    await b.login(ub.id, 'pw');
    a.chat(ub.id, 'hi: there', '2024-05-06 07:08:09');
    const push = await b.waitForMsgid(6);
    expect(push).toMatchObject({
      msgid: 6,
      id: ua.id,
      name: ua.name,
      toid: ub.id,
      msg: 'hi: there',
      time: '2024-05-06 07:08:09',
    });
  });

  test('legacy ↔ framed: each side gets its own push shape', async () => {
    const l = await legacy();
    const ul = await registered(l);
    await l.login(ul.id, 'pw');
    const f = await ChatClient.connect({ host: server.host, port: server.port });
    open.push(f);
    const reg = await f.register(uniqueName('f'), 'pw');
    const uf = await f.login(reg.id, 'pw');

    l.chat(uf.id, 'from legacy');
    const [framedPush] = await f.waitForPushes(1);
    expect(framedPush).toMatchObject({
      msgid: 6,
      id: ul.id,
      name: ul.name,
      toid: uf.id,
      msg: 'from legacy',
      seq: 1,
    });

    expect((await f.sendChat(ul.id, 'from framed')).errno).toBe(0);
    const legacyPush = await l.waitForMsgid(6);
    expect(legacyPush).toMatchObject({ msgid: 6, id: uf.id, name: uf.name, msg: 'from framed', toid: ul.id });
    expect(legacyPush.time).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  test('offline messages, friends and groups come as JSON strings in the legacy login ack', async () => {
    const a = await legacy();
    const ua = await registered(a);
    const b = await legacy();
    const ub = await registered(b);
    await a.login(ua.id, 'pw');
    a.addFriend(ub.id);
    a.createGroup(uniqueName('g'), 'desc');
    a.chat(ub.id, 'while you were away', '2024-01-01 00:00:00');
    await sleep(300); // the classic protocol has no acks for these
    const ack = await b.login(ub.id, 'pw');
    expect(ack.errno).toBe(0);
    expect(Array.isArray(ack.offlinemsg)).toBe(true);
    const offline = (ack.offlinemsg as string[]).map((s) => JSON.parse(s) as LegacyMessage);
    expect(offline).toEqual([
      {
        msgid: 6,
        id: ua.id,
        name: ua.name,
        toid: ub.id,
        msg: 'while you were away',
        time: '2024-01-01 00:00:00',
      },
    ]);
    expect((ack.friends as string[]).map((s) => JSON.parse(s))).toEqual([
      { id: ua.id, name: ua.name, state: 'online' },
    ]);
    expect(ack.groups).toBeUndefined();

    a.loginout();
    await sleep(100);
    const again = await a.login(ua.id, 'pw');
    const groups = (again.groups as string[]).map((s) => JSON.parse(s) as LegacyMessage);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ groupdesc: 'desc' });
    expect((groups[0]!.users as string[]).map((s) => JSON.parse(s))).toEqual([
      { id: ua.id, name: ua.name, state: 'online', role: 'creator' },
    ]);
  });

  test('a classic client is never sent an id it does not know (no acks for 7, 8, 9, 3)', async () => {
    const c = await legacy();
    const u = await registered(c);
    await c.login(u.id, 'pw');
    const seen: LegacyMessage[] = [];
    c.onMessage((m) => seen.push(m));
    c.addFriend(987_654_321);
    c.createGroup(uniqueName('g'), 'x');
    c.addGroup(987_654_321);
    c.chat(987_654_321, 'nobody');
    c.loginout();
    // Barrier: a request the classic client does get a reply to; the server answers in order,
    // so any reply to the requests above would have arrived before this one.
    const barrier = await c.register(uniqueName('barrier'), 'pw');
    expect(barrier).toMatchObject({ msgid: 5, errno: 0 });
    expect(seen.filter((m) => ![2, 5, 6, 10].includes(m.msgid as number))).toEqual([]);
    expect(seen.filter((m) => m.msgid !== 5)).toEqual([]);
    expect(c.connected).toBe(true);
  });

  test('non-JSON text closes the connection; the client reports it closed', async () => {
    const c = await legacy();
    c.writeRaw('{this is not json}\0');
    const info = await c.closed;
    expect(info.local).toBe(false);
    expect(c.connected).toBe(false);
    expect(() => c.send({ msgid: 1 })).toThrow(/closed/);
    await expect(c.next(100)).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
