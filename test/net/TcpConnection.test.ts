import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Buffer as NetBuffer } from '../../src/net/Buffer.js';
import { EventLoop } from '../../src/net/EventLoop.js';
import { TcpClient } from '../../src/net/TcpClient.js';
import { kDefaultHighWaterMark, type TcpConnection } from '../../src/net/TcpConnection.js';
import {
  deferred,
  HOST,
  pattern,
  rawConnect,
  readUntilEnd,
  sleep,
  startServer,
  waitFor,
  withTimeout,
} from './helpers.js';

const MiB = 1024 * 1024;

/** Whether the kernel runs a keep-alive timer on the server end whose peer is 127.0.0.1:`peerPort` (ss -o). */
function kernelKeepAlive(peerPort: number): boolean {
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( dport = :${peerPort} )`], {
    encoding: 'utf8',
  });
  expect(out).toContain(`:${peerPort}`);
  return out.includes('timer:(keepalive');
}
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Server on 127.0.0.1 that is stopped after the test. */
async function server(setup: Parameters<typeof startServer>[1], name = 'S') {
  const started = await startServer({ name }, setup);
  cleanups.push(() => started.server.stop({ graceMs: 200 }));
  return started;
}

async function raw(port: number, allowHalfOpen = false): Promise<Socket> {
  const socket = await rawConnect(port, allowHalfOpen);
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  return socket;
}

/** A server's connection and the raw client socket at its other end, once the server has it. */
async function acceptedPair(): Promise<{ conn: TcpConnection; socket: Socket }> {
  let conn: TcpConnection | undefined;
  const { port } = await server((s) => {
    s.setConnectionCallback((c) => {
      if (c.connected) conn = c;
    });
  });
  const socket = await raw(port);
  await waitFor(() => conn !== undefined, 5000, 'connection');
  return { conn: conn!, socket };
}

function client(port: number, loop = new EventLoop(), name = 'C'): TcpClient {
  const c = new TcpClient({ host: HOST, port, loop, name });
  cleanups.push(() => {
    c.stop();
    c.connection?.forceClose();
  });
  return c;
}

/** Resolves with the server-side connection once its up callback ran. */
function serverConnection(): {
  setup: (s: import('../../src/net/TcpServer.js').TcpServer) => void;
  up: Promise<TcpConnection>;
  events: string[];
} {
  const up = deferred<TcpConnection>();
  const events: string[] = [];
  return {
    events,
    up: up.promise,
    setup: (s) =>
      s.setConnectionCallback((conn) => {
        events.push(conn.connected ? 'up' : 'down');
        if (conn.connected) up.resolve(conn);
      }),
  };
}

describe('TcpConnection lifecycle', () => {
  it('fires the connection callback once up and once down on both sides (client disconnects)', async () => {
    const sc = serverConnection();
    const { port } = await server(sc.setup);
    const clientEvents: string[] = [];
    const c = client(port);
    c.setConnectionCallback((conn) => clientEvents.push(conn.connected ? 'up' : 'down'));
    c.connect();
    await waitFor(() => clientEvents.length === 1 && sc.events.length === 1, 5000, 'both up');
    expect(c.connection?.connected).toBe(true);
    c.disconnect();
    await waitFor(() => clientEvents.length === 2 && sc.events.length === 2, 5000, 'both down');
    await sleep(50);
    expect(clientEvents).toEqual(['up', 'down']);
    expect(sc.events).toEqual(['up', 'down']);
    expect(c.connection).toBeNull();
  });

  it('fires once up and once down on both sides when the server shuts down', async () => {
    const sc = serverConnection();
    const { port, server: srv } = await server(sc.setup);
    const clientEvents: string[] = [];
    const c = client(port);
    c.setConnectionCallback((conn) => clientEvents.push(conn.connected ? 'up' : 'down'));
    c.connect();
    const conn = await withTimeout(sc.up, 5000, 'server up');
    conn.shutdown();
    expect(conn.state).toBe('disconnecting');
    await waitFor(() => clientEvents.length === 2 && sc.events.length === 2, 5000, 'both down');
    await sleep(50);
    expect(clientEvents).toEqual(['up', 'down']);
    expect(sc.events).toEqual(['up', 'down']);
    expect(conn.state).toBe('disconnected');
    expect(srv.connectionCount).toBe(0);
  });

  it('exposes names, local and peer addresses on both sides', async () => {
    const sc = serverConnection();
    const { port } = await server(sc.setup, 'NameSrv');
    const c = client(port, new EventLoop(), 'NameCli');
    const clientUp = deferred<TcpConnection>();
    c.setConnectionCallback((conn) => conn.connected && clientUp.resolve(conn));
    c.connect();
    const [s, k] = await withTimeout(Promise.all([sc.up, clientUp.promise]), 5000, 'up');
    expect(s.name).toBe(`NameSrv-${HOST}:${port}#1`);
    expect(k.name).toBe(`NameCli-${HOST}:${port}#1`);
    expect(s.localAddress.ip).toBe(HOST);
    expect(s.localAddress.port).toBe(port);
    expect(s.localAddress.family).toBe('IPv4');
    expect(k.peerAddress.toIpPort()).toBe(`${HOST}:${port}`);
    expect(s.peerAddress.toIpPort()).toBe(k.localAddress.toIpPort());
    expect(String(s.localAddress)).toBe(`${HOST}:${port}`);
    expect(s.state).toBe('connected');
    expect(s.isReading()).toBe(true);
  });

  it('keeps a user context slot per connection', async () => {
    const seen: unknown[] = [];
    const { port } = await server((s) => {
      s.setConnectionCallback((conn) => {
        if (conn.connected) conn.context = { user: conn.peerAddress.port, messages: 0 };
      });
      s.setMessageCallback((conn, buf) => {
        const ctx = conn.context as { user: number; messages: number };
        ctx.messages += 1;
        seen.push({ ...ctx });
        conn.send(buf.retrieveAllAsString());
      });
    });
    const a = await raw(port);
    a.write('x');
    await withTimeout(once(a, 'data'), 5000, 'echo');
    a.write('y');
    await withTimeout(once(a, 'data'), 5000, 'echo');
    expect(seen).toEqual([
      { user: a.localPort, messages: 1 },
      { user: a.localPort, messages: 2 },
    ]);
  });

  it('survives an abrupt peer reset: down callback once, error reported, no crash', async () => {
    const sc = serverConnection();
    const errors: Error[] = [];
    const { port, server: srv } = await server((s) => {
      sc.setup(s);
      s.setConnectionCallback((conn) => {
        sc.events.push(conn.connected ? 'up' : 'down');
        if (conn.connected) conn.setErrorCallback((_c, error) => errors.push(error));
      });
    });
    const socket = await raw(port);
    await waitFor(() => sc.events.length === 1, 5000, 'up');
    socket.resetAndDestroy();
    await waitFor(() => sc.events.length === 2, 5000, 'down');
    // Barrier: a second connection's down callback comes after anything the first could still cause.
    const second = await raw(port);
    await waitFor(() => sc.events.length === 3, 5000, 'second up');
    second.destroy();
    await waitFor(() => sc.events.length === 4, 5000, 'second down');
    expect(sc.events).toEqual(['up', 'down', 'up', 'down']);
    expect(srv.connectionCount).toBe(0);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const error of errors) expect((error as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE/);
  });

  it('survives a peer reset while it has pending output', async () => {
    const events: string[] = [];
    let conn: TcpConnection | null = null;
    const { port } = await server((s) =>
      s.setConnectionCallback((c) => {
        events.push(c.connected ? 'up' : 'down');
        if (c.connected) {
          conn = c;
          c.send(globalThis.Buffer.alloc(16 * MiB, 1));
        }
      }),
    );
    const socket = await raw(port);
    socket.pause();
    await waitFor(() => conn !== null && conn.pendingOutputBytes() > 0, 5000, 'pending output');
    socket.resetAndDestroy();
    await waitFor(() => events.length === 2, 5000, 'down');
    await sleep(50);
    expect(events).toEqual(['up', 'down']);
    // Sending to a closed connection is silently dropped.
    conn!.send('late');
    expect(conn!.pendingOutputBytes()).toBe(0);
  });

  it('closes after the peer half-closes, flushing what it still owes', async () => {
    const sc = serverConnection();
    const { port } = await server((s) => {
      sc.setup(s);
      s.setMessageCallback((conn, buf) => conn.send(buf.retrieveAllAsString().toUpperCase()));
    });
    const socket = await raw(port, true);
    const received = readUntilEnd(socket);
    socket.end('hello');
    expect((await withTimeout(received, 5000, 'echo then EOF')).toString()).toBe('HELLO');
    await waitFor(() => sc.events.length === 2, 5000, 'down');
    expect(sc.events).toEqual(['up', 'down']);
  });
});

