/**
 * ChatService and ChatSession in process, over a real SQLite store in a temp dir, with a
 * recording transport in place of a connection: request order and input back-pressure, chat acks,
 * DELIVER_ACK coalescing, the classic client's offline page, presence and rate limiting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { legacyCodec } from '../../src/app/protocol/legacyCodec.js';
import { ChatService } from '../../src/app/service/ChatService.js';
import { ChatSession } from '../../src/app/service/ChatSession.js';
import { LocalDeliveryRouter } from '../../src/app/service/DeliveryRouter.js';
import { LocalPresence } from '../../src/app/service/Presence.js';
import { RateLimiter } from '../../src/app/service/RateLimiter.js';
import { createLocalServices } from '../../src/app/services/LocalMessageService.js';
import { LEGACY_WRITE_BYTES } from '../fixtures/legacy/limits.js';
import { openTempStore, RecordingTransport, type TempStore } from './helpers.js';

let temp: TempStore;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp.dispose();
});

let names = 0;
const uniqueName = (prefix: string) => `${prefix}${++names}`;

function service(options: { ackFlushMs?: number; messagesPerSecond?: number } = {}) {
  const presence = new LocalPresence();
  const errors: unknown[] = [];
  // The in-process services over the store, as chat-server wires them.
  const svc = new ChatService(createLocalServices(temp.store), presence, {
    serverId: `svc-test-${names}`,
    onError: (e) => errors.push(e),
    ...options,
  });
  svc.setRouter(new LocalDeliveryRouter(presence));
  return { svc, presence, errors };
}

/** A session on `svc` with its transport; `call` sends a request and waits for the reply with its reqid. */
function open(svc: ChatService, kind: 'json' | 'legacy' = 'json') {
  const transport = new RecordingTransport(kind);
  const session = svc.openSession(transport);
  let n = 0;
  const call = (request: Record<string, unknown>) => {
    const reqid = `r${++n}`;
    session.enqueue({ ...request, reqid });
    return transport.waitFor((m) => m.reqid === reqid);
  };
  return { transport, session, call };
}

async function registered(svc: ChatService): Promise<{ id: number; name: string }> {
  const name = uniqueName('svc');
  const { call } = open(svc);
  const reply = await call({ msgid: 4, name, password: 'pw' });
  expect(reply).toMatchObject({ msgid: 5, errno: 0 });
  return { id: reply.id as number, name };
}

async function loggedIn(svc: ChatService, user: { id: number }, kind: 'json' | 'legacy' = 'json') {
  const s = open(svc, kind);
  if (kind === 'json') {
    expect(await s.call({ msgid: 1, id: user.id, password: 'pw' })).toMatchObject({ msgid: 2, errno: 0 });
  } else {
    s.session.enqueue({ msgid: 1, id: user.id, password: 'pw' });
    await s.transport.waitFor((m) => m.msgid === 2);
  }
  return s;
}

/** PING → PONG: every earlier request of this session has been handled (chat commits aside). */
async function barrier(s: ReturnType<typeof open>): Promise<void> {
  expect(await s.call({ msgid: 18 })).toMatchObject({ msgid: 19 });
}

