/**
 * Hostile clients vs the real chat-server process: unfinished messages have a deadline (every
 * codec), silent and not-logged-in connections are bounded by count instead of by a timer (the
 * classic client sits at its menu without a heartbeat), and security events are logged.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { ChatServerProcess } from '../helpers/chatServer.js';
import { startChatServer } from '../helpers/chatServer.js';
import { ClassicSocket } from './classicSocket.js';
import { RawSocket, sleep, uniqueName, waitUntil, within } from './support.js';

let server: ChatServerProcess | undefined;
const sockets: { destroy(): void }[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.cleanup();
  server = undefined;
});

async function raw(from?: string): Promise<RawSocket> {
  const s = await RawSocket.connect(server!.host, server!.port, from);
  sockets.push(s);
  return s;
}

async function classic(): Promise<ClassicSocket> {
  const c = await ClassicSocket.connect(server!.host, server!.port);
  sockets.push(c);
  return c;
}

/** A 4-byte big-endian frame header announcing `len` payload bytes. */
function header(len: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(len, 0);
  return h;
}

describe('message deadlines', () => {
  test('a legacy connection that sent `{` and nothing else is closed by the message deadline', async () => {
    server = await startChatServer({
      db: 'sqlite',
      logLevel: 'info',
      extraArgs: ['--message-timeout', '2', '--idle-timeout', '1'],
    });
    const s = await raw();
    s.mode = 'legacy';
    const sentAt = Date.now();
    await s.write('{');
    await within(s.closed, 20_000, 'the deadline to close the unfinished classic message');
    const after = Date.now() - sentAt;
    // Not before the deadline (2 s): the close is the deadline's, not the idle timer's (1 s).
    expect(after).toBeGreaterThanOrEqual(1900);
    expect(s.received).toEqual([]);
    expect(server.output()).toMatch(
      /WARN security: message deadline: 127\.0\.0\.1:\d+: message not complete/,
    );
  }, 60_000);

  test.each(['legacy', 'framed'] as const)(
    'a %s client sending one byte at a time, each well inside the idle timeout, is closed',
    async (codec) => {
      server = await startChatServer({
        db: 'sqlite',
        logLevel: 'info',
        extraArgs: ['--message-timeout', '2', '--idle-timeout', '3'],
      });
      const s = await raw();
      // A register request, never finished: each byte restarts the idle timer, not the deadline.
      const body = Buffer.from(JSON.stringify({ msgid: 4, name: 'slow', password: 'x'.repeat(200) }));
      const bytes = codec === 'legacy' ? body : Buffer.concat([header(body.length), body]);
      if (codec === 'legacy') s.mode = 'legacy';
      const started = Date.now();
      let sent = 0;
      for (; sent < bytes.length - 1 && !s.peerEnded; sent++) {
        await s.write(bytes.subarray(sent, sent + 1));
        await sleep(250);
      }
      await within(s.closed, 20_000, 'the slow sender to be closed');
      // Closed by the deadline while the message was still being sent, not by running out of bytes.
      expect(sent).toBeLessThan(bytes.length - 1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      if (codec === 'framed') {
        // A framed client is told why before the close.
        expect(s.received).toEqual([{ msgid: 20, errno: 3, errmsg: 'message deadline expired' }]);
      } else {
        expect(s.received).toEqual([]);
      }
      expect(server.output()).toMatch(/security: message deadline: 127\.0\.0\.1:\d+/);
    },
    60_000,
  );

  test('messages that complete keep the connection: a deadline is per message, not per connection', async () => {
    server = await startChatServer({ db: 'sqlite', extraArgs: ['--message-timeout', '1'] });
    const s = await raw();
    // Pings split across writes 300 ms apart, each write finishing one and starting the next:
    // the connection always holds a partial frame, far longer than one deadline, yet each
    // message completes within it.
    const frames = Array.from({ length: 8 }, (_, i) => {
      const body = Buffer.from(JSON.stringify({ msgid: 18, t: i }));
      return Buffer.concat([header(body.length), body]);
    });
    await s.write(frames[0]!.subarray(0, 6));
    for (let i = 0; i < frames.length; i++) {
      await sleep(300);
      const next = frames[i + 1];
      await s.write(
        next === undefined
          ? frames[i]!.subarray(6)
          : Buffer.concat([frames[i]!.subarray(6), next.subarray(0, 6)]),
      );
      expect(await s.waitFor((m) => m.msgid === 19 || m.msgid === 20)).toEqual({ msgid: 19, t: i });
    }
  }, 60_000);
});

describe('silent and not-logged-in connections: bounded by count, not by a timer', () => {
  test('a classic client left at its menu past every timeout still registers and logs in', async () => {
    server = await startChatServer({
      db: 'sqlite',
      extraArgs: ['--message-timeout', '1', '--idle-timeout', '1'],
    });
    const menu = await classic(); // connects, then waits for its user: sends nothing
    const mute = await raw(); // a framed client that has not spoken yet is silent too
    // Three idle timeouts and three message deadlines go by.
    await sleep(3500);
    const name = uniqueName('menu');
    menu.send({ msgid: 4, name, password: 'pw' });
    const reg = await menu.next();
    expect(reg).toMatchObject({ msgid: 5, errno: 0 });
    menu.send({ msgid: 1, id: reg.id, password: 'pw' });
    expect(await menu.next()).toMatchObject({ msgid: 2, errno: 0, id: reg.id, name });
    await mute.sendJson({ msgid: 18, t: 'still here' });
    expect(await mute.waitFor((m) => m.msgid === 19)).toEqual({ msgid: 19, t: 'still here' });
  }, 60_000);

  test('past --max-anonymous the oldest anonymous connection is closed; logged-in ones are not counted', async () => {
    server = await startChatServer({ db: 'sqlite', logLevel: 'info', extraArgs: ['--max-anonymous', '3'] });
    // A logged-in classic client first: once logged in it no longer counts.
    const user = await classic();
    const name = uniqueName('in');
    user.send({ msgid: 4, name, password: 'pw' });
    const { id } = await user.next();
    user.send({ msgid: 1, id, password: 'pw' });
    expect(await user.next()).toMatchObject({ msgid: 2, errno: 0 });
    const anon = [await raw(), await raw(), await raw()];
    // Each of them served (so each connection was accepted and counted before the next).
    for (const a of anon) {
      await a.sendJson({ msgid: 18 });
      await a.waitFor((m) => m.msgid === 19);
    }
    const fourth = await raw();
    await fourth.sendJson({ msgid: 18 });
    await fourth.waitFor((m) => m.msgid === 19);
    await within(anon[0]!.closed, 15_000, 'the oldest anonymous connection to be closed');
    for (const a of [anon[1]!, anon[2]!]) {
      await a.sendJson({ msgid: 18, t: 'alive' });
      expect(await a.waitFor((m) => m.msgid === 19)).toEqual({ msgid: 19, t: 'alive' });
    }
    // The logged-in classic client was older than all of them and is still served.
    user.send({ msgid: 4, name: uniqueName('in2'), password: 'pw' });
    expect(await user.next()).toMatchObject({ msgid: 5, errno: 0 });
    expect(server.output()).toMatch(/INFO security: anonymous connection evicted: 127\.0\.0\.1:\d+/);
    // A logged-in client that goes away is not counted as anonymous on its way out.
    user.destroy();
    const store = await server.openStore();
    try {
      await waitUntil(
        async () => (await store.users.findById(id as number))?.state === 'offline',
        'the departed user to be offline',
      );
    } finally {
      await store.close();
    }
    for (const a of [anon[1]!, anon[2]!, fourth]) {
      await a.sendJson({ msgid: 18, t: 'after' });
      expect(await a.waitFor((m) => m.msgid === 19)).toEqual({ msgid: 19, t: 'after' });
    }
  }, 60_000);
});
