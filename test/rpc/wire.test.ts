/** The hand-written header codecs against protobufjs reading the .proto text they implement. */
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { Buffer as NetBuffer } from '../../src/net/Buffer.js';
import { RpcError } from '../../src/rpc/errors.js';
import { sniff } from '../../src/rpc/server/sniff.js';
import { decodeClassicHeader, encodeClassicRequest } from '../../src/rpc/wire/classicFrame.js';
import { FrameReader } from '../../src/rpc/wire/FrameReader.js';
import {
  decodeMeta,
  encodeMeta,
  encodeNamePrefix,
  FrameKind,
  type FrameSink,
  newMeta,
  PREFACE,
  type RpcMeta,
  WireStatus,
  writeRequestFrame,
  writeResponseFrame,
  writeStatusFrame,
} from '../../src/rpc/wire/nativeFrame.js';
import { CLASSIC_HEADER_PROTO, NATIVE_META_PROTO } from '../../src/rpc/wire/protoSources.js';
import { codeOfStatus, statusOfCode } from '../../src/rpc/wire/status.js';
import { root as testRoot } from './helpers.js';

const metaType = protobuf.parse(NATIVE_META_PROTO, { keepCase: true }).root.lookupType('mprpc.wire.RpcMeta');
const classicType = protobuf
  .parse(CLASSIC_HEADER_PROTO, { keepCase: true })
  .root.lookupType('mprpc.RpcHeader');

const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const metaArb = fc.record({
  kind: fc.integer({ min: 0, max: 2 }),
  callId: uint32,
  service: fc.string({ maxLength: 40 }),
  method: fc.string({ maxLength: 40 }),
  timeoutMs: uint32,
  status: fc.integer({ min: 0, max: 7 }),
  error: fc.string({ maxLength: 100 }),
});

function fromProtobufjs(bytes: Uint8Array): RpcMeta {
  const m = metaType.toObject(metaType.decode(bytes), { enums: Number, defaults: true }) as Record<
    string,
    unknown
  >;
  return {
    kind: m.kind as number,
    callId: m.call_id as number,
    service: m.service as string,
    method: m.method as string,
    timeoutMs: m.timeout_ms as number,
    status: m.status as number,
    error: m.error as string,
  };
}

function toProtobufjs(meta: RpcMeta): Uint8Array {
  return metaType
    .encode({
      kind: meta.kind,
      call_id: meta.callId,
      service: meta.service,
      method: meta.method,
      timeout_ms: meta.timeoutMs,
      status: meta.status,
      error: meta.error,
    })
    .finish();
}

function decode(bytes: Uint8Array): RpcMeta {
  const out = newMeta();
  const buf = globalThis.Buffer.from(bytes);
  decodeMeta(buf, 0, buf.length, out);
  return { ...out };
}

/** A FrameSink over a growable byte array, for testing the frame writers. */
class Sink implements FrameSink {
  bytes = globalThis.Buffer.alloc(16);
  length = 0;
  reserve(length: number): number {
    if (this.length + length > this.bytes.length) {
      const grown = globalThis.Buffer.alloc(this.length + length);
      this.bytes.copy(grown);
      this.bytes = grown;
    }
    return this.length;
  }
  commit(end: number): void {
    this.length = end;
  }
  replaceBytes(grown: globalThis.Buffer): void {
    this.bytes = grown as globalThis.Buffer<ArrayBuffer>;
  }
  frames(): { meta: RpcMeta; body: globalThis.Buffer }[] {
    const out: { meta: RpcMeta; body: globalThis.Buffer }[] = [];
    let p = 0;
    while (p < this.length) {
      const frameLen = this.bytes.readUInt32BE(p);
      const metaLen = this.bytes.readUInt16BE(p + 4);
      const meta = newMeta();
      decodeMeta(this.bytes, p + 6, p + 6 + metaLen, meta);
      out.push({ meta: { ...meta }, body: this.bytes.subarray(p + 6 + metaLen, p + 4 + frameLen) });
      p += 4 + frameLen;
    }
    expect(p).toBe(this.length);
    return out;
  }
}

