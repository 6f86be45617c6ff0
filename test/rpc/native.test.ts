/** The native protocol end to end, provider and channel in this process (no registry). */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { RpcError } from '../../src/rpc/errors.js';
import { RpcController } from '../../src/rpc/RpcController.js';
import { RpcProvider, type RpcProviderOptions } from '../../src/rpc/server/RpcProvider.js';
import { createStub } from '../../src/rpc/stub.js';
import type { ServiceImpl } from '../../src/rpc/types.js';
import {
  decodeMeta,
  encodeMeta,
  FrameKind,
  newMeta,
  PREFACE,
  type RpcMeta,
  WireStatus,
} from '../../src/rpc/wire/nativeFrame.js';
import {
  clientViewRoot,
  type EchoShape,
  echoImpl,
  echoService,
  HOST,
  rejection,
  root,
  sleep,
  type UserShape,
  userImpl,
  userService,
} from './helpers.js';

/** Waits until `chunks` (after the 8-byte preface) hold `count` frames; returns their headers. */
async function readFrames(chunks: Buffer[], count: number): Promise<RpcMeta[]> {
  for (let i = 0; i < 200; i++) {
    const all = Buffer.concat(chunks);
    const metas: RpcMeta[] = [];
    let p = PREFACE.length;
    while (all.length - p >= 6 && all.length - p - 4 >= all.readUInt32BE(p)) {
      const meta = newMeta();
      decodeMeta(all, p + 6, p + 6 + all.readUInt16BE(p + 4), meta);
      metas.push({ ...meta });
      p += 4 + all.readUInt32BE(p);
    }
    if (metas.length >= count) return metas;
    await sleep(10);
  }
  throw new Error(`fewer than ${count} frames arrived`);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startProvider(options: RpcProviderOptions = {}, counter?: { calls: number; appends: number }) {
  const loop = new EventLoop();
  const provider = new RpcProvider({ host: HOST, loop, ...options });
  provider.notifyService(echoService, echoImpl('p1', counter));
  provider.notifyService(userService, userImpl);
  const address = await provider.run();
  cleanups.push(() => provider.stop({ graceMs: 500 }));
  return { provider, port: address.port, loop };
}

function channelTo(
  port: number,
  options: Partial<ConstructorParameters<typeof RpcChannel>[0]> = {},
): RpcChannel {
  const channel = new RpcChannel({ host: HOST, port, loop: new EventLoop(), ...options });
  cleanups.push(() => channel.close());
  return channel;
}

describe('native calls', () => {
  it('calls a typed stub and gets the decoded response', async () => {
    const { port } = await startProvider();
    const channel = channelTo(port);
    const users = createStub<UserShape>(channel, userService);
    const ok = await users.Login({ name: Buffer.from('zhang san'), pwd: Buffer.from('123456') });
    expect(ok.success).toBe(true);
    expect(ok.result?.errcode).toBe(0);
    const bad = await users.Login({ name: Buffer.from('zhang san'), pwd: Buffer.from('nope') });
    expect(bad.success).toBe(false);
    expect(Buffer.from(bad.result?.errmsg ?? []).toString()).toBe('bad password');
  });

  it('keeps 1000 calls in flight on one connection, matched by call id', async () => {
    const { provider, port } = await startProvider();
    const channel = channelTo(port);
    const echo = createStub<EchoShape>(channel, echoService);
    // Varying delays make the provider answer out of order; distinct payloads catch mix-ups.
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        echo.Echo({ seq: i, payload: Buffer.from(`payload-${i}`), delay_ms: (i * 7) % 20 }),
      ),
    );
    replies.forEach((reply, i) => {
      expect(reply.seq).toBe(i);
      expect(Buffer.from(reply.payload).toString()).toBe(`payload-${i}`);
    });
    expect(provider.stats.nativeConnections).toBe(1);
    expect(provider.stats.completed).toBeGreaterThanOrEqual(1000);
    expect(channel.pendingCalls).toBe(0);
  });

  it('respects the provider in-flight limit by pausing reads, and still completes every call', async () => {
    let running = 0;
    let peak = 0;
    const loop = new EventLoop();
    const provider = new RpcProvider({ host: HOST, loop, maxInFlightPerConnection: 8 });
    provider.notifyService<EchoShape>(echoService, {
      Echo: async (request) => {
        running++;
        peak = Math.max(peak, running);
        await sleep(2);
        running--;
        return { payload: request.payload ?? new Uint8Array(0), served_by: 'p', seq: request.seq ?? 0 };
      },
      Append: () => ({ payload: new Uint8Array(0), served_by: 'p', seq: 0 }),
    });
    const { port } = await provider.run();
    cleanups.push(() => provider.stop({ graceMs: 500 }));
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => echo.Echo({ seq: i })));
    expect(replies.map((r) => r.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(peak).toBeLessThanOrEqual(8);
    expect(peak).toBeGreaterThan(1);
  });

  it('stops reading a caller that does not read its answers, and loses nothing when it does', async () => {
    const { provider, port } = await startProvider({ maxPendingOutputBytes: 256 * 1024 });
    const EchoRequest = root.lookupType('fixbug.EchoRequest');
    const payload = Buffer.alloc(16 * 1024, 0x61);
    const count = 2000; // 32 MiB of answers, far beyond every buffer on the way
    const frames: Buffer[] = [PREFACE];
    for (let i = 1; i <= count; i++) {
      const meta = encodeMeta({ ...newMeta(), callId: i, service: 'fixbug.EchoService', method: 'Echo' });
      const body = EchoRequest.encode({ payload, seq: i }).finish();
      const head = Buffer.alloc(6);
      head.writeUInt32BE(2 + meta.length + body.length);
      head.writeUInt16BE(meta.length, 4);
      frames.push(head, Buffer.from(meta), Buffer.from(body));
    }
    const socket = connect({ host: HOST, port });
    cleanups.push(async () => {
      socket.destroy();
    });
    socket.pause(); // a caller that does not read
    socket.write(Buffer.concat(frames));
    await sleep(500);
    const stalled = provider.stats.completed;
    await sleep(200);
    // The provider stopped: its own buffer, the kernel's and ours hold only part of the answers.
    expect(provider.stats.completed).toBe(stalled);
    expect(stalled).toBeLessThan(count / 2); // 276 here: about 4.4 MiB held on the way
    // Now read everything: every call is answered exactly once.
    const seen = new Set<number>();
    let buffered = Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        let p = seen.size === 0 && buffered.subarray(0, 8).equals(PREFACE) ? 8 : 0;
        while (buffered.length - p >= 4 && buffered.length - p - 4 >= buffered.readUInt32BE(p)) {
          const meta = newMeta();
          decodeMeta(buffered, p + 6, p + 6 + buffered.readUInt16BE(p + 4), meta);
          expect(meta.status).toBe(WireStatus.OK);
          expect(seen.has(meta.callId)).toBe(false);
          seen.add(meta.callId);
          p += 4 + buffered.readUInt32BE(p);
        }
        buffered = buffered.subarray(p);
        if (seen.size === count) resolve();
      });
      socket.resume();
    });
    expect(provider.stats.completed).toBe(count);
    expect(provider.stats.failed).toBe(0);
  });

  it('bounds calls in flight per connection on the caller side too', async () => {
    // The provider counts the calls it is running at once: that is what "on the wire" means.
    let running = 0;
    let mostRunning = 0;
    let release: () => void = () => {};
    let reachedLimit: () => void = () => {};
    const limitReached = new Promise<void>((resolve) => {
      reachedLimit = resolve;
    });
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const impl: ServiceImpl<EchoShape> = {
      Echo: async (request) => {
        running++;
        mostRunning = Math.max(mostRunning, running);
        if (running === 4) reachedLimit();
        await gate;
        await sleep(1);
        running--;
        return { payload: new Uint8Array(0), served_by: 'p1', seq: request.seq ?? 0 };
      },
      Append: () => ({ payload: new Uint8Array(0), served_by: 'p1', seq: running }),
    };
    const provider = new RpcProvider({ host: HOST, loop: new EventLoop() });
    provider.notifyService(echoService, impl);
    const { port } = await provider.run();
    cleanups.push(() => provider.stop({ graceMs: 500 }));
    const channel = channelTo(port, { maxInFlightPerConnection: 4 });
    const echo = createStub<EchoShape>(channel, echoService);
    const calls = Array.from({ length: 50 }, (_, i) => echo.Echo({ seq: i }));
    await limitReached;
    // Barrier: a call on a second connection, sent after the fourth started, reports how many
    // run; a fifth call of the limited connection would have been sent with the first four.
    const other = createStub<EchoShape>(channelTo(port), echoService);
    expect((await other.Append({ seq: 0 })).seq).toBe(4);
    const [entry] = channel.providers('fixbug.EchoService');
    expect(entry!.outstanding).toBe(50); // queued ones count, only 4 are on the wire
    release();
    expect((await Promise.all(calls)).map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(mostRunning).toBe(4);
  });

  it('fails fast with RESOURCE_EXHAUSTED past maxPendingCalls', async () => {
    const { port } = await startProvider();
    const channel = channelTo(port, { maxPendingCalls: 3 });
    const echo = createStub<EchoShape>(channel, echoService);
    const slow = [1, 2, 3].map((i) => echo.Echo({ seq: i, delay_ms: 50 }));
    const error = await rejection(echo.Echo({ seq: 4 }));
    expect(error.code).toBe('RESOURCE_EXHAUSTED');
    expect(error.mayHaveExecuted).toBe(false);
    await Promise.all(slow);
  });
});

