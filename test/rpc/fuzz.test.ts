/**
 * Bad bytes never crash either side of the RPC framework (property-based, fast-check, real
 * sockets). A provider fed garbage answers with an error or closes that one connection and keeps
 * serving everyone else; a channel fed garbage by its provider settles every call with an
 * RpcError (or a response, when the bytes happen to decode) and never hangs.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { isRpcError } from '../../src/rpc/errors.js';
import { RpcProvider } from '../../src/rpc/server/RpcProvider.js';
import { createStub } from '../../src/rpc/stub.js';
import { encodeMeta, FrameKind, newMeta, PREFACE } from '../../src/rpc/wire/nativeFrame.js';
import { type EchoShape, echoService, HOST, sleep } from './helpers.js';

const bytes = (maxLength: number) => fc.uint8Array({ maxLength });

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A native frame whose lengths are right or, sometimes, wrong; meta valid or random bytes. */
const nativeFrame = fc
  .record({
    meta: fc.oneof(
      bytes(40),
      fc
        .record({
          kind: fc.integer({ min: 0, max: 3 }),
          callId: fc.integer({ min: 0, max: 0xffffffff }),
          service: fc.constantFrom('fixbug.EchoService', 'nope', ''),
          method: fc.constantFrom('Echo', 'Append', 'x'),
          timeoutMs: fc.integer({ min: 0, max: 0xffffffff }),
          status: fc.integer({ min: 0, max: 9 }),
          error: fc.string({ maxLength: 20 }),
        })
        .map((m) => encodeMeta({ ...newMeta(), ...m })),
    ),
    body: bytes(64),
    lengthDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -8, max: 8 })),
    metaLenDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -4, max: 4 })),
  })
  .map(({ meta, body, lengthDelta, metaLenDelta }) => {
    const metaLen = Buffer.alloc(2);
    metaLen.writeUInt16BE(Math.max(0, Math.min(0xffff, meta.length + metaLenDelta)));
    return Buffer.concat([u32be(2 + meta.length + body.length + lengthDelta), metaLen, meta, body]);
  });

/** What a caller might send a provider: garbage, native frames after the preface, classic headers. */
const providerInput = fc.oneof(
  bytes(300).map((b) => Buffer.from(b)),
  fc.array(nativeFrame, { maxLength: 5 }).map((frames) => Buffer.concat([PREFACE, ...frames])),
  fc
    .record({ size: fc.integer({ min: 0, max: 200 }), header: bytes(60), args: bytes(40) })
    .map(({ size, header, args }) => {
      const le = Buffer.alloc(4);
      le.writeUInt32LE(size);
      return Buffer.concat([le, header, args]);
    }),
);

/** Writes `input`, half-closes, and waits until the provider closes or 200 ms pass. */
function feed(port: number, input: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 200);
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', () => {});
    socket.end(input);
  });
}

describe('a provider fed arbitrary bytes', () => {
  let provider: RpcProvider;
  let channel: RpcChannel;
  let port = 0;

  beforeAll(async () => {
    provider = new RpcProvider({ host: HOST, loop: new EventLoop(), handshakeTimeoutMs: 500 });
    provider.notifyService<EchoShape>(echoService, {
      Echo: (request) => ({
        payload: request.payload ?? new Uint8Array(0),
        served_by: 'p',
        seq: request.seq ?? 0,
      }),
      Append: (request) => {
        if (request.fail) throw new Error(request.fail);
        return { payload: new Uint8Array(0), served_by: 'p', seq: request.seq ?? 0 };
      },
    });
    port = (await provider.run()).port;
    channel = new RpcChannel({ host: HOST, port, loop: new EventLoop() });
  });

  afterAll(async () => {
    await channel.close();
    await provider.stop({ graceMs: 200 });
  });

  it('answers or closes that connection, and keeps serving a caller connected all along', async () => {
    const echo = createStub<EchoShape>(channel, echoService);
    expect((await echo.Echo({ seq: 1 })).seq).toBe(1);
    let seq = 1;
    await fc.assert(
      fc.asyncProperty(providerInput, async (input) => {
        await feed(port, input);
        seq++;
        const reply = await echo.Echo({ seq, payload: Buffer.from('still here') });
        expect(reply.seq).toBe(seq);
        expect(Buffer.from(reply.payload).toString()).toBe('still here');
      }),
      { numRuns: 80 },
    );
    expect(provider.stats.inFlight).toBe(0);
    // Only the channel's own connection is left once the provider has seen the last close.
    for (let i = 0; i < 100 && provider.stats.nativeConnections > 1; i++) await sleep(10);
    expect(provider.stats.nativeConnections).toBe(1);
  });
});

/** What a provider might send back after the preface: garbage, or frames (some for call 1). */
const callerInput = fc.record({
  preface: fc.oneof(
    fc.constant(PREFACE),
    fc.constant(PREFACE),
    bytes(8).map((b) => Buffer.from(b)),
  ),
  frames: fc.array(
    fc.oneof(
      nativeFrame,
      fc
        .record({
          status: fc.integer({ min: 0, max: 9 }),
          error: fc.string({ maxLength: 10 }),
          body: bytes(40),
        })
        .map(({ status, error, body }) => {
          const meta = encodeMeta({ ...newMeta(), kind: FrameKind.RESPONSE, callId: 1, status, error });
          const head = Buffer.alloc(6);
          head.writeUInt32BE(2 + meta.length + body.length);
          head.writeUInt16BE(meta.length, 4);
          return Buffer.concat([head, meta, body]);
        }),
    ),
    { maxLength: 4 },
  ),
  close: fc.boolean(),
});

const CALLER_CODES = new Set([
  'PROTOCOL_ERROR',
  'BAD_RESPONSE',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'UNKNOWN_SERVICE',
  'UNKNOWN_METHOD',
  'BAD_REQUEST',
  'HANDLER_ERROR',
  'RESOURCE_EXHAUSTED',
]);

describe('a channel whose provider sends arbitrary bytes', () => {
  let server: Server;
  let port = 0;
  let next: { bytes: Buffer; close: boolean } = { bytes: Buffer.alloc(0), close: true };

  beforeAll(async () => {
    server = createServer((socket: Socket) => {
      const reply = next;
      socket.on('error', () => {});
      // Answer once the caller's preface and first request are in.
      socket.once('data', () => {
        if (reply.close) socket.end(reply.bytes);
        else socket.write(reply.bytes);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    const address = server.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('settles every call with an RpcError or a response, never a hang or a crash', async () => {
    await fc.assert(
      fc.asyncProperty(callerInput, async ({ preface, frames, close }) => {
        next = { bytes: Buffer.concat([preface, ...frames]), close };
        const channel = new RpcChannel({
          host: HOST,
          port,
          loop: new EventLoop(),
          maxAttempts: 1,
          defaultTimeoutMs: 150,
        });
        try {
          const echo = createStub<EchoShape>(channel, echoService);
          const started = performance.now();
          const outcomes = await Promise.allSettled([echo.Echo({ seq: 1 }), echo.Echo({ seq: 2 })]);
          expect(performance.now() - started).toBeLessThan(3000); // deadline 150 ms: a hang would be far longer
          for (const outcome of outcomes) {
            if (outcome.status === 'rejected') {
              expect(isRpcError(outcome.reason)).toBe(true);
              expect(CALLER_CODES.has((outcome.reason as { code: string }).code)).toBe(true);
            } else {
              expect(typeof outcome.value).toBe('object');
            }
          }
          expect(channel.pendingCalls).toBe(0);
        } finally {
          await channel.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
