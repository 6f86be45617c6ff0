import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ChatRequest,
  decodeMuduoPayload,
  encodeMuduoPayload,
  FRAME_HEADER_BYTES,
  jsonCodec,
  LegacyFrameSplitter,
  LegacyStreamDecoder,
  legacyCodec,
  PROTO_TYPE_BY_MSGID,
  ProtocolError,
  parseRequest,
  protobufCodec,
} from '../../src/app/protocol/index.js';
import { SAMPLES } from './fixtures.js';

const enc = new TextEncoder();

/** Runs f; anything thrown must be a ProtocolError. */
function onlyProtocolErrors(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw new Error(`threw a non-ProtocolError: ${String(e)}`);
    expect(e.errno).toBe(3);
  }
}

function checkResult(value: unknown): void {
  const r = parseRequest(value);
  if (r.ok) {
    // A request the validator accepted is accepted again, unchanged (it is a fixed point).
    expect(parseRequest(r.req)).toEqual(r);
  } else {
    expect(r.errno).toBe(3);
    expect(typeof r.errmsg).toBe('string');
    expect(r.errmsg.length).toBeGreaterThan(0);
  }
}

const FIELD_NAMES = [
  'msgid',
  'id',
  'password',
  'lastseq',
  'name',
  'toid',
  'msg',
  'cmid',
  'time',
  'friendid',
  'groupname',
  'groupdesc',
  'groupid',
  'seq',
  't',
  'reqid',
] as const;

const wellFormed = fc.string({ unit: 'grapheme', maxLength: 20 });
const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const nonNegative = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const short = (max: number) => fc.string({ unit: 'grapheme', minLength: 1, maxLength: max });
const common = {
  id: fc.option(positive, { nil: undefined }),
  reqid: fc.option(fc.oneof(fc.string(), fc.integer()), { nil: undefined }),
};

/** Valid requests of every kind (with well-formed strings so protobuf can carry them too). */
const validRequest: fc.Arbitrary<Record<string, unknown>> = fc
  .oneof(
    fc.record({
      msgid: fc.constant(1),
      id: positive,
      password: fc.string({ unit: 'grapheme', maxLength: 50 }),
      lastseq: fc.option(nonNegative, { nil: undefined }),
      reqid: common.reqid,
    }),
    fc.record({ msgid: fc.constant(3), ...common }),
    fc.record({ msgid: fc.constant(4), name: short(50), password: short(50), ...common }),
    fc.record({
      msgid: fc.constant(6),
      toid: positive,
      msg: wellFormed,
      cmid: fc.option(short(64), { nil: undefined }),
      time: fc.option(wellFormed, { nil: undefined }),
      ...common,
    }),
    fc.record({ msgid: fc.constant(7), friendid: positive, ...common }),
    fc.record({
      msgid: fc.constant(8),
      groupname: short(50),
      groupdesc: fc.string({ unit: 'grapheme', maxLength: 200 }),
      ...common,
    }),
    fc.record({ msgid: fc.constant(9), groupid: positive, ...common }),
    fc.record({
      msgid: fc.constant(10),
      groupid: positive,
      msg: wellFormed,
      cmid: fc.option(short(64), { nil: undefined }),
      time: fc.option(wellFormed, { nil: undefined }),
      ...common,
    }),
    fc.record({ msgid: fc.constant(17), seq: nonNegative, ...common }),
    fc.record({
      msgid: fc.constant(18),
      t: fc.option(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), wellFormed), {
        nil: undefined,
      }),
      ...common,
    }),
  )
  .map((o) => JSON.parse(JSON.stringify(o)) as Record<string, unknown>); // drop undefined keys, -0 → 0

describe('parseRequest properties', () => {
  it('never throws on fc.anything()', () => {
    const anything = fc.anything({
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withBigInt: true,
      withDate: true,
      withTypedArray: true,
      withSparseArray: true,
      withNullPrototype: true,
      withObjectString: true,
      stringUnit: 'binary',
    });
    fc.assert(
      fc.property(anything, (v) => checkResult(v)),
      { numRuns: 1000 },
    );
  });

  it('never throws on fc.jsonValue()', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => checkResult(v)),
      { numRuns: 1000 },
    );
  });

  it('never throws on objects with the protocol field names holding arbitrary values', () => {
    const value = fc.oneof(
      fc.anything(),
      fc.integer(),
      fc.string({ unit: 'binary' }),
      fc.double(),
      fc.constant(null),
    );
    const obj = fc
      .dictionary(fc.constantFrom(...FIELD_NAMES), value)
      .chain((o) => fc.integer({ min: -1, max: 22 }).map((msgid) => ({ msgid, ...o })));
    fc.assert(
      fc.property(obj, (v) => checkResult(v)),
      { numRuns: 2000 },
    );
  });

  it('accepts every valid request unchanged', () => {
    fc.assert(
      fc.property(validRequest, (o) => {
        expect(parseRequest(o)).toEqual({ ok: true, req: o });
      }),
      { numRuns: 1000 },
    );
  });

  it('a valid request survives both framed codecs (numeric reqid becomes a string over protobuf)', () => {
    fc.assert(
      fc.property(validRequest, (o) => {
        const viaJson = jsonCodec.decodePayload(jsonCodec.encode(o).subarray(FRAME_HEADER_BYTES));
        expect(parseRequest(viaJson)).toEqual({ ok: true, req: o });
        const viaProto = protobufCodec.decodePayload(protobufCodec.encodePayload(o));
        const expected: Record<string, unknown> = { ...o };
        if (typeof o.reqid === 'number') expected.reqid = String(o.reqid);
        expect(parseRequest(viaProto)).toEqual({ ok: true, req: expected as unknown as ChatRequest });
      }),
      { numRuns: 500 },
    );
  });
});

