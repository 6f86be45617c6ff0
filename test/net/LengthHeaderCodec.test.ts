import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NetError } from '../../src/net/errors.js';
import { kDefaultMaxFrameSize, LengthHeaderCodec } from '../../src/net/LengthHeaderCodec.js';
import type { TcpConnection } from '../../src/net/TcpConnection.js';
import type { TcpServer } from '../../src/net/TcpServer.js';
import { HOST, pattern, rawConnect, sleep, startServer, waitFor, withTimeout } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const frame = (payload: string | Uint8Array): globalThis.Buffer => LengthHeaderCodec.encode(payload);

function header(length: number): globalThis.Buffer {
  const out = globalThis.Buffer.alloc(4);
  out.writeInt32BE(length, 0);
  return out;
}

/** Parses complete frames out of a byte stream (test-side decoder, deliberately simple). */
class FrameReader {
  private pending = globalThis.Buffer.alloc(0);
  readonly frames: globalThis.Buffer[] = [];

  constructor(socket: Socket) {
    socket.on('data', (chunk: globalThis.Buffer) => {
      this.pending = globalThis.Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const len = this.pending.readInt32BE(0);
        if (this.pending.length < 4 + len) break;
        this.frames.push(globalThis.Buffer.from(this.pending.subarray(4, 4 + len)));
        this.pending = this.pending.subarray(4 + len);
      }
    });
  }
}

interface EchoServer {
  server: TcpServer;
  port: number;
  frames: string[];
  errors: Array<{ conn: TcpConnection; error: NetError }>;
  /** Number of message-callback invocations (reads), to know when bytes have arrived. */
  reads: () => number;
  codec: LengthHeaderCodec;
}

/** A server that echoes each frame back as a frame, recording what it decoded. */
async function echoServer(maxFrameSize?: number): Promise<EchoServer> {
  const frames: string[] = [];
  const errors: Array<{ conn: TcpConnection; error: NetError }> = [];
  let reads = 0;
  const codec = new LengthHeaderCodec(
    (conn, payload) => {
      // The view is only valid during the call: record a copy, echo through the codec (which copies).
      frames.push(payload.toString('latin1'));
      codec.send(conn, payload);
    },
    { maxFrameSize, onError: (conn, error) => errors.push({ conn, error }) },
  );
  const { server, port } = await startServer({ name: 'Codec', noDelay: true }, (s) =>
    s.setMessageCallback((conn, buffer, time) => {
      reads += 1;
      codec.onMessage(conn, buffer, time);
    }),
  );
  cleanups.push(() => server.stop({ graceMs: 200 }));
  return { server, port, frames, errors, reads: () => reads, codec };
}

async function client(port: number): Promise<Socket> {
  const socket = await rawConnect(port);
  socket.setNoDelay(true);
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  return socket;
}

describe('LengthHeaderCodec.encode', () => {
  it('prefixes a big-endian int32 length to strings (UTF-8) and bytes', () => {
    expect([...frame('hé')]).toEqual([0, 0, 0, 3, 0x68, 0xc3, 0xa9]);
    expect([...frame(Uint8Array.of(1, 2))]).toEqual([0, 0, 0, 2, 1, 2]);
    expect([...frame('')]).toEqual([0, 0, 0, 0]);
    expect(kDefaultMaxFrameSize).toBe(1024 * 1024);
    expect(new LengthHeaderCodec(() => {}).maxFrameSize).toBe(kDefaultMaxFrameSize);
  });
});

