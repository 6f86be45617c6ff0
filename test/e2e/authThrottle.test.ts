/**
 * Throttled authentication against the real chat-server (both stores): brute force gets errno 8
 * with a retry hint and a growing delay, while the account's owner on another address logs in;
 * registrations are limited per source address. Source addresses are distinct loopback
 * addresses (127.0.0.2, …); 127.0.0.1 is trusted by default (a local proxy) and not limited
 * per address.
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { WireObject } from '../../src/app/client/types.js';
import { ClassicSocket } from './classicSocket.js';
import { Clients, RawSocket, register, STORES, sharedServer, sleep, uniqueName } from './support.js';

let reqid = 0;

/** One request on a raw framed socket, and its reply. */
async function call(s: RawSocket, body: WireObject): Promise<WireObject> {
  const id = `t${++reqid}`;
  await s.sendJson({ ...body, reqid: id });
  return s.waitFor((m) => m.reqid === id, 20_000);
}

function retryHintSeconds(reply: WireObject): number {
  const m = /retry in (\d+) s/.exec(String(reply.errmsg));
  expect(m, `a retry hint in ${JSON.stringify(reply)}`).not.toBeNull();
  return Number(m![1]);
}

describe.each(STORES)('throttled authentication (%s)', (store) => {
  const server = sharedServer({ db: store, logLevel: 'info' });
  const clients = new Clients(server);
  const sockets: RawSocket[] = [];
  const raw = async (from: string): Promise<RawSocket> => {
    const s = await RawSocket.connect(server().host, server().port, from);
    sockets.push(s);
    return s;
  };
  afterAll(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await clients.closeAll();
  });

  test('brute force from one address gets errno 8 with a growing delay; the owner on another address logs in', async () => {
    const owner = await clients.connect('json');
    const victim = await register(owner, uniqueName('victim'), 'the-right-one');
    // The attacker: 40 wrong passwords over 4 connections from 127.0.0.2, 10 in a row on each.
    const attackers = [
      await raw('127.0.0.2'),
      await raw('127.0.0.2'),
      await raw('127.0.0.2'),
      await raw('127.0.0.2'),
    ];
    const replies = await Promise.all(
      attackers.map(async (s, k) => {
        const out: WireObject[] = [];
        for (let i = 0; i < 10; i++)
          out.push(await call(s, { msgid: 1, id: victim.id, password: `guess-${k}-${i}` }));
        return out;
      }),
    );
    const all = replies.flat();
    const wrong = all.filter((r) => r.errno === 1);
    const throttled = all.filter((r) => r.errno === 8);
    expect(wrong.length + throttled.length).toBe(40);
    // 5 free failures per (account, address), plus the few already in flight when the lock came.
    expect(wrong.length).toBeGreaterThanOrEqual(5);
    expect(wrong.length).toBeLessThanOrEqual(8);
    expect(throttled[0]).toMatchObject({ msgid: 2, errno: 8 });
    retryHintSeconds(throttled[0]!);

    // The owner, on another address, is not locked out by the attacker's failures.
    const fromElsewhere = await raw('127.0.0.3');
    expect(await call(fromElsewhere, { msgid: 1, id: victim.id, password: 'the-right-one' })).toMatchObject({
      msgid: 2,
      errno: 0,
      id: victim.id,
    });
    // The attacker's address is still locked, even with the right password (it is not checked).
    const locked = await call(attackers[0]!, { msgid: 1, id: victim.id, password: 'the-right-one' });
    expect(locked).toMatchObject({ msgid: 2, errno: 8 });

    // The delay grows: wait out the lock, fail once more, and the next lock is longer.
    const first = retryHintSeconds(locked);
    await sleep(first * 1000 + 300);
    expect(await call(attackers[1]!, { msgid: 1, id: victim.id, password: 'again' })).toMatchObject({
      errno: 1,
    });
    const next = await call(attackers[1]!, { msgid: 1, id: victim.id, password: 'again' });
    expect(next).toMatchObject({ errno: 8 });
    expect(retryHintSeconds(next)).toBeGreaterThan(first);
    expect(server().output()).toMatch(/WARN security: login throttled: 127\.0\.0\.2:\d+: account \d+/);
  }, 90_000);

  test('failures across many accounts from one address lock that address, not the others', async () => {
    const attacker = await raw('127.0.0.4');
    // 20 different (unknown) accounts, one wrong password each: the per-address limit.
    let throttled: WireObject | undefined;
    for (let i = 0; i < 30 && throttled === undefined; i++) {
      const r = await call(attacker, { msgid: 1, id: 900_000_000 + i, password: 'nope' });
      if (r.errno === 8) throttled = r;
      else expect(r.errno).toBe(1);
    }
    expect(throttled, 'errno 8 within 30 attempts').toBeDefined();
    retryHintSeconds(throttled!);
    // A real user from another address logs in; so does one from the trusted loopback.
    const { client, user } = await clients.withNewUser('json');
    expect((await client.login(user.id, user.password)).errno).toBe(0);
    const other = await raw('127.0.0.5');
    const reg = await call(other, { msgid: 4, name: uniqueName('o'), password: 'pw' });
    expect(await call(other, { msgid: 1, id: reg.id, password: 'pw' })).toMatchObject({ errno: 0 });
  }, 90_000);

  test('the classic client is throttled too, through its own LOGIN_MSG_ACK', async () => {
    const owner = await clients.connect('json');
    const victim = await register(owner, uniqueName('cv'), 'right');
    const c = await ClassicSocket.connect(server().host, server().port, '127.0.0.6');
    try {
      let reply: WireObject | undefined;
      for (let i = 0; i < 10; i++) {
        c.send({ msgid: 1, id: victim.id, password: `wrong-${i}` });
        reply = await c.next();
        if (reply.errno === 8) break;
        expect(reply).toMatchObject({ msgid: 2, errno: 1 });
      }
      expect(reply).toMatchObject({ msgid: 2, errno: 8 });
      retryHintSeconds(reply!);
    } finally {
      c.destroy();
    }
  }, 60_000);

  test('registrations are limited per source address', async () => {
    const flooder = await raw('127.0.0.7');
    const results: WireObject[] = [];
    for (let i = 0; i < 30; i++)
      results.push(await call(flooder, { msgid: 4, name: uniqueName('f'), password: 'pw' }));
    const ok = results.filter((r) => r.errno === 0).length;
    const limited = results.filter((r) => r.errno === 8);
    // A burst of 20, then about 10 a minute.
    expect(ok).toBeGreaterThanOrEqual(20);
    expect(ok).toBeLessThanOrEqual(21);
    expect(limited.length).toBe(30 - ok);
    expect(limited[0]).toMatchObject({ msgid: 5, errno: 8 });
    retryHintSeconds(limited[0]!);
    // Another address registers freely.
    const other = await raw('127.0.0.8');
    expect(await call(other, { msgid: 4, name: uniqueName('g'), password: 'pw' })).toMatchObject({
      errno: 0,
    });
    expect(server().output()).toMatch(/security: registration throttled: 127\.0\.0\.7:\d+/);
  }, 60_000);
});
