/**
 * Delivery semantics (docs/PROTOCOL.md §7, DECISIONS.md "Delivery", "Presence and crashes") against
 * the real server: ordered gap-free inboxes, de-duplication, reconnects with lastseq, crashes
 * and graceful restarts, slow readers and idle connections.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { ChatClient } from '../../src/app/client/ChatClient.js';
import type { CodecName } from '../../src/app/client/codec.js';
import type { ChatAckReply, ChatPush } from '../../src/app/client/types.js';
import { type ChatServerProcess, startChatServer } from '../helpers/chatServer.js';
import {
  barrier,
  Clients,
  CODECS,
  expectSeqs,
  login,
  STORES,
  sleep,
  type User,
  uniqueName,
  waitUntil,
  within,
} from './support.js';

/** Logs `user` in on `client`, retrying while the server still holds its previous session (errno 2). */
async function loginWhenFree(client: ChatClient, user: User, lastseq?: number) {
  let last = -1;
  await waitUntil(async () => {
    const ack = await client.login(user.id, user.password, lastseq);
    last = ack.errno;
    if (ack.errno !== 0 && ack.errno !== 2) throw new Error(`login failed with errno ${ack.errno}`);
    return ack.errno === 0;
  }, `user ${user.id} to be free to log in (last errno ${last})`);
}

/** The other codec, so tests with two parties cover framed JSON ↔ protobuf as well. */
const otherCodec = (codec: CodecName): CodecName => (codec === 'json' ? 'protobuf' : 'json');

