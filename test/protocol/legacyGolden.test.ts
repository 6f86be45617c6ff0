/**
 * Golden legacy bytes: every reply and push the classic client can get, as the server writes it
 * (an in-process ChatServer over a fresh SQLite store), compared byte for byte with the files in
 * test/fixtures/legacy/. The client reads like the classic one (one recv of 1,024 bytes, parsed up
 * to the first `\0`), and each fixture is checked to parse the way the classic client reads it.
 * UPDATE_GOLDEN=1 rewrites the files from the server's output (review the diff before committing).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASSIC_RECV_BYTES, ClassicClient } from '../fixtures/legacy/classicClient.js';
import {
  type InProcessServer,
  openTempStore,
  startInProcessServer,
  type TempStore,
} from '../service/helpers.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/legacy');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const TIME = '2024-05-06 07:08:09';

let temp: TempStore;
let server: InProcessServer;
const clients: ClassicClient[] = [];
beforeAll(async () => {
  temp = await openTempStore();
  server = await startInProcessServer(temp.store, { idleTimeoutMs: 0 });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  await temp?.dispose();
});

async function classic(): Promise<ClassicClient> {
  const c = await ClassicClient.open(server.port);
  clients.push(c);
  return c;
}

/** The next server message of `client` must be exactly the fixture's bytes (and nothing else in that read). */
async function expectGolden(client: ClassicClient, name: string): Promise<Record<string, unknown>> {
  const read = await client.nextRead();
  const file = join(FIXTURES, `${name}.txt`);
  if (UPDATE) writeFileSync(file, read.parsed);
  const golden = readFileSync(file);
  expect(read.parsed.toString('utf8'), name).toBe(golden.toString('utf8'));
  expect(read.parsed.equals(golden), `${name}: bytes`).toBe(true);
  // One message per read here: nothing after the NUL was dropped, and the NUL is there.
  expect(
    read.bytes.equals(Buffer.concat([golden, Buffer.from([0])])),
    `${name}: one message, NUL-terminated`,
  ).toBe(true);
  return classicParse(golden);
}

/**
 * What the classic client does with a read: json::parse of the bytes before the first NUL, in a
 * 1,024-byte buffer; the fields it then reads must be there with the types it reads them as.
 */
function classicParse(bytes: Buffer): Record<string, unknown> {
  expect(bytes.length).toBeLessThan(CLASSIC_RECV_BYTES);
  expect(bytes.includes(0)).toBe(false);
  const js = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  expect(typeof js.msgid).toBe('number');
  return js;
}

const strings = (v: unknown) => (v as string[]).map((s) => JSON.parse(s) as Record<string, unknown>);

describe('golden legacy bytes (what the classic client receives)', () => {
  it('REG_MSG_ACK, LOGIN_MSG_ACK (ok with offline messages, friends, groups; errors) and both chat pushes', async () => {
    const zhang = await classic();
    zhang.send('{"msgid":4,"name":"zhang san","password":"123456"}');
    const reg = await expectGolden(zhang, 'reg-ack-ok');
    expect(reg).toMatchObject({ msgid: 5, errno: 0, id: expect.any(Number) });
    const zhangId = reg.id as number;

    zhang.send('{"msgid":4,"name":"zhang san","password":"x"}');
    expect(await expectGolden(zhang, 'reg-ack-name-taken')).toMatchObject({ msgid: 5, errno: 7 });

    const li = await classic();
    li.send('{"msgid":4,"name":"li si","password":"666666"}');
    const lisi = classicParse((await li.nextRead()).parsed).id as number;

    zhang.send(`{"msgid":1,"id":${zhangId},"password":"wrong"}`);
    expect(await expectGolden(zhang, 'login-ack-bad-password')).toMatchObject({ msgid: 2, errno: 1 });

    // Friends, a group and offline messages, set up in the store (the classic client gets no acks
    // for these requests, so the store is the only barrier).
    await temp.store.friends.add(zhangId, lisi);
    const groupId = await temp.store.groups.create(lisi, 'chat group', 'for tests');
    await temp.store.groups.join(groupId, zhangId);
    await temp.store.messages.append([
      {
        sender: lisi,
        cmid: null,
        kind: 'one',
        target: zhangId,
        body: 'are you there?',
        time: TIME,
        recipients: [zhangId],
      },
      {
        sender: lisi,
        cmid: null,
        kind: 'group',
        target: groupId,
        body: 'hi all',
        time: TIME,
        recipients: [zhangId],
      },
    ]);

    zhang.send(`{"msgid":1,"id":${zhangId},"password":"123456"}`);
    const ack = await expectGolden(zhang, 'login-ack-ok');
    expect(ack).toMatchObject({ msgid: 2, errno: 0, id: zhangId, name: 'zhang san' });
    expect(strings(ack.offlinemsg)).toEqual([
      { msgid: 6, id: lisi, name: 'li si', toid: zhangId, msg: 'are you there?', time: TIME },
      { msgid: 10, id: lisi, name: 'li si', groupid: groupId, msg: 'hi all', time: TIME },
    ]);
    expect(strings(ack.friends)).toEqual([{ id: lisi, name: 'li si', state: 'offline' }]);
    const [group] = strings(ack.groups);
    expect(group).toMatchObject({ id: groupId, groupname: 'chat group', groupdesc: 'for tests' });
    expect(strings(group!.users).map((u) => [u.name, u.state, u.role])).toEqual([
      ['zhang san', 'online', 'normal'],
      ['li si', 'offline', 'creator'],
    ]);

    const again = await classic();
    again.send(`{"msgid":1,"id":${zhangId},"password":"123456"}`);
    expect(await expectGolden(again, 'login-ack-already-online')).toMatchObject({ msgid: 2, errno: 2 });

    li.send(`{"msgid":1,"id":${lisi},"password":"666666"}`);
    expect(await expectGolden(li, 'login-ack-ok-no-offline')).toMatchObject({ msgid: 2, errno: 0, id: lisi });

    li.send(`{"msgid":6,"id":${lisi},"name":"li si","toid":${zhangId},"msg":"hello","time":"${TIME}"}`);
    expect(await expectGolden(zhang, 'push-one-chat')).toEqual({
      msgid: 6,
      id: lisi,
      name: 'li si',
      toid: zhangId,
      msg: 'hello',
      time: TIME,
    });

    li.send(
      `{"msgid":10,"id":${lisi},"name":"li si","groupid":${groupId},"msg":"group hello","time":"${TIME}"}`,
    );
    expect(await expectGolden(zhang, 'push-group-chat')).toEqual({
      msgid: 10,
      id: lisi,
      name: 'li si',
      groupid: groupId,
      msg: 'group hello',
      time: TIME,
    });
  });
});
