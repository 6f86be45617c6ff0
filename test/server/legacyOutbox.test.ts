/**
 * LegacyOutbox on real connections: one message per write, paced by time per session, bounded
 * for bulk senders, and nothing sent after a close.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LegacyOutbox } from '../../src/app/server/LegacyOutbox.js';
import type { TcpConnection } from '../../src/net/TcpConnection.js';
import { rawConnect, startServer, waitFor, withTimeout } from '../net/helpers.js';

const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Probe {
  conn: TcpConnection;
  /** Every `send` the outbox made on the connection: when, and what. */
  writes: { at: number; text: string }[];
  /** What the peer received, split at `\0` (a stream parser: this checks the server side). */
  received: string[];
  peer: Socket;
}

/** A server-side connection whose sends are recorded, and the peer reading it. */
async function connection(): Promise<Probe> {
  let conn: TcpConnection | undefined;
  const started = await startServer({ name: 'outbox' }, (s) =>
    s.setConnectionCallback((c) => {
      if (c.connected) conn = c;
    }),
  );
  cleanups.push(() => started.server.stop({ graceMs: 200 }));
  const peer = await rawConnect(started.port);
  peer.on('error', () => {});
  cleanups.push(() => peer.destroy());
  await waitFor(() => conn !== undefined, 5000, 'the server side');
  const writes: Probe['writes'] = [];
  const send = conn!.send.bind(conn!);
  conn!.send = (data) => {
    writes.push({ at: performance.now(), text: Buffer.from(data as Uint8Array).toString('utf8') });
    send(data);
  };
  const received: string[] = [];
  let partial = '';
  peer.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\0');
    partial = parts.pop()!;
    received.push(...parts);
  });
  return { conn: conn!, writes, received, peer };
}

const message = (i: number): Uint8Array => Buffer.from(`{"msgid":6,"msg":"m${i}"}\0`);

describe('LegacyOutbox', () => {
  it('writes one message per send, at least the gap apart, in order', async () => {
    const p = await connection();
    const outbox = new LegacyOutbox(p.conn, 2);
    for (let i = 0; i < 30; i++) outbox.enqueue(message(i));
    expect(outbox.queuedMessages).toBe(30);
    await waitFor(() => p.received.length === 30, 20_000, '30 messages');
    expect(p.received).toEqual(Array.from({ length: 30 }, (_, i) => `{"msgid":6,"msg":"m${i}"}`));
    expect(p.writes.map((w) => w.text)).toEqual(p.received.map((r) => `${r}\0`));
    for (let i = 1; i < p.writes.length; i++) {
      expect(p.writes[i]!.at - p.writes[i - 1]!.at).toBeGreaterThanOrEqual(2);
    }
    expect(outbox.queuedBytes).toBe(0);
  });

  it('paces each session on its own: a long queue does not hold back another session', async () => {
    const busy = await connection();
    const idle = await connection();
    const busyOutbox = new LegacyOutbox(busy.conn, 5);
    const idleOutbox = new LegacyOutbox(idle.conn, 5);
    for (let i = 0; i < 40; i++) busyOutbox.enqueue(message(i));
    idleOutbox.enqueue(message(0));
    await waitFor(() => idle.received.length === 1 && busy.received.length === 40, 20_000, 'both');
    // The idle session's one message went out before the busy one's second (due 5 ms later).
    expect(idle.writes[0]!.at).toBeLessThan(busy.writes[1]!.at);
  });

  it('asks bulk senders to wait above 32 queued messages, until 8 are left or it closes', async () => {
    const p = await connection();
    const outbox = new LegacyOutbox(p.conn, 1);
    for (let i = 0; i < 32; i++) outbox.enqueue(message(i));
    expect(outbox.whenRoom()).toBeUndefined();
    for (let i = 32; i < 40; i++) outbox.enqueue(message(i));
    const room = outbox.whenRoom();
    expect(room).toBeDefined();
    await withTimeout(room!, 20_000, 'room');
    expect(outbox.queuedMessages).toBeLessThanOrEqual(8);
    expect(outbox.queuedMessages).toBeGreaterThan(0);
    for (let i = 0; i < 40; i++) outbox.enqueue(message(100 + i));
    const waiting = outbox.whenRoom();
    outbox.close();
    await withTimeout(waiting!, 5000, 'release at close');
    expect(outbox.queuedBytes).toBe(0);
    const sent = p.writes.length;
    outbox.enqueue(message(999));
    expect(outbox.queuedMessages).toBe(0);
    // A later message through the same connection arrives, and nothing from the outbox before it.
    p.conn.send('{"msgid":5}\0');
    await waitFor(() => p.received.at(-1) === '{"msgid":5}', 10_000, 'the marker');
    expect(p.writes.length).toBe(sent + 1);
    expect(p.received.filter((r) => r.includes('m999'))).toEqual([]);
  });

  it('tells a logout when everything queued has been written', async () => {
    const p = await connection();
    const outbox = new LegacyOutbox(p.conn, 2);
    expect(outbox.whenEmpty()).toBeUndefined();
    for (let i = 0; i < 5; i++) outbox.enqueue(message(i));
    const empty = outbox.whenEmpty();
    expect(empty).toBeDefined();
    await withTimeout(empty!, 10_000, 'empty');
    expect(p.writes).toHaveLength(5);
    expect(outbox.queuedBytes).toBe(0);
  });
});