describe('LengthHeaderCodec over real sockets', () => {
  it('decodes a frame fed one byte at a time', async () => {
    const echo = await echoServer();
    const socket = await client(echo.port);
    const reader = new FrameReader(socket);
    const wire = frame('one byte at a time');
    for (const byte of wire) {
      const before = echo.reads();
      socket.write(Uint8Array.of(byte));
      // Wait for the server to see this byte on its own, so every read is a single byte.
      await waitFor(() => echo.reads() > before, 5000, 'byte delivered');
    }
    expect(echo.reads()).toBe(wire.length);
    await waitFor(() => reader.frames.length === 1, 5000, 'echo');
    expect(echo.frames).toEqual(['one byte at a time']);
    expect(reader.frames[0]!.toString()).toBe('one byte at a time');
  });

  it('decodes frames split at every position of the stream', async () => {
    const echo = await echoServer();
    const socket = await client(echo.port);
    const reader = new FrameReader(socket);
    const payloads = ['alpha', '', 'a somewhat longer payload'];
    const wire = globalThis.Buffer.concat(payloads.map((p) => frame(p)));
    for (let split = 1; split < wire.length; split++) {
      const before = echo.reads();
      socket.write(wire.subarray(0, split));
      await waitFor(() => echo.reads() > before, 5000, `first part at ${split}`);
      socket.write(wire.subarray(split));
      await waitFor(() => reader.frames.length === payloads.length * split, 5000, `echo at ${split}`);
    }
    const rounds = wire.length - 1;
    expect(echo.frames).toHaveLength(payloads.length * rounds);
    for (let i = 0; i < rounds; i++) {
      expect(echo.frames.slice(i * 3, i * 3 + 3)).toEqual(payloads);
    }
    expect(reader.frames.map((f) => f.toString())).toEqual(echo.frames);
  });

  it('decodes 1000 frames arriving in one chunk, in order', async () => {
    const echo = await echoServer();
    const socket = await client(echo.port);
    const reader = new FrameReader(socket);
    const payloads = Array.from({ length: 1000 }, (_, i) => `frame-${i}-${'x'.repeat(i % 37)}`);
    socket.write(globalThis.Buffer.concat(payloads.map((p) => frame(p))));
    await waitFor(() => reader.frames.length === 1000, 10_000, '1000 echoes');
    expect(echo.frames).toEqual(payloads);
    expect(reader.frames.map((f) => f.toString())).toEqual(payloads);
  });

  it('accepts a frame of exactly maxFrameSize, and binary payloads intact', async () => {
    const max = 64 * 1024;
    const echo = await echoServer(max);
    const socket = await client(echo.port);
    const reader = new FrameReader(socket);
    const payload = pattern(max, 5);
    socket.write(frame(payload));
    await waitFor(() => reader.frames.length === 1, 10_000, 'max frame echo');
    expect(reader.frames[0]!.equals(payload)).toBe(true);
    expect(echo.errors).toEqual([]);
  });

  async function expectRejected(maxFrameSize: number, badHeader: globalThis.Buffer, expectedLength: number) {
    const echo = await echoServer(maxFrameSize);
    const bad = await client(echo.port);
    const good = await client(echo.port);
    const goodReader = new FrameReader(good);
    await waitFor(() => echo.server.connectionCount === 2, 5000, 'two connections');
    const badPort = bad.localPort;
    const badClosed = once(bad, 'close');
    bad.write(globalThis.Buffer.concat([badHeader, globalThis.Buffer.alloc(16, 0x61)]));
    await withTimeout(badClosed, 5000, 'bad connection closed');
    expect(echo.errors).toHaveLength(1);
    const [{ conn, error }] = echo.errors as [{ conn: TcpConnection; error: NetError }];
    expect(error).toBeInstanceOf(NetError);
    expect(error.code).toBe('FRAME_TOO_LARGE');
    expect(error.message).toContain(String(expectedLength));
    expect(conn.peerAddress.port).toBe(badPort);
    await waitFor(() => echo.server.connectionCount === 1, 5000, 'only the bad one removed');
    // The other connection is unaffected.
    good.write(frame('still here'));
    await waitFor(() => goodReader.frames.length === 1, 5000, 'good echo');
    expect(goodReader.frames[0]!.toString()).toBe('still here');
    expect(echo.frames).toEqual(['still here']);
    await sleep(20);
    expect(echo.errors).toHaveLength(1);
  }

  it('closes only the offending connection on an oversized length, calling onError', async () => {
    await expectRejected(1024, header(1025), 1025);
  });

  it('closes only the offending connection on a negative length, calling onError', async () => {
    await expectRejected(1024, globalThis.Buffer.from([0xff, 0xff, 0xff, 0xfe]), -2);
  });

  it('closes on an oversized length without an onError handler too (it is optional)', async () => {
    const codec = new LengthHeaderCodec(() => {}, { maxFrameSize: 16 });
    const thrown: unknown[] = [];
    const { server, port } = await startServer({ name: 'NoHandler' }, (s) =>
      s.setMessageCallback((conn, buffer, time) => {
        try {
          codec.onMessage(conn, buffer, time);
        } catch (error) {
          thrown.push(error);
        }
      }),
    );
    cleanups.push(() => server.stop({ graceMs: 200 }));
    const bad = await client(port);
    const closed = once(bad, 'close');
    bad.write(header(17));
    await withTimeout(closed, 5000, 'closed');
    expect(thrown).toEqual([]);
  });

  it('rejects an oversized header before its payload arrives', async () => {
    const echo = await echoServer(1024);
    const bad = await client(echo.port);
    const closed = once(bad, 'close');
    // Only the header of a 1 GiB frame: the codec must not wait for (or buffer) the payload.
    bad.write(header(1 << 30));
    await withTimeout(closed, 5000, 'closed on header alone');
    expect(echo.errors).toHaveLength(1);
  });

  it('stops decoding the rest of a read once the connection is rejected', async () => {
    const echo = await echoServer(1024);
    const bad = await client(echo.port);
    bad.resume(); // consume the echo of 'ok' so that EOF (and close) can be seen
    const closed = once(bad, 'close');
    bad.write(globalThis.Buffer.concat([frame('ok'), header(5000), frame('never')]));
    await withTimeout(closed, 5000, 'closed');
    expect(echo.frames).toEqual(['ok']);
  });

  it('delivers no further frames of a read once a frame callback force-closes the connection', async () => {
    const seen: string[] = [];
    const codec = new LengthHeaderCodec((conn, payload) => {
      seen.push(payload.toString());
      if (payload.toString() === 'kick') conn.forceClose();
    });
    const { server: srv, port } = await startServer({ name: 'Kick' }, (s) =>
      s.setMessageCallback(codec.onMessage),
    );
    cleanups.push(() => srv.stop({ graceMs: 200 }));
    const socket = await client(port);
    socket.resume();
    const closed = once(socket, 'close');
    socket.write(globalThis.Buffer.concat(['a', 'kick', 'after-1', 'after-2'].map((p) => frame(p))));
    await withTimeout(closed, 5000, 'closed');
    expect(seen).toEqual(['a', 'kick']);
  });

  it('works between a TcpServer and a TcpClient', async () => {
    const { TcpClient } = await import('../../src/net/TcpClient.js');
    const echo = await echoServer();
    const got: string[] = [];
    const c = new TcpClient({ host: HOST, port: echo.port, name: 'CodecClient' });
    cleanups.push(() => c.connection?.forceClose());
    const codec = new LengthHeaderCodec((_conn, payload) => got.push(payload.toString()));
    c.setMessageCallback(codec.onMessage);
    c.setConnectionCallback((conn) => {
      if (!conn.connected) return;
      for (let i = 0; i < 100; i++) codec.send(conn, `msg ${i}`);
    });
    c.connect();
    await waitFor(() => got.length === 100, 5000, '100 echoes');
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `msg ${i}`));
  });
});