describe('every failure is a distinct RpcError', () => {
  it('UNKNOWN_SERVICE and UNKNOWN_METHOD from a provider that lacks them', async () => {
    const { port } = await startProvider();
    const channel = channelTo(port);
    const newer = createStub(channel, clientViewRoot.lookupService('fixbug.EchoService'));
    const ghost = createStub(channel, clientViewRoot.lookupService('fixbug.GhostService'));
    const unknownMethod = await rejection(newer.Missing!({ seq: 1 }));
    expect(unknownMethod).toBeInstanceOf(RpcError);
    expect(unknownMethod.code).toBe('UNKNOWN_METHOD');
    expect(unknownMethod.message).toMatch(/Missing/);
    const unknownService = await rejection(ghost.Echo!({ seq: 1 }));
    expect(unknownService.code).toBe('UNKNOWN_SERVICE');
    expect(unknownService.message).toMatch(/GhostService/);
    // The connection survives both.
    expect((await newer.Echo!({ seq: 5 })).seq).toBe(5);
  });

  it('HANDLER_ERROR for a throwing or rejecting handler, and for a bad return value', async () => {
    const loop = new EventLoop();
    const provider = new RpcProvider({ host: HOST, loop });
    provider.notifyService<EchoShape>(echoService, {
      Echo: () => {
        throw new Error('sync boom');
      },
      Append: async (request) => {
        if (request.seq === 1) throw new Error('async boom');
        if (request.seq === 2) throw new RpcError('BAD_REQUEST', 'seq 2 is not allowed');
        return { payload: 'not bytes' as unknown as Uint8Array, served_by: 5 as unknown as string, seq: 0 };
      },
    });
    const { port } = await provider.run();
    cleanups.push(() => provider.stop({ graceMs: 200 }));
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const sync = await rejection(echo.Echo({}));
    expect(sync.code).toBe('HANDLER_ERROR');
    expect(sync.message).toMatch(/sync boom/);
    const async = await rejection(echo.Append({ seq: 1 }));
    expect(async.code).toBe('HANDLER_ERROR');
    expect(async.message).toMatch(/async boom/);
    const badRequest = await rejection(echo.Append({ seq: 2 }));
    expect(badRequest.code).toBe('BAD_REQUEST');
    const badReturn = await rejection(echo.Append({ seq: 3 }));
    expect(badReturn.code).toBe('HANDLER_ERROR');
    expect(badReturn.message).toMatch(/bad EchoResponse/);
    expect(provider.stats.failed).toBe(4);
  });

  it('HANDLER_ERROR when an unverified response fails to encode; the connection keeps working', async () => {
    const loop = new EventLoop();
    const provider = new RpcProvider({ host: HOST, loop, verifyResponses: false });
    provider.notifyService<EchoShape>(echoService, {
      ...echoImpl('p1'),
      Append: () => ({ payload: new Uint8Array(0), served_by: { length: 3 } as unknown as string, seq: 0 }),
    });
    const { port } = await provider.run();
    cleanups.push(() => provider.stop({ graceMs: 200 }));
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const [bad, good] = await Promise.allSettled([echo.Append({}), echo.Echo({ seq: 8 })]);
    expect(bad.status).toBe('rejected');
    const error = (bad as PromiseRejectedResult).reason as RpcError;
    expect(error.code).toBe('HANDLER_ERROR');
    expect(error.message).toMatch(/cannot encode EchoResponse/);
    expect(good.status === 'fulfilled' && good.value.seq).toBe(8);
    expect(provider.stats.failed).toBe(1);
  });

  it('BAD_REQUEST before sending when the request does not fit the type', async () => {
    const { provider, port } = await startProvider();
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const error = await rejection(echo.Echo({ seq: 'seven' as unknown as number }));
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.mayHaveExecuted).toBe(false);
    expect(provider.stats.completed).toBe(0);
  });

  it('BAD_REQUEST, not a broken frame, when an unverified request fails to encode on the wire', async () => {
    const { provider, port } = await startProvider();
    const echo = createStub<EchoShape>(channelTo(port, { verifyRequests: false }), echoService);
    await echo.Echo({ seq: 1 }); // connected: later calls are encoded straight into the output
    const good = echo.Echo({ seq: 2, payload: Buffer.alloc(3000, 1) });
    const bad = rejection(echo.Echo({ seq: 3, fail: { length: 3 } as unknown as string }));
    const after = echo.Echo({ seq: 4, payload: Buffer.from('after') });
    const error = await bad;
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toMatch(/cannot encode EchoRequest/);
    expect(error.mayHaveExecuted).toBe(false);
    // The calls around it, written into the same output in the same turn, are intact.
    expect((await good).payload).toEqual(Buffer.alloc(3000, 1));
    expect(Buffer.from((await after).payload).toString()).toBe('after');
    expect(provider.stats.completed).toBe(3);
  });

  it('sends what a request held when called, even if the object changes while the call waits', async () => {
    const { port } = await startProvider();
    const echo = createStub<EchoShape>(channelTo(port, { maxInFlightPerConnection: 1 }), echoService);
    // The connection is not up yet, and then only one call may be in flight: both wait.
    const request = { seq: 1, payload: Buffer.from('first') };
    const first = echo.Echo(request);
    request.seq = 2;
    request.payload = Buffer.from('second');
    const second = echo.Echo(request);
    request.seq = 3;
    request.payload.fill(0x7a);
    expect((await first).seq).toBe(1);
    expect(Buffer.from((await first).payload).toString()).toBe('first');
    expect((await second).seq).toBe(2);
    expect(Buffer.from((await second).payload).toString()).toBe('second');
  });

  it('BAD_REQUEST from the provider for bytes that do not decode (raw native frames)', async () => {
    const { port } = await startProvider();
    const socket = connect({ host: HOST, port });
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const frame = (callId: number, body: number[]): Buffer => {
      const meta = encodeMeta({ ...newMeta(), callId, service: 'fixbug.EchoService', method: 'Echo' });
      const out = Buffer.alloc(6 + meta.length + body.length);
      out.writeUInt32BE(2 + meta.length + body.length, 0);
      out.writeUInt16BE(meta.length, 4);
      out.set(meta, 6);
      out.set(body, 6 + meta.length);
      return out;
    };
    // Field 1 (payload) claims 100 bytes and has none; then a good call on the same connection.
    socket.write(Buffer.concat([PREFACE, frame(1, [0x0a, 0x64]), frame(2, [0x20, 0x07])]));
    const replies = await readFrames(received, 2);
    expect(replies[0]!.callId).toBe(1);
    expect(replies[0]!.status).toBe(WireStatus.BAD_REQUEST);
    expect(replies[0]!.error).toMatch(/cannot decode EchoRequest/);
    expect(replies[1]!).toMatchObject({ callId: 2, status: WireStatus.OK });
    // A frame too short to hold its header length breaks the format: GOAWAY, then close.
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(Buffer.from([0, 0, 0, 1, 0]));
    const [goAway] = await readFrames(received, 3).then((all) => all.slice(2));
    expect(goAway!.kind).toBe(FrameKind.GOAWAY);
    expect(goAway!.error).toMatch(/protocol error/);
    await closed;
  });

  it('DEADLINE_EXCEEDED when the answer is late, without waiting for it', async () => {
    const { provider, port } = await startProvider();
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const started = performance.now();
    // The answer would come after 3 s: failing well before it shows the caller did not wait.
    const error = await rejection(echo.Echo({ delay_ms: 3000 }, { timeoutMs: 50 }));
    const waited = performance.now() - started;
    expect(error.code).toBe('DEADLINE_EXCEEDED');
    expect(waited).toBeGreaterThanOrEqual(45);
    expect(waited).toBeLessThan(2000);
    // An absolute deadline works the same way, and the connection stays usable.
    const absolute = await rejection(echo.Echo({ delay_ms: 400 }, { deadline: Date.now() + 30 }));
    expect(absolute.code).toBe('DEADLINE_EXCEEDED');
    expect((await echo.Echo({ seq: 9 })).seq).toBe(9);
    // The provider skipped the late answers' bytes but finished the handlers.
    const deadline = performance.now() + 15_000;
    while (provider.stats.inFlight > 0 && performance.now() < deadline) await sleep(20);
    expect(provider.stats.inFlight).toBe(0);
    // A deadline already in the past never leaves the process.
    expect((await rejection(echo.Echo({}, { timeoutMs: 0 }))).code).toBe('DEADLINE_EXCEEDED');
  });

  it('UNAVAILABLE when nothing listens, without waiting for the deadline', async () => {
    const { port, provider } = await startProvider();
    await provider.stop({ graceMs: 0 });
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const started = performance.now();
    const error = await rejection(echo.Echo({}, { timeoutMs: 5000 }));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.mayHaveExecuted).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('UNAVAILABLE for calls in flight when the provider connection drops', async () => {
    // A fake provider that accepts the preface and the calls, then resets the connection.
    const { createServer } = await import('node:net');
    const server = createServer((socket) => {
      socket.once('data', () => setTimeout(() => socket.resetAndDestroy(), 30));
    });
    await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;
    const channel = channelTo(port, { maxAttempts: 1 });
    const echo = createStub<EchoShape>(channel, echoService);
    const errors = await Promise.all([rejection(echo.Append({ seq: 1 })), rejection(echo.Echo({ seq: 2 }))]);
    for (const error of errors) {
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.mayHaveExecuted).toBe(true);
    }
  });

  it('CANCELLED for calls pending when the channel closes', async () => {
    const { port } = await startProvider();
    const channel = new RpcChannel({ host: HOST, port, loop: new EventLoop() });
    const echo = createStub<EchoShape>(channel, echoService);
    const pending = rejection(echo.Echo({ delay_ms: 300 }));
    await sleep(20);
    await channel.close();
    expect((await pending).code).toBe('CANCELLED');
    expect((await rejection(echo.Echo({}))).code).toBe('CANCELLED');
  });

  it('fills an RpcController with the failure, like the classic controller', async () => {
    const { port } = await startProvider();
    const echo = createStub<EchoShape>(channelTo(port), echoService);
    const controller = new RpcController({ timeoutMs: 30 });
    await expect(echo.Echo({ delay_ms: 200 }, controller)).rejects.toBeInstanceOf(RpcError);
    expect(controller.failed()).toBe(true);
    expect(controller.errorCode()).toBe('DEADLINE_EXCEEDED');
    expect(controller.errorText()).toMatch(/deadline/);
    controller.timeoutMs = 1000;
    const reply = await echo.Echo({ seq: 3 }, controller);
    expect(reply.seq).toBe(3);
    expect(controller.failed()).toBe(false);
    expect(controller.errorText()).toBe('');
  });
});