describe('TcpConnection send', () => {
  it('sends strings, Uint8Arrays, node Buffers and library Buffers in order', async () => {
    const library = new NetBuffer();
    library.append('[lib]');
    library.appendInt16(0x4142);
    const { port } = await server((s) =>
      s.setConnectionCallback((conn) => {
        if (!conn.connected) return;
        conn.send('[str é]');
        conn.send(new TextEncoder().encode('[u8]'));
        conn.send(globalThis.Buffer.from('[node]'));
        conn.send(library);
        conn.send('');
        conn.shutdown();
      }),
    );
    const socket = await raw(port);
    const data = await withTimeout(readUntilEnd(socket), 5000, 'read all');
    expect(data.toString()).toBe('[str é][u8][node][lib]AB');
    // A library Buffer is drained by send.
    expect(library.readableBytes()).toBe(0);
  });

  it('gathers several sends from one message callback and keeps their order', async () => {
    const { port } = await server((s) =>
      s.setMessageCallback((conn, buf) => {
        while (buf.findEOL() >= 0) {
          const line = buf.retrieveAsString(buf.findEOL() + 1);
          conn.send('<');
          conn.send(line.trim());
          conn.send(globalThis.Buffer.from('>'));
        }
      }),
    );
    const socket = await raw(port);
    const out: globalThis.Buffer[] = [];
    socket.on('data', (chunk: globalThis.Buffer) => out.push(chunk));
    const lines = Array.from({ length: 200 }, (_, i) => `line${i}`);
    socket.write(lines.map((l) => `${l}\n`).join(''));
    const expected = lines.map((l) => `<${l}>`).join('');
    await waitFor(() => globalThis.Buffer.concat(out).length >= expected.length, 5000, 'replies');
    expect(globalThis.Buffer.concat(out).toString()).toBe(expected);
  });

  it('a library Buffer sent while output is queued is not corrupted by later appends', async () => {
    const big = pattern(8 * MiB, 3);
    const { port } = await server((s) =>
      s.setConnectionCallback((conn) => {
        if (!conn.connected) return;
        conn.send(big); // the peer is not reading: this queues
        const buf = new NetBuffer(64);
        buf.append('A'.repeat(1000));
        conn.send(buf); // must not be overwritten by what follows
        expect(buf.readableBytes()).toBe(0);
        buf.append('B'.repeat(1000));
        conn.send(buf);
        buf.append('C'.repeat(10));
        conn.send(buf);
        conn.shutdown();
      }),
    );
    const socket = await raw(port);
    socket.pause();
    await sleep(100);
    const all = readUntilEnd(socket);
    socket.resume();
    const data = await withTimeout(all, 10_000, 'read all');
    expect(data.length).toBe(big.length + 2010);
    expect(data.subarray(0, big.length).equals(big)).toBe(true);
    expect(data.subarray(big.length).toString()).toBe('A'.repeat(1000) + 'B'.repeat(1000) + 'C'.repeat(10));
  });

  it('fires the write-complete callback once output is flushed', async () => {
    const completions: number[] = [];
    const { port } = await server((s) => {
      s.setWriteCompleteCallback((conn) => completions.push(conn.pendingOutputBytes()));
      s.setConnectionCallback((conn) => {
        if (conn.connected) conn.send(pattern(4 * MiB));
      });
    });
    const socket = await raw(port);
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    await waitFor(
      () => received === 4 * MiB && completions.length >= 1,
      10_000,
      'all bytes + write complete',
    );
    expect(completions.every((pending) => pending === 0)).toBe(true);
  });

  it('high-water mark: a slow raw reader stops the writer, whose pending output stays bounded', async () => {
    const hwm = 1 * MiB;
    const chunk = 64 * 1024;
    const marks: number[] = [];
    let sent = 0;
    let maxPending = 0;
    let stopped = false;
    let conn: TcpConnection | null = null;
    const baseline = process.memoryUsage().arrayBuffers;
    const { port } = await server((s) =>
      s.setConnectionCallback((c) => {
        if (!c.connected) return;
        conn = c;
        c.setHighWaterMarkCallback((_c, pending) => {
          marks.push(pending);
          stopped = true;
        }, hwm);
        const pump = (): void => {
          if (stopped || !c.connected) return;
          // A fresh chunk each time, as a real producer would allocate.
          c.send(globalThis.Buffer.alloc(chunk, sent & 0xff));
          sent += chunk;
          maxPending = Math.max(maxPending, c.pendingOutputBytes());
          setImmediate(pump);
        };
        pump();
      }),
    );
    const socket = await raw(port);
    socket.pause(); // a reader that does not read
    await waitFor(() => marks.length === 1, 10_000, 'high-water mark');
    const sentAtMark = sent;
    await sleep(300);
    // The writer stopped when told, and nothing else piled up.
    expect(sent).toBe(sentAtMark);
    expect(marks).toHaveLength(1);
    expect(marks[0]).toBeGreaterThanOrEqual(hwm);
    expect(maxPending).toBeLessThanOrEqual(hwm + 2 * chunk);
    expect(conn!.pendingOutputBytes()).toBeLessThanOrEqual(hwm + 2 * chunk);
    // Memory held for the stalled peer is about the mark plus kernel buffers, not unbounded.
    expect(process.memoryUsage().arrayBuffers - baseline).toBeLessThan(64 * MiB);
    // Everything sent is eventually delivered once the reader reads.
    let received = 0;
    socket.on('data', (data: globalThis.Buffer) => {
      received += data.length;
    });
    socket.resume();
    await waitFor(() => received === sent, 10_000, 'drain');
    expect(conn!.pendingOutputBytes()).toBe(0);
  });

  it('counts the bytes the kernel took, and keeps the count when a close drops the rest', async () => {
    const { conn, socket } = await acceptedPair();
    conn!.send('before tracking');
    conn!.trackFlushedBytes();
    // A reader that reads everything: all of it is flushed.
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    conn!.send(pattern(64 * 1024));
    conn!.send('four');
    const first = 'before tracking'.length + 64 * 1024 + 4;
    await waitFor(() => received === first, 5000, 'first bytes');
    await waitFor(() => conn!.flushedBytes() === first, 5000, 'flushed count');
    expect(conn!.sentBytes()).toBe(first);
    // A reader that stops: the kernel takes some, the rest waits in the process. (Sends of one
    // tick go out as one write, which completes only whole: send in separate ticks.)
    socket.pause();
    for (let i = 0; i < 512; i++) {
      conn!.send(pattern(64 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sleep(100);
    const flushed = conn!.flushedBytes();
    expect(flushed).toBeGreaterThan(first);
    expect(flushed).toBe(conn!.sentBytes() - conn!.pendingOutputBytes());
    conn!.forceClose();
    await waitFor(() => !conn!.connected, 5000, 'close');
    // The dropped output never counts as flushed; what the kernel had taken still does.
    expect(conn!.flushedBytes()).toBe(flushed);
    expect(flushed).toBeLessThan(conn!.sentBytes());
    expect(conn!.sentBytes()).toBe(first + 32 * MiB);
  });

  it('counts exactly while output drains with more still queued behind it', async () => {
    const { conn, socket } = await acceptedPair();
    conn!.trackFlushedBytes();
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    socket.pause();
    // Fill the kernel's buffers, then queue 16 MiB more in the process, one write per tick (each
    // its own request, completed on its own).
    while (conn!.pendingOutputBytes() === 0) {
      conn!.send(pattern(64 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < 256; i++) {
      conn!.send(pattern(64 * 1024, i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The reader takes a little and stops: some queued writes complete, the rest stay queued.
    const before = conn!.flushedBytes();
    socket.resume();
    await waitFor(() => received >= 2 * MiB, 10_000, 'the reader to take 2 MiB');
    socket.pause();
    await waitFor(() => conn!.flushedBytes() > before, 5000, 'a completion');
    expect(conn!.pendingOutputBytes()).toBeGreaterThan(0);
    await waitFor(
      () => conn!.flushedBytes() === conn!.sentBytes() - conn!.pendingOutputBytes(),
      5000,
      'flushed = sent - pending with output still queued',
    );
    expect(conn!.pendingOutputBytes()).toBeGreaterThan(0);
  });

  it('counts output the kernel took at once before a forceClose, and a second close changes nothing', async () => {
    const conns: TcpConnection[] = [];
    let downs = 0;
    const atClose = deferred<{ pending: number; flushed: number }>();
    const { port } = await server((s) => {
      s.setConnectionCallback((c) => {
        if (!c.connected) {
          downs++;
          return;
        }
        conns.push(c);
        c.trackFlushedBytes();
      });
      // Reply and close, as a server refusing a request does: the kernel takes the reply at once
      // (nothing pending), but its completion callback would run only on a later tick, after the
      // close, when a destroyed socket reports nothing.
      s.setMessageCallback((c, buf) => {
        buf.retrieveAll();
        if (c !== conns[0]) return;
        c.send('taken at once');
        const pending = c.pendingOutputBytes();
        c.forceClose();
        atClose.resolve({ pending, flushed: c.flushedBytes() });
      });
    });
    const quick = await raw(port);
    const quickEnd = readUntilEnd(quick);
    quick.write('x');
    expect(await withTimeout(atClose.promise, 5000, 'the reply and close')).toEqual({
      pending: 0,
      flushed: 'taken at once'.length,
    });
    expect((await withTimeout(quickEnd, 5000, 'the first peer to read to the end')).toString()).toBe(
      'taken at once',
    );
    expect(conns[0]!.flushedBytes()).toBe('taken at once'.length);

    // A reader that stopped: output queued in the process, dropped by the close; closing again
    // (the socket is destroyed by then and its queue reads shorter) must not count it as flushed.
    const slow = await raw(port);
    await waitFor(() => conns.length === 2, 5000, 'second connection');
    const second = conns[1]!;
    second.trackFlushedBytes();
    slow.pause();
    while (second.pendingOutputBytes() === 0) {
      second.send(pattern(64 * 1024));
      await new Promise((resolve) => setImmediate(resolve));
    }
    second.send(pattern(4 * MiB));
    second.forceClose();
    const flushed = second.flushedBytes();
    // A tick later the stream has dropped what it held, yet the close is not complete.
    await new Promise((resolve) => process.nextTick(resolve));
    expect(second.state).toBe('disconnecting');
    second.forceClose();
    expect(second.flushedBytes()).toBe(flushed);
    expect(flushed).toBeLessThan(second.sentBytes());
    await waitFor(() => downs === 2, 5000, 'both closes');
    await new Promise((resolve) => setImmediate(resolve));
    const toEnd = readUntilEnd(slow);
    slow.resume();
    const reachedPeer = (await withTimeout(toEnd, 10_000, 'the second peer to read to the end')).length;
    expect(second.flushedBytes()).toBe(flushed);
    expect(flushed).toBeLessThanOrEqual(reachedPeer);
  });

  it('keeps no flushed count (no completion callback per write) unless asked to', async () => {
    const { conn, socket } = await acceptedPair();
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    socket.pause();
    conn!.send(pattern(8 * MiB));
    expect(conn!.pendingOutputBytes()).toBeGreaterThan(0);
    conn!.send('é€'); // counted in UTF-8 bytes: 2 + 3
    socket.resume();
    await waitFor(() => received === 8 * MiB + 5, 10_000, 'all bytes');
    expect(conn!.sentBytes()).toBe(8 * MiB + 5);
    expect(conn!.flushedBytes()).toBe(0);
  });

  it('counts output queued before tracking started once it drains', async () => {
    const { conn, socket } = await acceptedPair();
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    socket.pause();
    conn!.send(pattern(8 * MiB)); // carries no completion callback
    expect(conn!.pendingOutputBytes()).toBeGreaterThan(0);
    conn!.trackFlushedBytes();
    socket.resume();
    await waitFor(() => received === 8 * MiB, 10_000, 'all bytes');
    await waitFor(() => conn!.flushedBytes() === 8 * MiB, 5000, 'flushed count');
  });

  it('fires a write-complete callback set with nothing pending only when later output drains, once per drain', async () => {
    let conn: TcpConnection | undefined;
    const completions: number[] = [];
    const { port } = await server((s) => {
      s.setConnectionCallback((c) => {
        if (c.connected) conn = c;
      });
    });
    const socket = await raw(port);
    await waitFor(() => conn !== undefined, 5000, 'connection');
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    expect(conn!.pendingOutputBytes()).toBe(0);
    conn!.setWriteCompleteCallback((c) => completions.push(c.sentBytes()));
    conn!.send('one');
    await waitFor(() => received === 3 && completions.length >= 1, 5000, 'first drain');
    conn!.send('two');
    await waitFor(() => received === 6 && completions.length >= 2, 5000, 'second drain');
    // Barrier: a third drain; had the callback fired for the empty state, there would be four.
    conn!.send('three');
    await waitFor(() => received === 11 && completions.length >= 3, 5000, 'third drain');
    expect(completions).toEqual([3, 6, 11]);
  });

  it('a write-complete callback set while a shutdown waits for output still lets all of it through', async () => {
    let conn: TcpConnection | undefined;
    const errors: unknown[] = [];
    const { port } = await server((s) => {
      s.setConnectionCallback((c) => {
        if (!c.connected) return;
        conn = c;
        c.setErrorCallback((_c, e) => errors.push(e));
      });
    });
    const socket = await raw(port);
    await waitFor(() => conn !== undefined, 5000, 'connection');
    socket.pause();
    const data = pattern(8 * MiB, 3);
    conn!.send(data);
    conn!.shutdown(); // half-close after the pending output
    expect(conn!.pendingOutputBytes()).toBeGreaterThan(0);
    conn!.setWriteCompleteCallback(() => {});
    conn!.trackFlushedBytes();
    const all = readUntilEnd(socket);
    socket.resume();
    const got = await withTimeout(all, 10_000, 'data and EOF');
    expect(got.equals(data)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('never counts output dropped by a close as flushed, once every write callback has run', async () => {
    // Node 20: destroy() with output queued in libuv completes those writes' callbacks with no
    // error and writableLength 0. The count must stay at what the kernel took, which the peer
    // (reading again after the close) receives in full.
    let conn: TcpConnection | undefined;
    const down = deferred();
    const { port } = await server((s) => {
      s.setConnectionCallback((c) => {
        if (c.connected) conn = c;
        else down.resolve();
      });
    });
    const socket = await raw(port);
    await waitFor(() => conn !== undefined, 5000, 'connection');
    conn!.trackFlushedBytes();
    socket.pause();
    // Separate ticks: each write is its own libuv request, most of them queued behind the kernel.
    for (let i = 0; i < 256; i++) {
      conn!.send(pattern(64 * 1024, i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => conn!.pendingOutputBytes() > 0, 5000, 'output to back up');
    // And 4 MiB in one tick: one writev, the request that would be reported whole.
    for (let i = 0; i < 64; i++) conn!.send(pattern(64 * 1024, i));
    await new Promise((resolve) => setImmediate(resolve));
    conn!.forceClose();
    await withTimeout(down.promise, 5000, 'the close callback');
    // Let the cancelled writes' callbacks run (libuv reports them while closing the handle).
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(20);
    const toEnd = readUntilEnd(socket);
    socket.resume();
    const reachedPeer = (await withTimeout(toEnd, 10_000, 'the peer to read to the end')).length;
    expect(reachedPeer).toBeLessThan(conn!.sentBytes());
    expect(conn!.flushedBytes()).toBeGreaterThan(0);
    expect(conn!.flushedBytes()).toBeLessThanOrEqual(reachedPeer);
  });

  it('fires a write-complete callback set after the output was queued, once that output drains', async () => {
    const completions: number[] = [];
    let pendingWhenSet = 0;
    const { port } = await server((s) => {
      s.setConnectionCallback((conn) => {
        if (!conn.connected) return;
        conn.send(pattern(8 * MiB));
        pendingWhenSet = conn.pendingOutputBytes();
        conn.setWriteCompleteCallback((c) => completions.push(c.pendingOutputBytes()));
      });
    });
    const socket = await raw(port);
    socket.pause();
    await sleep(100);
    expect(completions).toEqual([]);
    let received = 0;
    socket.on('data', (chunk: globalThis.Buffer) => {
      received += chunk.length;
    });
    socket.resume();
    await waitFor(
      () => received === 8 * MiB && completions.length >= 1,
      10_000,
      'drain after a late callback',
    );
    expect(pendingWhenSet).toBeGreaterThan(0);
    expect(completions).toEqual([0]);
  });

  it('high-water mark + write-complete give a flow-controlled transfer with bounded buffering', async () => {
    const hwm = 512 * 1024;
    const chunk = 32 * 1024;
    const total = 16 * MiB;
    let marks = 0;
    let maxPending = 0;
    let sent = 0;
    const { port } = await server((s) => {
      let paused = false;
      const pump = (c: TcpConnection): void => {
        while (!paused && sent < total && c.connected) {
          c.send(pattern(chunk, sent / chunk));
          sent += chunk;
          maxPending = Math.max(maxPending, c.pendingOutputBytes());
          // Check the mark synchronously, as a producer in a tight loop must.
          if (c.pendingOutputBytes() >= hwm) paused = true;
        }
        if (sent >= total) c.shutdown();
      };
      s.setWriteCompleteCallback((c) => {
        paused = false;
        pump(c);
      });
      s.setConnectionCallback((c) => {
        if (!c.connected) return;
        c.setHighWaterMarkCallback(() => {
          marks += 1;
        }, hwm);
        pump(c);
      });
    });
    const socket = await raw(port);
    socket.pause();
    await sleep(100); // let the kernel buffers fill so the mark is crossed
    let received = 0;
    let corrupt = 0;
    const got = readUntilEnd(socket);
    socket.on('data', (data: globalThis.Buffer) => {
      // Spot-check contents: byte 0 of each chunk-aligned block matches the pattern's seed.
      for (let off = (chunk - (received % chunk)) % chunk; off < data.length; off += chunk) {
        const index = (received + off) / chunk;
        if (data[off] !== pattern(1, index)[0]) corrupt += 1;
      }
      received += data.length;
    });
    socket.resume();
    const all = await withTimeout(got, 20_000, 'transfer');
    expect(all.length).toBe(total);
    expect(corrupt).toBe(0);
    expect(marks).toBeGreaterThanOrEqual(1);
    expect(maxPending).toBeLessThanOrEqual(hwm + chunk);
  });

  it('stopRead on a TcpClient connection makes the server hit its high-water mark; startRead drains', async () => {
    const hwm = 1 * MiB;
    let stopped = false;
    let sent = 0;
    let serverConn: TcpConnection | null = null;
    const { port } = await server((s) =>
      s.setConnectionCallback((c) => {
        if (!c.connected) return;
        serverConn = c;
        c.setHighWaterMarkCallback(() => {
          stopped = true;
        }, hwm);
        const pump = (): void => {
          if (stopped || !c.connected) return;
          c.send(globalThis.Buffer.alloc(64 * 1024, 7));
          sent += 64 * 1024;
          setImmediate(pump);
        };
        pump();
      }),
    );
    const c = client(port);
    let received = 0;
    let messages = 0;
    c.setConnectionCallback((conn) => {
      if (conn.connected) conn.stopRead();
    });
    c.setMessageCallback((_conn, buf) => {
      messages += 1;
      received += buf.readableBytes();
      buf.retrieveAll();
    });
    c.connect();
    await waitFor(() => stopped, 10_000, 'server high-water mark');
    expect(messages).toBe(0);
    expect(c.connection!.isReading()).toBe(false);
    expect(serverConn!.pendingOutputBytes()).toBeGreaterThanOrEqual(hwm);
    c.connection!.startRead();
    expect(c.connection!.isReading()).toBe(true);
    await waitFor(() => received === sent, 10_000, 'drain');
    expect(serverConn!.pendingOutputBytes()).toBe(0);
  });

  it('uses the 64 MiB default mark', () => {
    expect(kDefaultHighWaterMark).toBe(64 * MiB);
  });
});

describe('TcpConnection read backpressure', () => {
  it('stopRead stops message callbacks and pushes back on the peer; startRead resumes', async () => {
    let conn: TcpConnection | null = null;
    let messages = 0;
    let received = 0;
    const { port } = await server((s) => {
      s.setConnectionCallback((c) => {
        if (!c.connected) return;
        conn = c;
        c.stopRead();
        c.stopRead(); // idempotent
      });
      s.setMessageCallback((_c, buf) => {
        messages += 1;
        received += buf.readableBytes();
        buf.retrieveAll();
      });
    });
    const socket = await raw(port);
    const total = 32 * MiB;
    await waitFor(() => conn !== null, 5000, 'server conn');
    expect(conn!.isReading()).toBe(false);
    for (let i = 0; i < 32; i++) socket.write(globalThis.Buffer.alloc(MiB, i));
    await sleep(300);
    expect(messages).toBe(0);
    // The kernel buffers cannot take 32 MiB: the writer sees its own queue grow.
    expect(socket.writableLength).toBeGreaterThan(0);
    conn!.startRead();
    conn!.startRead();
    await waitFor(() => received === total, 15_000, 'all bytes');
    expect(socket.writableLength).toBe(0);
  });

  it('stopRead from inside the message callback pauses further callbacks', async () => {
    let conn: TcpConnection | null = null;
    let messages = 0;
    const { port } = await server((s) => {
      s.setMessageCallback((c, buf) => {
        conn = c;
        messages += 1;
        buf.retrieveAll();
        c.stopRead();
      });
    });
    const socket = await raw(port);
    socket.write('first');
    await waitFor(() => messages === 1, 5000, 'first message');
    socket.write('second');
    await sleep(150);
    expect(messages).toBe(1);
    conn!.startRead();
    await waitFor(() => messages === 2, 5000, 'second message');
  });
});

describe('TcpConnection shutdown and close', () => {
  it('shutdown flushes 8 MiB of pending output, then half-closes; the peer can still reply', async () => {
    const payload = pattern(8 * MiB, 11);
    const events: string[] = [];
    const replies: string[] = [];
    let conn: TcpConnection | null = null;
    const { port } = await server((s) => {
      s.setConnectionCallback((c) => {
        events.push(c.connected ? 'up' : `down:${c.state}`);
        if (!c.connected) return;
        conn = c;
        c.send(payload);
        c.shutdown();
        c.shutdown(); // idempotent
        expect(c.pendingOutputBytes()).toBeGreaterThan(0);
        c.send('dropped after shutdown');
      });
      s.setMessageCallback((c, buf) => {
        replies.push(`${c.state}:${buf.retrieveAllAsString()}`);
      });
    });
    const socket = await raw(port, true);
    socket.pause();
    await sleep(100); // make sure the output really is pending when shutdown is called
    const all = readUntilEnd(socket);
    socket.resume();
    const data = await withTimeout(all, 10_000, 'read to EOF');
    expect(data.length).toBe(payload.length);
    expect(data.equals(payload)).toBe(true);
    // Half-closed: the server still reads.
    expect(events).toEqual(['up']);
    socket.write('after your FIN');
    await waitFor(() => replies.length > 0, 5000, 'reply after shutdown');
    expect(replies.join('')).toBe('disconnecting:after your FIN');
    expect(conn!.state).toBe('disconnecting');
    socket.end();
    await waitFor(() => events.length === 2, 5000, 'down');
    expect(events).toEqual(['up', 'down:disconnected']);
  });

  it('forceClose discards pending output and closes at once', async () => {
    const events: string[] = [];
    let conn: TcpConnection | null = null;
    const { port, server: srv } = await server((s) =>
      s.setConnectionCallback((c) => {
        events.push(c.connected ? 'up' : 'down');
        if (!c.connected) return;
        conn = c;
        c.send(globalThis.Buffer.alloc(64 * MiB, 1));
      }),
    );
    const socket = await raw(port);
    socket.pause();
    await waitFor(() => conn !== null && conn.pendingOutputBytes() > 0, 5000, 'pending');
    conn!.forceClose();
    expect(conn!.connected).toBe(false);
    conn!.forceClose(); // idempotent
    await waitFor(() => events.length === 2, 5000, 'down');
    expect(conn!.disconnected).toBe(true);
    expect(srv.connectionCount).toBe(0);
    let received = 0;
    socket.on('data', (d: globalThis.Buffer) => {
      received += d.length;
    });
    const closed = once(socket, 'close');
    socket.resume();
    await withTimeout(closed, 5000, 'peer sees close');
    expect(received).toBeLessThan(64 * MiB);
    await sleep(30);
    expect(events).toEqual(['up', 'down']);
  });

  it('forceClose from a message callback discards the unread input', async () => {
    const seen: number[] = [];
    const { port } = await server((s) =>
      s.setMessageCallback((conn, buf) => {
        seen.push(buf.readableBytes());
        buf.retrieve(1);
        conn.forceClose();
        seen.push(buf.readableBytes());
        conn.send('dropped');
      }),
    );
    const socket = await raw(port);
    let received = 0;
    socket.on('data', (d: globalThis.Buffer) => {
      received += d.length;
    });
    const closed = once(socket, 'close');
    socket.write('0123456789');
    await withTimeout(closed, 5000, 'closed');
    // One callback (the close stops further reads), which saw its bytes vanish on forceClose.
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeGreaterThan(0);
    expect(seen[1]).toBe(0);
    expect(received).toBe(0);
  });

  it('forceCloseWithDelay closes after the delay and leaves no timer', async () => {
    const loop = new EventLoop();
    const events: Array<{ up: boolean; at: number }> = [];
    let conn: TcpConnection | null = null;
    const started = await startServer({ name: 'D', loop }, (s) =>
      s.setConnectionCallback((c) => {
        events.push({ up: c.connected, at: performance.now() });
        if (c.connected) conn = c;
      }),
    );
    cleanups.push(() => started.server.stop({ graceMs: 200 }));
    const socket = await raw(started.port);
    const closed = once(socket, 'close');
    await waitFor(() => conn !== null, 5000, 'up');
    const t0 = performance.now();
    conn!.forceCloseWithDelay(0.15);
    conn!.forceCloseWithDelay(0.01); // a second request while one is pending is ignored
    expect(loop.timerCount()).toBe(1);
    expect(conn!.connected).toBe(true);
    await withTimeout(closed, 5000, 'closed');
    await waitFor(() => events.length === 2, 5000, 'down');
    expect(events[1]!.at - t0).toBeGreaterThanOrEqual(140);
    expect(loop.timerCount()).toBe(0);
  });

  it('forceCloseWithDelay is cancelled when the connection closes first', async () => {
    const loop = new EventLoop();
    let conn: TcpConnection | null = null;
    const events: string[] = [];
    const started = await startServer({ name: 'D2', loop }, (s) =>
      s.setConnectionCallback((c) => {
        events.push(c.connected ? 'up' : 'down');
        if (c.connected) conn = c;
      }),
    );
    cleanups.push(() => started.server.stop({ graceMs: 200 }));
    const socket = await raw(started.port);
    await waitFor(() => conn !== null, 5000, 'up');
    conn!.forceCloseWithDelay(30);
    expect(loop.timerCount()).toBe(1);
    socket.end();
    await waitFor(() => events.length === 2, 5000, 'down');
    expect(loop.timerCount()).toBe(0);
    conn!.forceCloseWithDelay(1); // after close: ignored
    expect(loop.timerCount()).toBe(0);
  });

  it('the server-side connection can turn off Nagle and set keep-alive', async () => {
    const sc = serverConnection();
    const { port } = await server((s) => {
      sc.setup(s);
      s.setMessageCallback((c, buf) => c.send(buf.retrieveAllAsString()));
    });
    const socket = await raw(port);
    const conn = await withTimeout(sc.up, 5000, 'up');
    // Node records what it set on the socket's handle (there is no getter for TCP_NODELAY).
    const nodeSocket = (conn as unknown as { socket: Socket }).socket;
    const recorded = (name: string): unknown => {
      const symbol = Object.getOwnPropertySymbols(nodeSocket).find((sym) => sym.description === name);
      return symbol === undefined ? undefined : (nodeSocket as unknown as Record<symbol, unknown>)[symbol];
    };
    conn.setTcpNoDelay(false);
    expect(recorded('kSetNoDelay')).toBe(false);
    conn.setTcpNoDelay(true);
    expect(recorded('kSetNoDelay')).toBe(true);
    expect(kernelKeepAlive(socket.localPort!)).toBe(false);
    conn.setKeepAlive(true, 1000);
    expect(recorded('kSetKeepAlive')).toBe(true);
    // The kernel shows the keep-alive timer on the server's end of the connection.
    expect(kernelKeepAlive(socket.localPort!)).toBe(true);
    socket.write('ping');
    const [echo] = await withTimeout(once(socket, 'data'), 5000, 'echo');
    expect(String(echo)).toBe('ping');
  });
});