describe('legacy stream properties', () => {
  it('any chunking of a valid stream yields exactly its messages', () => {
    const stream = fc.array(fc.jsonValue(), { minLength: 1, maxLength: 8 });
    const cuts = fc.array(fc.nat(), { maxLength: 12 });
    fc.assert(
      fc.property(stream, cuts, (values, rawCuts) => {
        const texts = values.map((v) => JSON.stringify(v));
        const bytes = enc.encode(texts.map((t) => `${t}\0`).join(''));
        const points = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const bounds = [0, ...points, bytes.length];
        const d = new LegacyStreamDecoder();
        const out: unknown[] = [];
        for (let i = 1; i < bounds.length; i++) {
          d.push(bytes.subarray(bounds[i - 1], bounds[i]));
          for (let v = d.next(); v !== undefined; v = d.next()) out.push(v);
        }
        expect(out).toEqual(texts.map((t) => JSON.parse(t)));
        expect(d.bufferedBytes).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('the raw splitter returns exactly the NUL-separated pieces', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (bytes, rawCuts) => {
          const expected: number[][] = [];
          let start = 0;
          for (let i = 0; i < bytes.length; i++) {
            if (bytes[i] === 0) {
              expected.push([...bytes.subarray(start, i)]);
              start = i + 1;
            }
          }
          const points = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const bounds = [0, ...points, bytes.length];
          const s = new LegacyFrameSplitter();
          const out: number[][] = [];
          for (let i = 1; i < bounds.length; i++) {
            s.push(bytes.subarray(bounds[i - 1], bounds[i]));
            for (let m = s.next(); m !== undefined; m = s.next()) out.push([...m]);
          }
          expect(out).toEqual(expected);
          expect(s.bufferedBytes).toBe(bytes.length - start);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('decoders on arbitrary bytes throw nothing but ProtocolError', () => {
  const bytes = fc.uint8Array({ maxLength: 200 });

  it('legacy stream decoder (small limit, arbitrary chunks)', () => {
    fc.assert(
      fc.property(fc.array(bytes, { maxLength: 6 }), (chunks) => {
        const d = legacyCodec.createDecoder(64);
        onlyProtocolErrors(() => {
          for (const c of chunks) {
            d.push(c);
            while (d.next() !== undefined);
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  it('framed JSON payloads (with and without a leading "{")', () => {
    fc.assert(
      fc.property(bytes, fc.boolean(), (b, brace) => {
        const payload = brace ? Uint8Array.of(0x7b, ...b) : b;
        onlyProtocolErrors(() => checkResult(jsonCodec.decodePayload(payload)));
      }),
      { numRuns: 1000 },
    );
  });

  it('protobuf payloads and the muduo layout', () => {
    fc.assert(
      fc.property(bytes, (b) => {
        onlyProtocolErrors(() => decodeMuduoPayload(b));
        onlyProtocolErrors(() => checkResult(protobufCodec.decodePayload(b)));
      }),
      { numRuns: 1000 },
    );
  });

  it('protobuf payloads with a valid checksum and a real type name but an arbitrary body', () => {
    const names = Object.values(PROTO_TYPE_BY_MSGID);
    fc.assert(
      fc.property(fc.constantFrom(...names), bytes, (name, body) => {
        onlyProtocolErrors(() => checkResult(protobufCodec.decodePayload(encodeMuduoPayload(name, body))));
      }),
      { numRuns: 2000 },
    );
  });

  it('valid chat payloads with one byte changed', () => {
    const payloads = SAMPLES.map((s) => protobufCodec.encodePayload(s));
    fc.assert(
      fc.property(fc.nat(payloads.length - 1), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, at, x) => {
        const p = new Uint8Array(payloads[which]!);
        p[at % p.length]! ^= x;
        onlyProtocolErrors(() => checkResult(protobufCodec.decodePayload(p)));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('protobuf round trip properties', () => {
  it('chat pushes and acks with arbitrary well-formed text and safe integers', () => {
    const push = fc.record({
      msgid: fc.constantFrom(6, 10),
      mid: positive,
      seq: positive,
      id: positive,
      name: wellFormed,
      msg: fc.string({ unit: 'grapheme', maxLength: 200 }),
      time: wellFormed,
      target: positive,
    });
    fc.assert(
      fc.property(push, ({ target, ...p }) => {
        const msg = { ...p, [p.msgid === 6 ? 'toid' : 'groupid']: target };
        expect(protobufCodec.decodePayload(protobufCodec.encodePayload(msg))).toEqual(msg);
      }),
      { numRuns: 500 },
    );
  });
});
