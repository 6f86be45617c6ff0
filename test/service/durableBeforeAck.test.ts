/**
 * Durable before ack: a chat message is acknowledged (ONE_CHAT_ACK) and pushed only after the
 * COMMIT that stores it has finished. The store's COMMIT is held on the SQLite worker thread (the
 * commitGate test hook: to the server exactly a slow fsync) while the test watches the socket.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { RawSocket } from '../e2e/support.js';
import {
  CommitGate,
  type InProcessServer,
  openTempStore,
  startInProcessServer,
  type TempStore,
} from './helpers.js';

let temp: TempStore | undefined;
let server: InProcessServer | undefined;
let gate: CommitGate | undefined;
afterEach(async () => {
  gate?.open();
  await server?.stop();
  await temp?.dispose();
  server = undefined;
  temp = undefined;
  gate = undefined;
});

async function registerAndLogin(s: RawSocket, name: string): Promise<number> {
  await s.sendJson({ msgid: 4, name, password: 'pw', reqid: `reg-${name}` });
  const reg = await s.waitFor((m) => m.reqid === `reg-${name}`);
  expect(reg).toMatchObject({ msgid: 5, errno: 0 });
  const id = reg.id as number;
  await s.sendJson({ msgid: 1, id, password: 'pw', reqid: `login-${name}` });
  expect(await s.waitFor((m) => m.reqid === `login-${name}`)).toMatchObject({ msgid: 2, errno: 0, id });
  return id;
}

function countMessages(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** PING → PONG on the same connection: every reply the server wrote before it has arrived. */
async function barrier(s: RawSocket, tag: string): Promise<void> {
  await s.sendJson({ msgid: 18, reqid: tag });
  expect(await s.waitFor((m) => m.reqid === tag)).toMatchObject({ msgid: 19 });
}

describe('durable before ack (SQLite COMMIT held on the worker thread)', () => {
  it('sends no ONE_CHAT_ACK and no push while the COMMIT waits, and both once it has run', async () => {
    gate = new CommitGate();
    temp = await openTempStore({ commitGate: gate.array });
    server = await startInProcessServer(temp.store);
    const alice = await server.connect();
    const bob = await server.connect();
    await registerAndLogin(alice, 'alice');
    const bobId = await registerAndLogin(bob, 'bob');

    // Bob's login is done once this answers (its inbox catch-up reads the store).
    await barrier(bob, 'b-bob-login');

    gate.close();
    const before = gate.arrivals;
    await alice.sendJson({ msgid: 6, toid: bobId, msg: 'held', cmid: 'c-1', reqid: 'chat-1' });
    // The message's transaction has written its rows and its COMMIT is now waiting on the gate.
    await gate.arrived(before + 1);
    // Barriers on both connections: anything the server wrote before these pongs has arrived.
    await barrier(alice, 'b-alice');
    await barrier(bob, 'b-bob');
    expect(alice.received.filter((m) => m.msgid === 11)).toEqual([]);
    expect(bob.received.filter((m) => m.msgid === 6)).toEqual([]);
    // Another reader of the file does not see the message yet: the commit really has not happened.
    expect(countMessages(temp.path)).toBe(0);

    gate.open();
    const ack = await alice.waitFor((m) => m.reqid === 'chat-1');
    expect(ack).toMatchObject({ msgid: 11, errno: 0, cmid: 'c-1' });
    const push = await bob.waitFor((m) => m.msgid === 6);
    expect(push).toMatchObject({ msg: 'held', mid: ack.mid, seq: 1 });
    const stored = await temp.store.messages.readInbox(bobId, 0, 10);
    expect(stored.map((e) => e.body)).toEqual(['held']);
    expect(countMessages(temp.path)).toBe(1);
  });
});