describe('native RpcMeta codec', () => {
  it('round-trips with protobufjs in both directions', () => {
    fc.assert(
      fc.property(metaArb, (meta) => {
        expect(fromProtobufjs(encodeMeta(meta))).toEqual(meta);
        expect(decode(toProtobufjs(meta))).toEqual(meta);
      }),
      { numRuns: 300 },
    );
  });

  it('skips unknown fields of every wire type', () => {
    // field 9 varint, field 10 fixed64, field 11 bytes, field 12 fixed32, then call_id = 5
    const bytes = Uint8Array.from([
      0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5a, 2, 0xaa, 0xbb, 0x65, 1, 2, 3, 4, 0x10, 5,
    ]);
    expect(decode(bytes).callId).toBe(5);
  });

  it('rejects truncated headers with PROTOCOL_ERROR', () => {
    const full = encodeMeta({ ...newMeta(), callId: 300, service: 'svc', method: 'm' });
    let rejected = 0;
    for (let cut = 1; cut < full.length; cut++) {
      const part = full.subarray(0, cut);
      // A prefix that ends between two fields is a complete (shorter) header: it must decode to
      // exactly what protobufjs reads from it. Any other prefix must fail cleanly.
      let reference: RpcMeta | undefined;
      try {
        reference = fromProtobufjs(part);
      } catch {
        reference = undefined;
      }
      if (reference !== undefined) {
        expect(decode(part), `prefix of ${cut} bytes`).toEqual(reference);
        continue;
      }
      rejected++;
      let error: unknown;
      try {
        decode(part);
      } catch (e) {
        error = e;
      }
      expect(error, `prefix of ${cut} bytes`).toBeInstanceOf(RpcError);
      expect((error as RpcError).code).toBe('PROTOCOL_ERROR');
    }
    // Most cuts fall inside a field (the strings are longer than their tags).
    expect(rejected).toBeGreaterThan(full.length / 2);
    expect(() => decode(Uint8Array.from([0x1a, 10, 1]))).toThrow(RpcError);
    expect(() => decode(Uint8Array.from([0x0f]))).toThrow(/wire type/);
  });

  it('frame writers produce what the decoder and protobufjs read back', () => {
    fc.assert(
      fc.property(
        uint32.filter((x) => x > 0),
        fc.string({ minLength: 1, maxLength: 30 }),
        fc.string({ minLength: 1, maxLength: 30 }),
        uint32,
        fc.uint8Array({ maxLength: 200 }),
        fc.string({ maxLength: 2000 }),
        (callId, service, method, timeoutMs, body, errorText) => {
          const sink = new Sink();
          writeRequestFrame(sink, callId, encodeNamePrefix(service, method), timeoutMs, body);
          writeResponseFrame(sink, callId, body);
          writeStatusFrame(sink, FrameKind.RESPONSE, callId, WireStatus.HANDLER_ERROR, errorText);
          writeStatusFrame(sink, FrameKind.GOAWAY, 0, WireStatus.UNAVAILABLE, 'bye');
          const [request, response, failure, goAway] = sink.frames();
          expect(request!.meta).toEqual({ ...newMeta(), callId, service, method, timeoutMs });
          expect([...request!.body]).toEqual([...body]);
          expect(response!.meta).toEqual({ ...newMeta(), kind: FrameKind.RESPONSE, callId });
          expect([...response!.body]).toEqual([...body]);
          expect(failure!.meta.status).toBe(WireStatus.HANDLER_ERROR);
          // Long texts are cut to 1 KiB at a character boundary.
          expect(errorText.startsWith(failure!.meta.error)).toBe(true);
          expect(globalThis.Buffer.byteLength(failure!.meta.error)).toBeLessThanOrEqual(1024);
          expect(goAway!.meta.kind).toBe(FrameKind.GOAWAY);
          expect(goAway!.meta.error).toBe('bye');
        },
      ),
      { numRuns: 200 },
    );
  });

  it('encodes message bodies in place, growing the sink, exactly as protobufjs encodes them', () => {
    const type = protobuf
      .parse('syntax = "proto3"; message M { bytes data = 1; string text = 2; repeated uint32 n = 3; }')
      .root.lookupType('M');
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            data: fc.uint8Array({ maxLength: 300 }),
            text: fc.string({ maxLength: 50 }),
            n: fc.array(uint32, { maxLength: 20 }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        (messages) => {
          const sink = new Sink(); // starts at 16 bytes: most bodies make the writer grow it
          messages.forEach((message, i) => {
            writeRequestFrame(sink, i + 1, encodeNamePrefix('s', 'm'), 0, { type, message });
            writeResponseFrame(sink, i + 1, { type, message });
          });
          const frames = sink.frames();
          expect(frames).toHaveLength(messages.length * 2);
          frames.forEach((frame, i) => {
            const expected = type.encode(messages[i >> 1]!).finish();
            expect(frame.meta.callId).toBe((i >> 1) + 1);
            expect([...frame.body]).toEqual([...expected]);
          });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('commits nothing when a message cannot be encoded, and keeps the frames before it', () => {
    const type = protobuf
      .parse('syntax = "proto3"; message M { bytes data = 1; repeated M items = 2; }')
      .root.lookupType('M');
    const sink = new Sink();
    writeResponseFrame(sink, 1, Uint8Array.of(7));
    const before = globalThis.Buffer.from(sink.bytes.subarray(0, sink.length));
    expect(() =>
      writeRequestFrame(sink, 2, encodeNamePrefix('s', 'm'), 0, {
        type,
        message: { data: new Uint8Array(40), items: [null] },
      }),
    ).toThrow();
    expect(sink.length).toBe(before.length);
    expect(sink.bytes.subarray(0, sink.length).equals(before)).toBe(true);
    expect(sink.frames()).toHaveLength(1);
  });

  it('reports where service and method sit, for the provider name cache', () => {
    const sink = new Sink();
    const prefix = encodeNamePrefix('fixbug.EchoService', 'Echo');
    writeRequestFrame(sink, 42, prefix, 100, Uint8Array.of(1, 2));
    const metaLen = sink.bytes.readUInt16BE(4);
    const meta = newMeta();
    const names = { start: -1, end: -1 };
    decodeMeta(sink.bytes, 6, 6 + metaLen, meta, names);
    expect(meta).toMatchObject({ callId: 42, timeoutMs: 100, service: '', method: '' });
    expect([...sink.bytes.subarray(names.start, names.end)]).toEqual([...prefix]);
    // Not adjacent (another field between them): no span, the provider decodes the names.
    const split = toProtobufjs({ ...newMeta(), service: 's', method: 'm' });
    const reordered = globalThis.Buffer.from([...split.subarray(0, 3), 0x28, 0x05, ...split.subarray(3)]);
    decodeMeta(reordered, 0, reordered.length, meta, names);
    expect(names.start).toBe(-1);
  });

  it('maps every status to a distinct error code and back', () => {
    const codes = Object.values(WireStatus)
      .filter((s) => s !== WireStatus.OK)
      .map(codeOfStatus);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(codeOfStatus(statusOfCode(code))).toBe(code);
    expect(codeOfStatus(99)).toBe('HANDLER_ERROR');
  });
});

describe('classic RpcHeader', () => {
  it('encodes what protobufjs decodes, little-endian size first', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 50 }),
        fc.string({ maxLength: 50 }),
        fc.uint8Array({ maxLength: 300 }),
        (s, m, args) => {
          const frame = encodeClassicRequest(s, m, args);
          const size = frame.readUInt32LE(0);
          const header = classicType.decode(frame.subarray(4, 4 + size)) as unknown as {
            service_name: Uint8Array;
            method_name: Uint8Array;
            args_size: number;
          };
          expect(globalThis.Buffer.from(header.service_name).toString()).toBe(s);
          expect(globalThis.Buffer.from(header.method_name).toString()).toBe(m);
          expect(header.args_size).toBe(args.length);
          expect([...frame.subarray(4 + size)]).toEqual([...args]);
          expect(decodeClassicHeader(frame, 4, 4 + size)).toEqual({
            service: s,
            method: m,
            argsSize: args.length,
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('per-connection detection', () => {
  const bufferOf = (bytes: number[] | Uint8Array): NetBuffer => {
    const b = new NetBuffer();
    b.append(Uint8Array.from(bytes));
    return b;
  };
  it('tells native from classic by the first four bytes', () => {
    expect(sniff(bufferOf([]))).toBe('more');
    expect(sniff(bufferOf([0x4d, 0x52, 0x50]))).toBe('more');
    expect(sniff(bufferOf(PREFACE.subarray(0, 6)))).toBe('more');
    expect(sniff(bufferOf(PREFACE))).toBe('native');
    expect(sniff(bufferOf([...PREFACE.subarray(0, 4), 9, 0, 0, 0]))).toBe('bad-version');
    expect(sniff(bufferOf(encodeClassicRequest('UserServiceRpc', 'Login', Uint8Array.of(1))))).toBe(
      'classic',
    );
    // A classic header size with the magic's bytes would be ~1.1 GB: never a real classic call.
    expect(PREFACE.readUInt32LE(0)).toBeGreaterThan(1e9);
  });
});

describe('FrameReader', () => {
  it('decodes bytes fields as copies that outlive the source buffer', () => {
    const type = testRoot.lookupType('fixbug.EchoRequest');
    const bytes = globalThis.Buffer.from(
      type.encode({ payload: globalThis.Buffer.from('hello'), seq: 3 }).finish(),
    );
    const padded = globalThis.Buffer.concat([globalThis.Buffer.from([9, 9]), bytes]);
    const reader = new FrameReader();
    reader.reset(padded, 2, padded.length);
    const message = type.decode(reader, bytes.length) as unknown as {
      payload: globalThis.Buffer;
      seq: number;
    };
    padded.fill(0);
    expect(message.payload.toString()).toBe('hello');
    expect(message.seq).toBe(3);
  });
});