describe.each(STORES)('delivery on %s', (store) => {
  describe('one server', () => {
    let server: ChatServerProcess;

    beforeAll(async () => {
      server = await startChatServer({ db: store });
    });

    afterAll(async () => {
      await server?.cleanup();
    });

    describe.each(CODECS)('over framed %s', (codec) => {
      const clients = new Clients(() => server);
      afterEach(() => clients.closeAll());

      test('messages to an offline user arrive at its next login, in order, one inbox for all kinds', async () => {
        const a = await clients.loggedIn(codec);
        const b = await clients.loggedIn(otherCodec(codec));
        const gid = (await a.client.createGroup(uniqueName('g'), '')).groupid;
        expect((await b.client.joinGroup(gid)).errno).toBe(0);
        expect((await b.client.logout()).errno).toBe(0);
        const sends: Promise<ChatAckReply>[] = [];
        for (let i = 0; i < 30; i++) {
          sends.push(i % 3 === 2 ? a.client.groupChat(gid, `m${i}`) : a.client.sendChat(b.user.id, `m${i}`));
        }
        const acks = await Promise.all(sends);
        expect(acks.every((ack) => ack.errno === 0)).toBe(true);
        const mids = acks.map((ack) => ack.mid);
        expect([...mids].sort((x, y) => x - y)).toEqual(mids); // committed in arrival order
        await login(b.client, b.user);
        const pushes = await b.client.waitForPushes(30, 20_000);
        expectSeqs(pushes, 1, 30);
        expect(pushes.map((p) => [p.msgid, p.mid, p.msg])).toEqual(
          acks.map((ack, i) => [i % 3 === 2 ? 10 : 6, ack.mid, `m${i}`]),
        );
        await barrier(b.client);
        expect(b.client.takePushes()).toEqual([]);
      });

      test('5 concurrent senders × 200 messages: seqs exactly 1..1000, each sender in order', async () => {
        const r = await clients.loggedIn(codec);
        const senders = await Promise.all(
          Array.from({ length: 5 }, (_, k) => clients.loggedIn(k % 2 === 0 ? codec : otherCodec(codec))),
        );
        const received: ChatPush[] = [];
        r.client.onPush((p) => received.push(p));
        const acks = await Promise.all(
          senders.map((s) =>
            Promise.all(
              Array.from({ length: 200 }, (_, i) => s.client.sendChat(r.user.id, `${s.user.id}:${i}`)),
            ),
          ),
        );
        for (const list of acks) {
          expect(list.every((ack) => ack.errno === 0)).toBe(true);
          const mids = list.map((ack) => ack.mid);
          expect([...mids].sort((x, y) => x - y)).toEqual(mids);
        }
        await waitUntil(() => received.length >= 1000, '1000 pushes', 60_000);
        expect(received.map((p) => p.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
        for (const s of senders) {
          const mine = received.filter((p) => p.id === s.user.id).map((p) => p.msg);
          expect(mine).toEqual(Array.from({ length: 200 }, (_, i) => `${s.user.id}:${i}`));
        }
        expect(new Set(received.map((p) => p.mid)).size).toBe(1000);
        expect(r.client.stats).toMatchObject({ gaps: 0, duplicates: 0 });
        await barrier(r.client);
        expect(received).toHaveLength(1000);
      }, 90_000);

      test('concurrent group chat: every member sees one order, gap-free, without its own messages', async () => {
        const members = await Promise.all(
          Array.from({ length: 4 }, (_, k) => clients.loggedIn(k % 2 === 0 ? codec : otherCodec(codec))),
        );
        const gid = (await members[0]!.client.createGroup(uniqueName('g'), '')).groupid;
        for (const m of members.slice(1)) expect((await m.client.joinGroup(gid)).errno).toBe(0);
        const senders = members.slice(0, 3);
        const acks = await Promise.all(
          senders.map((s) =>
            Promise.all(Array.from({ length: 60 }, (_, i) => s.client.groupChat(gid, `${s.user.id}:${i}`))),
          ),
        );
        expect(acks.flat().every((ack) => ack.errno === 0)).toBe(true);
        const allMids = acks.flat().map((ack) => ack.mid);
        for (const m of members) {
          const expected = senders.filter((s) => s !== m).length * 60;
          const pushes = await m.client.waitForPushes(expected, 30_000);
          expectSeqs(pushes, 1, expected);
          expect(pushes.some((p) => p.id === m.user.id)).toBe(false);
          const mids = pushes.map((p) => p.mid);
          expect([...mids].sort((x, y) => x - y)).toEqual(mids); // the commit order, for everyone
          expect(mids.every((mid) => allMids.includes(mid))).toBe(true);
          await barrier(m.client);
          expect(m.client.takePushes()).toEqual([]);
        }
      }, 60_000);

      test('a resent cmid is stored once, acknowledged with the same mid and delivered once', async () => {
        const a = await clients.loggedIn(codec);
        const b = await clients.loggedIn(otherCodec(codec));
        const c = await clients.loggedIn(codec);
        const first = await a.client.sendChat(b.user.id, 'once', { cmid: 'dup-1' });
        expect(first).toMatchObject({ msgid: 11, errno: 0, cmid: 'dup-1' });
        const retry = await a.client.sendChat(b.user.id, 'once', { cmid: 'dup-1' });
        expect(retry).toMatchObject({ msgid: 11, errno: 0, cmid: 'dup-1', mid: first.mid });
        // The same cmid for another text is another message: refused (errno 7), not stored.
        const changed = await a.client.sendChat(b.user.id, 'once (changed)', { cmid: 'dup-1' });
        expect(changed).toMatchObject({ msgid: 11, errno: 7 });
        // Both copies in flight at once (one batch), and a third later to someone else.
        const [x, y] = await Promise.all([
          a.client.sendChat(b.user.id, 'twin', { cmid: 'dup-2' }),
          a.client.sendChat(b.user.id, 'twin', { cmid: 'dup-2' }),
        ]);
        expect(x.errno).toBe(0);
        expect(y.mid).toBe(x.mid);
        const elsewhere = await a.client.sendChat(c.user.id, 'once', { cmid: 'dup-1' });
        expect(elsewhere).toMatchObject({ msgid: 11, errno: 7 });
        // The cmid belongs to its sender: another sender's identical cmid is another message.
        const cs = await c.client.sendChat(b.user.id, 'from c', { cmid: 'dup-1' });
        expect(cs.errno).toBe(0);
        expect(cs.mid).not.toBe(first.mid);
        const pushes = await b.client.waitForPushes(3, 15_000);
        expect(pushes.map((p) => [p.seq, p.mid, p.msg])).toEqual([
          [1, first.mid, 'once'],
          [2, x.mid, 'twin'],
          [3, cs.mid, 'from c'],
        ]);
        await barrier(a.client);
        await barrier(b.client);
        expect(b.client.takePushes()).toEqual([]);
        await barrier(c.client);
        expect(c.client.takePushes()).toEqual([]);
        // In the store: B's inbox holds three entries, C's none.
        const db = await server.openStore();
        try {
          expect((await db.messages.readInbox(b.user.id, 0, 100)).map((e) => e.mid)).toEqual([
            first.mid,
            x.mid,
            cs.mid,
          ]);
          expect(await db.messages.readInbox(c.user.id, 0, 100)).toEqual([]);
        } finally {
          await db.close();
        }
      });

      test('a client killed mid-stream logs in with its lastseq and gets exactly the rest', async () => {
        const a = await clients.loggedIn(codec);
        const b = await clients.loggedIn(otherCodec(codec));
        const total = 400;
        const before: ChatPush[] = [];
        b.client.onPush((p) => {
          before.push(p);
          if (p.seq === 60) b.client.destroy();
        });
        const sends = Array.from({ length: total }, (_, i) => a.client.sendChat(b.user.id, `k${i}`));
        await within(b.client.closed, 20_000, 'the killed client to close');
        const lastseq = b.client.lastSeq;
        expectSeqs(before, 1, lastseq);
        // Reconnect while the sender is most likely still sending.
        const again = await clients.connect(otherCodec(codec));
        await loginWhenFree(again, b.user, lastseq);
        const rest = await again.waitForPushes(total - lastseq, 30_000);
        const acks = await Promise.all(sends);
        expect(acks.every((ack) => ack.errno === 0)).toBe(true);
        expectSeqs(rest, lastseq + 1, total);
        expect([...before, ...rest].map((p) => p.msg)).toEqual(acks.map((_, i) => `k${i}`));
        expect([...before, ...rest].map((p) => p.mid)).toEqual(acks.map((ack) => ack.mid));
        await barrier(again);
        expect(again.takePushes()).toEqual([]);
      }, 60_000);

      test('login without lastseq (or with an older one) gets only what was not acknowledged', async () => {
        const a = await clients.loggedIn(codec);
        const b = await clients.loggedIn(otherCodec(codec));
        for (let i = 1; i <= 10; i++) expect((await a.client.sendChat(b.user.id, `a${i}`)).errno).toBe(0);
        expect((await b.client.waitForPushes(10, 15_000)).map((p) => p.seq)).toEqual([
          1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
        ]);
        b.client.flushAck(); // DELIVER_ACK 10
        await barrier(b.client); // processed by the server before the connection goes
        b.client.destroy();
        await b.client.closed;
        for (let i = 11; i <= 13; i++) expect((await a.client.sendChat(b.user.id, `a${i}`)).errno).toBe(0);
        const again = await clients.connect(codec);
        await loginWhenFree(again, b.user); // lastseq absent = 0
        const rest = await again.waitForPushes(3, 15_000);
        expect(rest.map((p) => [p.seq, p.msg])).toEqual([
          [11, 'a11'],
          [12, 'a12'],
          [13, 'a13'],
        ]);
        await barrier(again);
        expect(again.takePushes()).toEqual([]);
        // An older lastseq than the acknowledged one does not bring acknowledged messages back.
        expect((await again.logout()).errno).toBe(0);
        expect((await again.login(b.user.id, b.user.password, 5)).errno).toBe(0);
        await barrier(again);
        expect(again.takePushes()).toEqual([]);
        expect((await a.client.sendChat(b.user.id, 'a14')).errno).toBe(0);
        expect((await again.waitForPushes(1, 15_000))[0]).toMatchObject({ seq: 14, msg: 'a14' });
      });
    });
  });

  describe.each(CODECS)('process lifecycle over framed %s', (codec) => {
    const clients = new Clients(() => server);
    let server: ChatServerProcess;

    afterEach(async () => {
      await clients.closeAll();
      await server?.cleanup();
    });

    test('SIGKILL mid-stream, restart: every acknowledged message is there, nobody is locked out', async () => {
      server = await startChatServer({ db: store });
      const a = await clients.loggedIn(codec);
      const b = await clients.loggedIn(otherCodec(codec));
      const c = await clients.withNewUser(codec); // offline recipient
      expect((await a.client.addFriend(b.user.id)).errno).toBe(0);
      const acked = new Map<number, number[]>([
        [b.user.id, []],
        [c.user.id, []],
      ]);
      let ackCount = 0;
      let killed: Promise<void> | null = null;
      const sends = Array.from({ length: 600 }, (_, i) => {
        const to = i % 2 === 0 ? b.user.id : c.user.id;
        return a.client.sendChat(to, `s${i}`).then((ack) => {
          if (ack.errno !== 0) throw new Error(`send ${i}: errno ${ack.errno}`);
          acked.get(to)!.push(ack.mid);
          if (++ackCount === 100) killed = server.kill();
        });
      });
      const settled = await Promise.allSettled(sends);
      expect(killed, 'the server was killed after 100 acks').not.toBeNull();
      await killed;
      expect(ackCount).toBeGreaterThanOrEqual(100);
      for (const s of settled) if (s.status === 'rejected') expect(String(s.reason)).toMatch(/CLOSED|closed/);
      const beforeCrash = b.client.takePushes();
      const bLastSeq = b.client.lastSeq;
      await Promise.all([a.client.closed, b.client.closed]);

      await server.restart();
      // A and B were online at the crash: they may log in at once, and show as offline until they do.
      const a2 = await clients.connect(codec);
      const ackA = await login(a2, a.user);
      expect(ackA.friends).toEqual([{ id: b.user.id, name: b.user.name, state: 'offline' }]);
      const b2 = await clients.connect(otherCodec(codec));
      await login(b2, b.user, bLastSeq);
      const c2 = await clients.connect(codec);
      await login(c2, c.user);

      const db = await server.openStore();
      try {
        for (const [userId, mids] of acked) {
          const inbox = await db.messages.readInbox(userId, 0, 10_000);
          expect(inbox.map((e) => e.seq)).toEqual(inbox.map((_, i) => i + 1)); // gap-free
          const stored = inbox.map((e) => e.mid);
          // Every acknowledged message is stored, in the order it was sent.
          expect(stored.filter((mid) => mids.includes(mid))).toEqual(mids);
          expect(stored.length).toBeGreaterThanOrEqual(mids.length);
        }
        // B gets everything after what it had processed; C everything.
        const bInbox = await db.messages.readInbox(b.user.id, 0, 10_000);
        const bRest = await b2.waitForPushes(bInbox.length - bLastSeq, 20_000);
        expect([...beforeCrash, ...bRest].map((p) => p.mid)).toEqual(bInbox.map((e) => e.mid));
        const cInbox = await db.messages.readInbox(c.user.id, 0, 10_000);
        const cAll = await c2.waitForPushes(cInbox.length, 20_000);
        expect(cAll.map((p) => p.mid)).toEqual(cInbox.map((e) => e.mid));
      } finally {
        await db.close();
      }
      expect((await a2.sendChat(c.user.id, 'after the crash')).errno).toBe(0);
    }, 90_000);

    test('SIGTERM exits 0 after acknowledging; acknowledged messages are delivered after restart', async () => {
      server = await startChatServer({ db: store });
      const a = await clients.loggedIn(codec);
      const b = await clients.withNewUser(otherCodec(codec)); // offline recipient
      const acked: number[] = [];
      let stopping: Promise<number | null> | null = null;
      const sends = Array.from({ length: 300 }, (_, i) =>
        a.client.sendChat(b.user.id, `t${i}`).then((ack) => {
          if (ack.errno !== 0) throw new Error(`send ${i}: errno ${ack.errno}`);
          acked.push(ack.mid);
          if (acked.length === 50) stopping = server.stop();
        }),
      );
      const settled = await Promise.allSettled(sends);
      expect(stopping).not.toBeNull();
      expect(await stopping).toBe(0);
      expect(server.output()).not.toMatch(/ERROR|stop failed/);
      for (const s of settled) if (s.status === 'rejected') expect(String(s.reason)).toMatch(/CLOSED|closed/);

      await server.restart();
      const b2 = await clients.connect(otherCodec(codec));
      await login(b2, b.user);
      const db = await server.openStore();
      let inbox: number[];
      try {
        inbox = (await db.messages.readInbox(b.user.id, 0, 10_000)).map((e) => e.mid);
      } finally {
        await db.close();
      }
      expect(inbox.filter((mid) => acked.includes(mid))).toEqual(acked);
      const pushes = await b2.waitForPushes(inbox.length, 20_000);
      expectSeqs(pushes, 1, inbox.length);
      expect(pushes.map((p) => p.mid)).toEqual(inbox);
      expect(pushes.map((p) => p.msg)).toEqual(inbox.map((_, i) => `t${i}`));
    }, 60_000);

    test('a slow reader is disconnected, the server stays responsive, its inbox keeps the messages', async () => {
      server = await startChatServer({ db: store, extraArgs: ['--high-water-mark', '65536'] });
      const slowUser = (await clients.withNewUser(codec)).user;
      const slow = await clients.raw();
      await slow.sendJson({ msgid: 1, id: slowUser.id, password: slowUser.password });
      expect(await slow.waitFor((m) => m.msgid === 2)).toMatchObject({ errno: 0, id: slowUser.id });
      slow.socket.pause(); // stop reading: the kernel buffers fill, then the server's output grows
      const flooders = await Promise.all([1, 2, 3].map(() => clients.loggedIn(codec)));
      const watcher = await clients.loggedIn(otherCodec(codec));
      const body = 'x'.repeat(4000);
      let sent = 0;
      const disconnected = () => /disconnecting slow reader/.test(server.output());
      for (let round = 0; round < 12 && !disconnected(); round++) {
        const acks = await Promise.all(
          flooders.flatMap((f) => Array.from({ length: 100 }, () => f.client.sendChat(slowUser.id, body))),
        );
        expect(acks.every((ack) => ack.errno === 0)).toBe(true);
        sent += acks.length;
        // Others are served meanwhile.
        expect(await within(watcher.client.ping(round), 10_000, 'a ping during the flood')).toMatchObject({
          msgid: 19,
          t: round,
        });
      }
      await waitUntil(disconnected, 'the slow reader to be disconnected');
      // The slow connection is gone: reading again ends at the server's close.
      slow.socket.resume();
      await within(slow.closed, 15_000, 'the slow socket to close');
      // Its user is free again and finds every message in its inbox.
      const again = await clients.connect(codec, { pushBufferSize: 100_000 });
      await loginWhenFree(again, slowUser, 0);
      const pushes = await again.waitForPushes(sent, 60_000);
      expectSeqs(pushes, 1, sent);
      expect(pushes.every((p) => p.msg === body)).toBe(true);
      expect(server.alive()).toBe(true);
    }, 120_000);

    test('a slow legacy reader that is cut off gets every message exactly once across its two sessions', async () => {
      // The paced queue counts toward the high-water mark: the flood outruns the pace, the queue
      // reaches the mark and the session is cut with most messages still queued. A 20 ms pace
      // (50 messages/s) is outrun by every target, a gateway with its RPC hop on a loaded machine
      // included, and a 256 KiB mark keeps what the second session gets short. (The reads below
      // parse the stream. Output pending in the socket at a cut is covered by
      // test/net/TcpConnection.test.ts.)
      server = await startChatServer({
        db: store,
        extraArgs: ['--high-water-mark', String(256 * 1024), '--legacy-gap-ms', '20'],
      });
      const reg = await (await clients.legacy()).register(uniqueName('l'), 'pw');
      const id = reg.id as number;
      const slow = await clients.raw();
      slow.mode = 'legacy';
      await slow.write(Buffer.from(`${JSON.stringify({ msgid: 1, id, password: 'pw' })}\0`));
      expect(await slow.waitFor((m) => m.msgid === 2)).toMatchObject({ errno: 0, id });
      slow.socket.pause();
      const flooders = await Promise.all([1, 2, 3].map(() => clients.loggedIn(codec)));
      // 4,000 chars: the classic client gets each cut to one recv, the tag in front intact.
      const pad = 'y'.repeat(4000);
      const tagOf = (msg: string): string => msg.slice(0, msg.indexOf(' '));
      const sent: string[] = [];
      const disconnected = () => /disconnecting slow reader/.test(server.output());
      for (let round = 0; round < 40 && !disconnected(); round++) {
        const batch = flooders.flatMap((f, k) =>
          Array.from({ length: 50 }, (_, i) => `${round}.${k}.${i}`).map((tag) => {
            sent.push(tag);
            return f.client.sendChat(id, `${tag} ${pad}`);
          }),
        );
        expect((await Promise.all(batch)).every((ack) => ack.errno === 0)).toBe(true);
      }
      await waitUntil(disconnected, 'the slow legacy reader to be disconnected');
      // It reads again: whatever the kernel took before the cut reaches it (a stream reader here;
      // the classic client, having stopped, would see those messages merged in its reads).
      slow.socket.resume();
      await within(slow.closed, 15_000, 'the slow socket to close');
      expect(slow.garbage).toEqual([]);
      const first = slow.received.filter((m) => m.msgid === 6).map((m) => tagOf(m.msg as string));
      expect(first.length).toBeLessThan(sent.length);
      // The next session gets the rest: some in the ack, the others as paced pushes.
      const again = await clients.legacy();
      const second: string[] = [];
      again.onMessage((m) => {
        if (m.msgid === 6) second.push(tagOf(m.msg as string));
      });
      let ack: Record<string, unknown> = {};
      await waitUntil(async () => {
        ack = await again.login(id, 'pw', 15_000);
        if (ack.errno !== 0 && ack.errno !== 2) throw new Error(`login: errno ${ack.errno}`);
        return ack.errno === 0;
      }, 'the legacy user to be free again');
      const carried = ((ack.offlinemsg ?? []) as string[]).map((t) =>
        tagOf((JSON.parse(t) as { msg: string }).msg),
      );
      await waitUntil(
        () => first.length + carried.length + second.length >= sent.length,
        'every message',
        60_000,
      );
      // A last message behind them: anything sent twice would have arrived before it.
      expect((await flooders[0]!.client.sendChat(id, 'last one')).errno).toBe(0);
      await waitUntil(() => second.includes('last'), 'the last message');
      const all = [...first, ...carried, ...second.filter((t) => t !== 'last')];
      expect(all.filter((t, i) => all.indexOf(t) !== i)).toEqual([]); // no duplicates
      expect([...all].sort()).toEqual([...sent].sort()); // none lost
      // Each sender's messages in the order it sent them, within each session.
      for (const session of [first, [...carried, ...second]]) {
        for (let k = 0; k < 3; k++) {
          const mine = session.filter((t) => t.split('.')[1] === String(k));
          expect(mine).toEqual(sent.filter((t) => t.split('.')[1] === String(k) && mine.includes(t)));
        }
      }
    }, 120_000);

    test('idle timeout: a silent framed session is closed and its user freed; legacy and never-spoken stay', async () => {
      server = await startChatServer({ db: store, extraArgs: ['--idle-timeout', '1'] });
      const started = Date.now();
      const silent = await clients.loggedIn(codec);
      // Pings at most every 200 ms: far inside the 1 s timeout even on a busy machine.
      const pinging = await clients.loggedIn(codec, { keepAliveMs: 100 });
      // Connects and says nothing at all, like the classic client at its menu: bounded by count
      // (--max-anonymous), not by the idle timer.
      const never = await clients.raw();
      const legacy = await clients.legacy();
      const reg = await legacy.register(uniqueName('l'), 'pw');
      expect((await legacy.login(reg.id as number, 'pw')).errno).toBe(0);
      const closed = await within(silent.client.closed, 15_000, 'the silent connection to be closed');
      expect(closed.local).toBe(false);
      // Its user can log in again right away (retrying only while the server finishes the close).
      const again = await clients.connect(codec, { keepAliveMs: 100 });
      await loginWhenFree(again, silent.user);
      // Well past the timeout, the legacy connection and the pinging one are still served.
      await sleep(Math.max(0, started + 3500 - Date.now()));
      expect(legacy.connected).toBe(true);
      expect(pinging.client.connected).toBe(true);
      await never.sendJson({ msgid: 18, t: 'first words' });
      expect(await never.waitFor((m) => m.msgid === 19)).toEqual({ msgid: 19, t: 'first words' });
      legacy.chat(again.userId, 'legacy is alive');
      expect((await again.waitForPushes(1, 15_000))[0]).toMatchObject({ id: reg.id, msg: 'legacy is alive' });
      expect((await pinging.client.sendChat(reg.id as number, 'to legacy')).errno).toBe(0);
      expect(await legacy.waitForMsgid(6, 15_000)).toMatchObject({ id: pinging.user.id, msg: 'to legacy' });
    }, 60_000);
  });
});