describe('provider life cycle', () => {
  it('drains on stop: calls in flight finish, later calls fail UNAVAILABLE as not executed', async () => {
    const counter = { calls: 0, appends: 0 };
    const { provider, port } = await startProvider({}, counter);
    const channel = channelTo(port, { maxAttempts: 1 });
    const echo = createStub<EchoShape>(channel, echoService);
    await echo.Echo({ seq: 0 });
    const inFlight = Array.from({ length: 20 }, (_, i) => echo.Append({ seq: i, delay_ms: 100 }));
    await sleep(20);
    const stopping = provider.stop({ graceMs: 2000 });
    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await stopping;
    const after = await rejection(echo.Append({ seq: 99 }));
    expect(after.code).toBe('UNAVAILABLE');
    expect(after.mayHaveExecuted).toBe(false);
    expect(counter.appends).toBe(20);
  });

  it('runs calls that crossed the GOAWAY on the wire instead of refusing them', async () => {
    const counter = { calls: 0, appends: 0 };
    const { provider, port } = await startProvider({}, counter);
    const channel = channelTo(port, { maxAttempts: 1 });
    const echo = createStub<EchoShape>(channel, echoService);
    await echo.Echo({ seq: 0 });
    // Sent in this turn; the provider reads them only after stop() has written its GOAWAY.
    const crossing = Array.from({ length: 20 }, (_, i) => echo.Append({ seq: i }));
    const stopping = provider.stop({ graceMs: 5000 });
    const replies = await Promise.all(crossing);
    expect(replies.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await stopping;
    expect(counter.appends).toBe(20);
  });

  it('tells the channel’s owner when a provider is lost (drained at its stop)', async () => {
    const first = await startProvider();
    const second = await startProvider();
    const channel = new RpcChannel({
      providers: [`${HOST}:${first.port}`, `${HOST}:${second.port}`],
      loop: new EventLoop(),
    });
    cleanups.push(() => channel.close());
    const lost: string[] = [];
    channel.onProviderLost((key) => lost.push(key));
    const echo = createStub<EchoShape>(channel, echoService);
    // Both connected (least load spreads concurrent calls).
    await Promise.all(Array.from({ length: 8 }, (_, i) => echo.Echo({ seq: i })));
    expect(lost).toEqual([]);
    await first.provider.stop({ graceMs: 1000 });
    expect(lost).toEqual([`${HOST}:${first.port}`]);
    // A call still works, on the other one.
    expect((await echo.Echo({ seq: 9 })).seq).toBe(9);
  });

  it('closes connections that never say which protocol they speak, and rejects a wrong version', async () => {
    const { port } = await startProvider({ handshakeTimeoutMs: 100 });
    const idle = connect({ host: HOST, port });
    idle.on('error', () => {});
    const closed = new Promise<void>((resolve) => idle.on('close', () => resolve()));
    idle.write(Buffer.from([0x4d, 0x52])); // half a magic, then silence
    const started = performance.now();
    await closed;
    expect(performance.now() - started).toBeLessThan(2000);

    const wrong = connect({ host: HOST, port });
    const outcome = new Promise<string>((resolve) => {
      wrong.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      wrong.on('close', () => resolve('closed'));
    });
    wrong.write(Buffer.from([0x4d, 0x52, 0x50, 0x43, 0x09, 0, 0, 0]));
    // A reset (RST), as the README promises, not an orderly close: the peer's read fails.
    expect(await outcome).toBe('ECONNRESET');
  });

  it('rejects bad service definitions and handler sets up front', () => {
    const provider = new RpcProvider({ host: HOST, loop: new EventLoop() });
    expect(() =>
      provider.notifyService<EchoShape>(echoService, { Echo: echoImpl('x').Echo } as never),
    ).toThrow(/no handler for method Append/);
    expect(() =>
      provider.notifyService(echoService, { ...echoImpl('x'), Extra: () => ({}) } as never),
    ).toThrow(/has no method 'Extra'/);
    provider.notifyService(echoService, echoImpl('x'));
    expect(() => provider.notifyService(echoService, echoImpl('x'))).toThrow(/already published/);
    expect(() => new RpcChannel({})).toThrow(/needs zookeeper/);
    expect(() => new RpcChannel({ providers: ['nonsense'] })).toThrow(/bad provider address/);
  });
});