describe('ChatSession input back-pressure', () => {
  /** A session whose handler blocks on the messages listed in `blockOn` until released. */
  function blockingSession(blockOn: readonly number[]) {
    const transport = new RecordingTransport('json');
    const handled: number[] = [];
    const gates = new Map<number, () => void>();
    const reached = new Map<number, () => void>();
    const reachedPromises = new Map<number, Promise<void>>();
    for (const n of blockOn) reachedPromises.set(n, new Promise<void>((r) => reached.set(n, r)));
    const countWaiters: { count: number; resolve: () => void }[] = [];
    const session = new ChatSession(
      transport,
      (_s, message) => {
        const n = (message as { n: number }).n;
        handled.push(n);
        for (const w of countWaiters.filter((w) => handled.length >= w.count)) {
          countWaiters.splice(countWaiters.indexOf(w), 1);
          w.resolve();
        }
        if (!blockOn.includes(n)) return undefined;
        reached.get(n)!();
        return new Promise<void>((resolve) => gates.set(n, resolve));
      },
      new RateLimiter(1, 1),
    );
    return {
      transport,
      session,
      handled,
      reached: (n: number) => reachedPromises.get(n)!,
      release: (n: number) => gates.get(n)!(),
      /** Resolves once `count` messages have been handed to the handler. */
      handledCount: (count: number) =>
        handled.length >= count
          ? Promise.resolve()
          : new Promise<void>((resolve) => countWaiters.push({ count, resolve })),
    };
  }

  it('stops reading above 1,024 queued requests and resumes below 256, handling each once in order', async () => {
    const total = 1026;
    const t = blockingSession([0, 769, 770]);
    for (let n = 0; n < total - 1; n++) t.session.enqueue({ n });
    // Message 0 is being handled; 1,024 wait: not above the limit yet.
    expect(t.transport.pauses).toBe(0);
    t.session.enqueue({ n: total - 1 });
    expect(t.transport.pauses).toBe(1); // 1,025 waiting
    t.release(0);
    await t.reached(769);
    // Handling 769: 256 still wait (770..1025): not below 256 yet.
    expect(t.transport.resumes).toBe(0);
    t.release(769);
    await t.reached(770);
    // After 769 the check saw 256 waiting: still no resume.
    expect(t.transport.resumes).toBe(0);
    t.release(770);
    // After 770: 255 wait, below 256: reading resumes.
    await t.handledCount(total);
    expect(t.transport.resumes).toBe(1);
    expect(t.transport.pauses).toBe(1);
    expect(t.handled).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('does not pause a session whose requests are handled as fast as they come', () => {
    const t = blockingSession([]);
    for (let n = 0; n < 5000; n++) t.session.enqueue({ n });
    expect(t.handled).toHaveLength(5000);
    expect(t.transport.pauses).toBe(0);
    expect(t.transport.resumes).toBe(0);
  });
});

describe('ChatService', () => {
  it('acknowledges a chat message after it is stored, and pushes it to the online recipient', async () => {
    const { svc } = service();
    const [a, b] = [await registered(svc), await registered(svc)];
    const sa = await loggedIn(svc, a);
    const sb = await loggedIn(svc, b);
    const ack = await sa.call({ msgid: 6, toid: b.id, msg: 'hello', cmid: 'x1' });
    expect(ack).toMatchObject({ msgid: 11, errno: 0, cmid: 'x1' });
    const [stored] = await temp.store.messages.readInbox(b.id, 0, 10);
    expect(stored).toMatchObject({ mid: ack.mid, body: 'hello', sender: a.id });
    const push = await sb.transport.waitFor((m) => m.msgid === 6);
    expect(push).toMatchObject({ mid: ack.mid, seq: 1, id: a.id, name: a.name, toid: b.id, msg: 'hello' });
    await svc.flush();
  });

  it('refuses requests before login and ids that are not the session user', async () => {
    const { svc } = service();
    const [a, b] = [await registered(svc), await registered(svc)];
    const anon = open(svc);
    expect(await anon.call({ msgid: 6, toid: a.id, msg: 'x' })).toMatchObject({ msgid: 11, errno: 4 });
    const sa = await loggedIn(svc, a);
    expect(await sa.call({ msgid: 6, id: b.id, toid: b.id, msg: 'x' })).toMatchObject({
      msgid: 11,
      errno: 5,
    });
  });

  it('lets an account be online once (LocalPresence) and frees it on logout', async () => {
    const { svc, presence } = service();
    const a = await registered(svc);
    const first = await loggedIn(svc, a);
    expect(presence.local(a.id)).toBe(first.session);
    const second = open(svc);
    expect(await second.call({ msgid: 1, id: a.id, password: 'pw' })).toMatchObject({ msgid: 2, errno: 2 });
    expect(await first.call({ msgid: 3 })).toMatchObject({ msgid: 16, errno: 0 });
    expect(presence.local(a.id)).toBeUndefined();
    expect(await second.call({ msgid: 1, id: a.id, password: 'pw' })).toMatchObject({ msgid: 2, errno: 0 });
    expect(presence.local(a.id)).toBe(second.session);
    // Closing the session releases it too; a release by another session does nothing.
    await presence.release(a.id, first.session);
    expect(presence.local(a.id)).toBe(second.session);
    await svc.closeSession(second.session);
    expect(presence.local(a.id)).toBeUndefined();
    expect(await temp.store.users.findById(a.id)).toMatchObject({ state: 'offline' });
  });

  it("records the presence's holder (serverId|epoch) per login: cleaning up one incarnation spares the next", async () => {
    // A gateway's presence: the holder changes when its ZooKeeper session expires (new epoch).
    class EpochPresence extends LocalPresence {
      holder = 'gw-h|e1';
    }
    const presence = new EpochPresence();
    const svc = new ChatService(createLocalServices(temp.store), presence, { serverId: 'gw-h' });
    svc.setRouter(new LocalDeliveryRouter(presence));
    const [a, b, c] = [await registered(svc), await registered(svc), await registered(svc)];
    const sa = await loggedIn(svc, a);
    const sc = await loggedIn(svc, c);
    presence.holder = 'gw-h|e2';
    const sb = await loggedIn(svc, b);
    // c's login, made under e1, logs out after the switch: it clears its own row.
    await svc.closeSession(sc.session);
    expect(await temp.store.users.findById(c.id)).toMatchObject({ state: 'offline' });
    // A survivor cleans up after incarnation e1: a goes offline, b (on e2) stays online.
    expect(await temp.store.users.resetServer('gw-h', 'e1')).toBe(1);
    expect((await temp.store.users.findById(a.id))?.state).toBe('offline');
    expect((await temp.store.users.findById(b.id))?.state).toBe('online');
    await svc.closeSession(sa.session);
    await svc.closeSession(sb.session);
    expect((await temp.store.users.findById(b.id))?.state).toBe('offline');
  });

  it('coalesces DELIVER_ACKs of all sessions into one store write with the highest seq each', async () => {
    const { svc } = service({ ackFlushMs: 60_000 });
    const [a, b, c] = [await registered(svc), await registered(svc), await registered(svc)];
    const sa = await loggedIn(svc, a);
    for (let i = 0; i < 3; i++) await sa.call({ msgid: 6, toid: b.id, msg: `m${i}` });
    for (let i = 0; i < 2; i++) await sa.call({ msgid: 6, toid: c.id, msg: `n${i}` });
    const sb = await loggedIn(svc, b, 'json');
    const sc = await loggedIn(svc, c, 'json');
    await sb.transport.waitFor((m) => m.msgid === 6 && m.seq === 3);
    await sc.transport.waitFor((m) => m.msgid === 6 && m.seq === 2);

    const messages = temp.store.messages;
    const writes: Map<number, number>[] = [];
    const realAckMany = messages.ackMany.bind(messages);
    messages.ackMany = (acks) => {
      writes.push(new Map(acks));
      return realAckMany(acks);
    };
    try {
      for (const seq of [1, 3, 2]) sb.session.enqueue({ msgid: 17, seq });
      sc.session.enqueue({ msgid: 17, seq: 2 });
      await barrier(sb);
      await barrier(sc);
      // Noted, not written: the write waits for the flush interval (60 s here) or a flush.
      expect(writes).toEqual([]);
      expect((await messages.cursor(b.id)).ackedSeq).toBe(0);
      await svc.flush();
      expect(writes).toEqual([
        new Map([
          [b.id, 3],
          [c.id, 2],
        ]),
      ]);
      expect((await messages.cursor(b.id)).ackedSeq).toBe(3);
      expect((await messages.cursor(c.id)).ackedSeq).toBe(2);
    } finally {
      messages.ackMany = realAckMany;
    }
  });

  it('writes coalesced DELIVER_ACKs by itself within ackFlushMs', async () => {
    const { svc } = service({ ackFlushMs: 20 });
    const [a, b] = [await registered(svc), await registered(svc)];
    const sa = await loggedIn(svc, a);
    await sa.call({ msgid: 6, toid: b.id, msg: 'm' });
    const sb = await loggedIn(svc, b);
    await sb.transport.waitFor((m) => m.msgid === 6);
    sb.session.enqueue({ msgid: 17, seq: 1 });
    const deadline = performance.now() + 10_000;
    while ((await temp.store.messages.cursor(b.id)).ackedSeq !== 1) {
      if (performance.now() > deadline) throw new Error('ack not written within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  it(`gives a classic client the offline messages that fit one ${LEGACY_WRITE_BYTES}-byte recv in its LOGIN_MSG_ACK, the rest as pushes`, async () => {
    const { svc } = service();
    const [a, b] = [await registered(svc), await registered(svc)];
    const total = 237;
    const batch = Array.from({ length: total }, (_, i) => ({
      sender: a.id,
      cmid: null,
      kind: 'one' as const,
      target: b.id,
      body: `off${i}`,
      time: '2024-05-01 12:00:00',
      recipients: [b.id],
    }));
    for (let i = 0; i < total; i += 200) await temp.store.messages.append(batch.slice(i, i + 200));
    const sb = await loggedIn(svc, b, 'legacy');
    const ack = sb.transport.sent[0]!;
    expect(ack).toMatchObject({ msgid: 2, errno: 0, id: b.id });
    expect(legacyCodec.encode(ack).byteLength).toBeLessThanOrEqual(LEGACY_WRITE_BYTES);
    const offline = (ack.offlinemsg as string[]).map((s) => JSON.parse(s) as Record<string, unknown>);
    // As many as fit: at least one, and one more would not have fitted.
    expect(offline.length).toBeGreaterThan(0);
    expect(offline.length).toBeLessThan(total);
    const carried = offline.length;
    const withOneMore = {
      ...ack,
      offlinemsg: [...(ack.offlinemsg as string[]), (ack.offlinemsg as string[])[0]!],
    };
    expect(legacyCodec.encode(withOneMore).byteLength).toBeGreaterThan(LEGACY_WRITE_BYTES);
    expect(offline.map((m) => m.msg)).toEqual(batch.slice(0, carried).map((m) => m.body));
    // Classic fields only (no mid / seq).
    expect(Object.keys(offline[0]!).sort()).toEqual(['id', 'msg', 'msgid', 'name', 'time', 'toid']);
    await sb.transport.waitFor((m) => m.msg === `off${total - 1}`);
    const pushes = sb.transport.sent.slice(1);
    expect(pushes.map((m) => m.msg)).toEqual(batch.slice(carried).map((m) => m.body));
    for (const push of pushes)
      expect(legacyCodec.encode(push).byteLength).toBeLessThanOrEqual(LEGACY_WRITE_BYTES);
    // Everything sent counts as delivered (a classic client never acks): written on flush.
    await svc.flush();
    expect((await temp.store.messages.cursor(b.id)).ackedSeq).toBe(total);
  });

  it('rate-limits chat messages per session with errno 8', async () => {
    const { svc } = service({ messagesPerSecond: 1 });
    const [a, b] = [await registered(svc), await registered(svc)];
    const sa = await loggedIn(svc, a);
    // Burst of 2 (twice the rate), then refused until the bucket refills.
    expect(await sa.call({ msgid: 6, toid: b.id, msg: '1' })).toMatchObject({ msgid: 11, errno: 0 });
    expect(await sa.call({ msgid: 6, toid: b.id, msg: '2' })).toMatchObject({ msgid: 11, errno: 0 });
    expect(await sa.call({ msgid: 6, toid: b.id, msg: '3' })).toMatchObject({ msgid: 11, errno: 8 });
    expect(await temp.store.messages.readInbox(b.id, 0, 10)).toHaveLength(2);
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then refills at the rate', async () => {
    const limiter = new RateLimiter(50, 3);
    expect([limiter.take(), limiter.take(), limiter.take(), limiter.take()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    // One token takes 20 ms at 50/s: wait for at least that, then one more is allowed.
    const started = performance.now();
    while (performance.now() - started < 25) await new Promise((r) => setTimeout(r, 5));
    expect(limiter.take()).toBe(true);
    // Never more than the burst, however long it rested.
    const rested = new RateLimiter(1000, 2);
    const t0 = performance.now();
    while (performance.now() - t0 < 20) await new Promise((r) => setTimeout(r, 5));
    expect([rested.take(), rested.take(), rested.take()]).toEqual([true, true, false]);
  });
});
