/**
 * Idempotency keys are checked (both stores): a true retry of (sender, cmid) gets its original
 * mid and is stored once; the same cmid for another recipient, text or kind is refused with
 * errno 7 and stores nothing — whether the first use was committed earlier (read from the store,
 * or guessed by a predicted append and caught by the unique key) or sits in the same batch.
 */
import { describe, expect, test } from 'vitest';
import { barrier, Clients, rawCall, STORES, sharedServer, uniqueName } from './support.js';

describe.each(STORES)('cmid reuse (%s)', (store) => {
  const server = sharedServer({ db: store });
  const clients = new Clients(server);

  test('a true retry gets its original mid; another message under the same cmid gets errno 7', async () => {
    const a = await clients.loggedIn('json');
    const b = await clients.loggedIn('protobuf');
    const c = await clients.loggedIn('json');
    const send = (body: Record<string, unknown>) => rawCall(a.client, { msgid: 6, id: a.user.id, ...body });

    const first = await send({ toid: b.user.id, msg: 'pay 10', cmid: 'k1' });
    expect(first).toMatchObject({ msgid: 11, errno: 0, cmid: 'k1', mid: expect.any(Number) });
    // A few other messages in between, so later appends may be predicted rather than read.
    for (let i = 0; i < 3; i++) expect((await a.client.sendChat(c.user.id, `filler ${i}`)).errno).toBe(0);

    // A true retry: same recipient and text (its `time` may differ).
    const retry = await send({ toid: b.user.id, msg: 'pay 10', cmid: 'k1', time: '2030-01-01 00:00:00' });
    expect(retry).toMatchObject({ msgid: 11, errno: 0, mid: first.mid });
    // Reused for another text, another recipient, another kind: refused.
    const otherText = await send({ toid: b.user.id, msg: 'pay 1000', cmid: 'k1' });
    expect(otherText).toMatchObject({
      msgid: 11,
      errno: 7,
      errmsg: 'cmid already used for a different message',
    });
    expect(otherText.mid).toBeUndefined();
    expect(await send({ toid: c.user.id, msg: 'pay 10', cmid: 'k1' })).toMatchObject({ msgid: 11, errno: 7 });
    const group = await a.client.createGroup(uniqueName('g'), 'd');
    expect(
      await rawCall(a.client, {
        msgid: 10,
        id: a.user.id,
        groupid: group.groupid,
        msg: 'pay 10',
        cmid: 'k1',
      }),
    ).toMatchObject({ msgid: 12, errno: 7 });
    // Another sender may use the same cmid for its own message.
    expect((await c.client.sendChat(b.user.id, 'pay 1000', { cmid: 'k1' })).errno).toBe(0);

    // Within one batch: sent back to back, before either is committed.
    const [one, two, three] = await Promise.all([
      send({ toid: b.user.id, msg: 'x', cmid: 'k2' }),
      send({ toid: b.user.id, msg: 'y', cmid: 'k2' }),
      send({ toid: b.user.id, msg: 'x', cmid: 'k2' }),
    ]);
    expect(one).toMatchObject({ errno: 0 });
    expect(two).toMatchObject({ errno: 7 });
    expect(three).toMatchObject({ errno: 0, mid: one.mid });

    // b received exactly the messages that were accepted, each once.
    await barrier(a.client);
    const s = await server().openStore();
    try {
      const inbox = await s.messages.readInbox(b.user.id, 0, 100);
      expect(inbox.map((e) => [e.sender, e.body])).toEqual([
        [a.user.id, 'pay 10'],
        [c.user.id, 'pay 1000'],
        [a.user.id, 'x'],
      ]);
      expect(inbox[0]!.mid).toBe(first.mid);
      const cInbox = await s.messages.readInbox(c.user.id, 0, 100);
      expect(cInbox.map((e) => e.body)).toEqual(['filler 0', 'filler 1', 'filler 2']);
    } finally {
      await s.close();
    }
    await clients.closeAll();
  }, 60_000);
});
