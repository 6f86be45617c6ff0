import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Buffer as NetBuffer } from '../../src/net/Buffer.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const text = (buffer: NetBuffer): string => buffer.peek().toString('latin1');

describe('Buffer layout', () => {
  it('starts empty with the cheap prepend area reserved', () => {
    const buf = new NetBuffer();
    expect(NetBuffer.kCheapPrepend).toBe(8);
    expect(NetBuffer.kInitialSize).toBe(1024);
    expect(buf.readableBytes()).toBe(0);
    expect(buf.writableBytes()).toBe(1024);
    expect(buf.prependableBytes()).toBe(8);
    expect(buf.capacity()).toBe(1032);
    expect(buf.peek().length).toBe(0);
  });

  it('honours a custom initial size', () => {
    const buf = new NetBuffer(16);
    expect(buf.capacity()).toBe(24);
    expect(buf.writableBytes()).toBe(16);
  });
});

describe('Buffer append', () => {
  it('appends strings as UTF-8 and bytes verbatim', () => {
    const buf = new NetBuffer();
    buf.append('héllo ');
    buf.append(bytes(0x00, 0xff, 0x41));
    buf.append(globalThis.Buffer.from('!'));
    expect(buf.readableBytes()).toBe(globalThis.Buffer.byteLength('héllo ') + 4);
    expect(buf.peek()).toEqual(
      globalThis.Buffer.concat([
        globalThis.Buffer.from('héllo '),
        globalThis.Buffer.from([0, 0xff, 0x41, 0x21]),
      ]),
    );
    expect(buf.writableBytes()).toBe(1024 - buf.readableBytes());
  });

  it('appends an empty string or array without change', () => {
    const buf = new NetBuffer(4);
    buf.append('');
    buf.append(new Uint8Array(0));
    expect(buf.readableBytes()).toBe(0);
    expect(buf.capacity()).toBe(12);
  });

  it('appendRange copies source[start, end) from a node Buffer and from a plain Uint8Array', () => {
    const buf = new NetBuffer(4);
    buf.appendRange(globalThis.Buffer.from('0123456789'), 2, 5);
    buf.appendRange(new TextEncoder().encode('abcdef'), 1, 4);
    buf.appendRange(bytes(1, 2, 3), 1, 1);
    expect(text(buf)).toBe('234bcd');
  });
});

describe('Buffer prepend', () => {
  it('prepends bytes into the reserved space', () => {
    const buf = new NetBuffer();
    buf.append('body');
    buf.prepend(bytes(0x68, 0x64)); // "hd"
    expect(text(buf)).toBe('hdbody');
    expect(buf.prependableBytes()).toBe(6);
  });

  it('prependInt8/16/32/64 write big-endian headers, innermost first', () => {
    const buf = new NetBuffer();
    buf.append('x');
    buf.prependInt8(-2);
    expect(buf.peek()).toEqual(globalThis.Buffer.from([0xfe, 0x78]));
    buf.retrieveAll();
    buf.append('x');
    buf.prependInt16(0x0102);
    expect(buf.peek()).toEqual(globalThis.Buffer.from([0x01, 0x02, 0x78]));
    buf.retrieveAll();
    buf.append('x');
    buf.prependInt32(4);
    expect(buf.peek()).toEqual(globalThis.Buffer.from([0, 0, 0, 4, 0x78]));
    buf.retrieveAll();
    buf.append('x');
    buf.prependInt64(-1n);
    expect(buf.peek()).toEqual(
      globalThis.Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x78]),
    );
    expect(buf.prependableBytes()).toBe(0);
  });

  it('refuses to prepend more than the prependable space', () => {
    const buf = new NetBuffer();
    buf.append('x');
    expect(() => buf.prepend(new Uint8Array(9))).toThrow(RangeError);
    buf.prependInt32(1);
    expect(() => buf.prependInt64(1n)).toThrow(RangeError);
    expect(() => buf.prependInt32(1)).not.toThrow();
    expect(() => buf.prependInt8(1)).toThrow(RangeError);
    expect(() => buf.prependInt16(1)).toThrow(RangeError);
    // Failed prepends leave the content alone.
    expect(buf.readableBytes()).toBe(9);
  });

  it('gains prependable space as bytes are retrieved', () => {
    const buf = new NetBuffer();
    buf.append('0123456789');
    buf.retrieve(6);
    expect(buf.prependableBytes()).toBe(14);
    buf.prepend(new Uint8Array(14).fill(0x2d));
    expect(text(buf)).toBe('--------------6789');
  });
});

describe('Buffer peek and retrieve', () => {
  it('peek returns a zero-copy view of the first len readable bytes', () => {
    const buf = new NetBuffer();
    buf.append('abcdef');
    const view = buf.peek(3);
    expect(view.toString()).toBe('abc');
    view[0] = 0x41;
    expect(text(buf)).toBe('Abcdef');
    expect(buf.peek(0).length).toBe(0);
    expect(buf.peek(6).toString()).toBe('Abcdef');
  });

  it('retrieve consumes from the front; retrieving everything rewinds the indices', () => {
    const buf = new NetBuffer();
    buf.append('abcdef');
    buf.retrieve(2);
    expect(text(buf)).toBe('cdef');
    expect(buf.prependableBytes()).toBe(10);
    buf.retrieve(4);
    expect(buf.readableBytes()).toBe(0);
    expect(buf.prependableBytes()).toBe(8);
    expect(buf.writableBytes()).toBe(1024);
  });

  it('retrieve past the end empties the buffer (clamped, like retrieveAll)', () => {
    const buf = new NetBuffer();
    buf.append('abc');
    buf.retrieve(10);
    expect(buf.readableBytes()).toBe(0);
    expect(buf.prependableBytes()).toBe(8);
  });

  it('retrieveAll empties and rewinds', () => {
    const buf = new NetBuffer();
    buf.append('abc');
    buf.retrieve(1);
    buf.retrieveAll();
    expect(buf.readableBytes()).toBe(0);
    expect(buf.prependableBytes()).toBe(8);
  });

  it('retrieveAsString / retrieveAllAsString decode and consume', () => {
    const buf = new NetBuffer();
    buf.append('héllo wörld');
    expect(buf.retrieveAsString(6)).toBe('héllo');
    expect(buf.retrieveAsString(1)).toBe(' ');
    expect(buf.retrieveAllAsString()).toBe('wörld');
    expect(buf.readableBytes()).toBe(0);
    buf.append(bytes(0xe9, 0x41));
    expect(buf.retrieveAllAsString('latin1')).toBe('éA');
    buf.append('68656c6c6f');
    expect(buf.retrieveAsString(2, 'hex')).toBe('3638');
    expect(buf.retrieveAllAsString()).toBe('656c6c6f');
  });

  it('retrieveAsBytes / retrieveAllAsBytes return copies that survive later writes', () => {
    const buf = new NetBuffer(8);
    buf.append('abcd');
    const first = buf.retrieveAsBytes(2);
    const rest = buf.retrieveAllAsBytes();
    buf.append('zzzzzzzz');
    expect(first.toString()).toBe('ab');
    expect(rest.toString()).toBe('cd');
    expect(buf.retrieveAsBytes(0).length).toBe(0);
  });

  it('throws RangeError on every over-read and leaves the buffer untouched', () => {
    const buf = new NetBuffer();
    buf.append('abc');
    expect(() => buf.peek(4)).toThrow(RangeError);
    expect(() => buf.retrieveAsString(4)).toThrow(RangeError);
    expect(() => buf.retrieveAsBytes(4)).toThrow(RangeError);
    expect(() => buf.peekInt32()).toThrow(RangeError);
    expect(() => buf.readInt32()).toThrow(RangeError);
    expect(() => buf.peekInt64()).toThrow(RangeError);
    expect(() => buf.readInt64()).toThrow(RangeError);
    expect(() => buf.unwrite(4)).toThrow(RangeError);
    expect(text(buf)).toBe('abc');
    buf.retrieveAll();
    expect(() => buf.peekInt8()).toThrow(RangeError);
    expect(() => buf.readInt8()).toThrow(RangeError);
    expect(() => buf.peekInt16()).toThrow(RangeError);
    expect(() => buf.readInt16()).toThrow(RangeError);
  });

  it('unwrite drops bytes from the end', () => {
    const buf = new NetBuffer();
    buf.append('abcdef');
    buf.unwrite(2);
    expect(text(buf)).toBe('abcd');
    buf.append('XY');
    expect(text(buf)).toBe('abcdXY');
  });
});

describe('Buffer integers (big-endian)', () => {
  it('appends, peeks and reads int8/16/32/64 including extremes and negatives', () => {
    const buf = new NetBuffer();
    buf.appendInt8(-128);
    buf.appendInt8(127);
    buf.appendInt8(-1);
    buf.appendInt16(-32768);
    buf.appendInt16(0x1234);
    buf.appendInt16(-2);
    buf.appendInt32(-2147483648);
    buf.appendInt32(0x01020304);
    buf.appendInt32(-3);
    buf.appendInt64(-9223372036854775808n);
    buf.appendInt64(0x0102030405060708n);
    buf.appendInt64(-4n);
    expect(buf.readableBytes()).toBe(3 + 6 + 12 + 24);
    // Wire layout is big-endian.
    expect([...buf.peek(3)]).toEqual([0x80, 0x7f, 0xff]);
    expect([...buf.peek().subarray(5, 7)]).toEqual([0x12, 0x34]);
    expect([...buf.peek().subarray(13, 17)]).toEqual([1, 2, 3, 4]);
    expect([...buf.peek().subarray(29, 37)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    expect(buf.peekInt8()).toBe(-128);
    expect(buf.readInt8()).toBe(-128);
    expect(buf.readInt8()).toBe(127);
    expect(buf.readInt8()).toBe(-1);
    expect(buf.peekInt16()).toBe(-32768);
    expect(buf.readInt16()).toBe(-32768);
    expect(buf.readInt16()).toBe(0x1234);
    expect(buf.readInt16()).toBe(-2);
    expect(buf.peekInt32()).toBe(-2147483648);
    expect(buf.readInt32()).toBe(-2147483648);
    expect(buf.readInt32()).toBe(0x01020304);
    expect(buf.readInt32()).toBe(-3);
    expect(buf.peekInt64()).toBe(-9223372036854775808n);
    expect(buf.readInt64()).toBe(-9223372036854775808n);
    expect(buf.readInt64()).toBe(0x0102030405060708n);
    expect(buf.readInt64()).toBe(-4n);
    expect(buf.readableBytes()).toBe(0);
  });

  it('peek does not consume', () => {
    const buf = new NetBuffer();
    buf.appendInt32(42);
    expect(buf.peekInt32()).toBe(42);
    expect(buf.peekInt32()).toBe(42);
    expect(buf.readableBytes()).toBe(4);
    expect(buf.peekInt16()).toBe(0);
    expect(buf.peekInt8()).toBe(0);
  });

  it('rejects values out of range for the width', () => {
    const buf = new NetBuffer();
    expect(() => buf.appendInt8(128)).toThrow(RangeError);
    expect(() => buf.appendInt16(40000)).toThrow(RangeError);
    expect(() => buf.appendInt32(2 ** 31)).toThrow(RangeError);
    expect(() => buf.appendInt64(2n ** 63n)).toThrow(RangeError);
    expect(buf.readableBytes()).toBe(0);
  });

  it('round-trips random integers (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -128, max: 127 }),
        fc.integer({ min: -32768, max: 32767 }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        (i8, i16, i32, i64) => {
          const buf = new NetBuffer(4);
          buf.appendInt64(i64);
          buf.appendInt32(i32);
          buf.appendInt16(i16);
          buf.appendInt8(i8);
          expect(buf.readInt64()).toBe(i64);
          expect(buf.readInt32()).toBe(i32);
          expect(buf.readInt16()).toBe(i16);
          expect(buf.readInt8()).toBe(i8);
        },
      ),
    );
  });
});

describe('Buffer search', () => {
  it('findCRLF finds the first CRLF, honours start, and returns -1 when absent', () => {
    const buf = new NetBuffer();
    expect(buf.findCRLF()).toBe(-1);
    buf.append('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(buf.findCRLF()).toBe(14);
    expect(buf.findCRLF(15)).toBe(23);
    expect(buf.findCRLF(16)).toBe(23);
    expect(buf.findCRLF(24)).toBe(25);
    expect(buf.findCRLF(26)).toBe(-1);
    expect(buf.findCRLF(1000)).toBe(-1);
  });

  it('findCRLF is relative to the readable start after retrieve', () => {
    const buf = new NetBuffer();
    buf.append('ab\r\ncd\r\n');
    buf.retrieve(4);
    expect(buf.findCRLF()).toBe(2);
  });

  it('findCRLF ignores a lone CR at the end, then finds it once LF arrives', () => {
    const buf = new NetBuffer();
    buf.append('abc\r');
    expect(buf.findCRLF()).toBe(-1);
    buf.append('\n');
    expect(buf.findCRLF()).toBe(3);
  });

  it('findCRLF does not see stale bytes beyond the readable region', () => {
    const buf = new NetBuffer(16);
    buf.append('abc\nxyz\r\n');
    buf.retrieveAll();
    // Storage now reads "xy\r" + stale "\nxyz\r\n" after the writer index.
    buf.append('xy\r');
    expect(buf.findCRLF()).toBe(-1);
    expect(buf.findEOL()).toBe(-1);
    expect(buf.findByte(0x7a)).toBe(-1);
  });

  it('findEOL finds LF, with a start offset', () => {
    const buf = new NetBuffer();
    buf.append('one\ntwo\n');
    expect(buf.findEOL()).toBe(3);
    expect(buf.findEOL(3)).toBe(3);
    expect(buf.findEOL(4)).toBe(7);
    expect(buf.findEOL(8)).toBe(-1);
    buf.retrieveAll();
    expect(buf.findEOL()).toBe(-1);
  });

  it('findByte finds any byte, including 0x00 and 0xff', () => {
    const buf = new NetBuffer();
    buf.append(bytes(1, 0, 2, 0xff, 0));
    expect(buf.findByte(0)).toBe(1);
    expect(buf.findByte(0, 2)).toBe(4);
    expect(buf.findByte(0xff)).toBe(3);
    expect(buf.findByte(7)).toBe(-1);
    expect(buf.findByte(1, 1)).toBe(-1);
    expect(buf.findByte(0, 5)).toBe(-1);
  });
});

describe('Buffer space management', () => {
  it('ensureWritable moves readable data to the front instead of growing (makeSpace)', () => {
    const buf = new NetBuffer(16);
    const capacity = buf.capacity();
    buf.append('0123456789abcdef'); // fills the writable area
    buf.retrieve(10); // 10 bytes free at the front, none at the back
    expect(buf.writableBytes()).toBe(0);
    expect(buf.prependableBytes()).toBe(18);
    buf.ensureWritable(10);
    expect(buf.capacity()).toBe(capacity);
    expect(buf.prependableBytes()).toBe(8);
    expect(buf.writableBytes()).toBe(10);
    expect(text(buf)).toBe('abcdef');
    buf.append('ghijklmnop');
    expect(buf.capacity()).toBe(capacity);
    expect(text(buf)).toBe('abcdefghijklmnop');
  });

  it('append compacts rather than grows when the freed front space suffices', () => {
    const buf = new NetBuffer(32);
    const capacity = buf.capacity();
    for (let i = 0; i < 100; i++) {
      buf.append('0123456789');
      buf.retrieve(10);
      buf.append('abcdefghijklmnopqrst');
      buf.retrieve(20);
    }
    expect(buf.capacity()).toBe(capacity);
  });

  it('ensureWritable is a no-op when there is room already', () => {
    const buf = new NetBuffer(16);
    buf.append('abc');
    buf.retrieve(1);
    buf.ensureWritable(13);
    expect(buf.prependableBytes()).toBe(9);
    expect(buf.capacity()).toBe(24);
  });

  it('grows when compaction is not enough, keeping content and the prepend area', () => {
    const buf = new NetBuffer(16);
    buf.append('0123456789');
    buf.retrieve(2);
    buf.ensureWritable(20);
    expect(buf.capacity()).toBeGreaterThanOrEqual(8 + 8 + 20);
    expect(buf.writableBytes()).toBeGreaterThanOrEqual(20);
    expect(buf.prependableBytes()).toBe(8);
    expect(text(buf)).toBe('23456789');
  });

  it('grows at least geometrically for many small appends', () => {
    const buf = new NetBuffer(16);
    const capacities = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      buf.append('x');
      capacities.add(buf.capacity());
    }
    expect(buf.readableBytes()).toBe(10_000);
    // Doubling from 24 bytes needs ~10 distinct sizes to reach 10 KB, not thousands.
    expect(capacities.size).toBeLessThan(16);
  });

  it('grows to fit one huge append', () => {
    const buf = new NetBuffer(16);
    const big = globalThis.Buffer.alloc(1 << 20, 7);
    buf.append(big);
    expect(buf.readableBytes()).toBe(1 << 20);
    expect(buf.peek().equals(big)).toBe(true);
  });

  it('shrink releases memory beyond the reserve and keeps content', () => {
    const buf = new NetBuffer(16);
    buf.append(globalThis.Buffer.alloc(100_000, 1));
    buf.retrieve(99_990);
    buf.shrink(32);
    expect(buf.capacity()).toBe(8 + 10 + 32);
    expect(buf.readableBytes()).toBe(10);
    expect(buf.writableBytes()).toBe(32);
    expect(buf.prependableBytes()).toBe(8);
    buf.shrink();
    expect(buf.capacity()).toBe(18);
    expect(buf.peek().equals(globalThis.Buffer.alloc(10, 1))).toBe(true);
  });

  it('beginWrite/hasWritten commit bytes written directly into the writable region', () => {
    const buf = new NetBuffer(16);
    buf.append('ab');
    const region = buf.beginWrite();
    expect(region.length).toBe(buf.writableBytes());
    region.write('cd', 0, 'latin1');
    buf.hasWritten(2);
    expect(text(buf)).toBe('abcd');
    const big = buf.beginWrite(100);
    expect(big.length).toBeGreaterThanOrEqual(100);
    expect(text(buf)).toBe('abcd');
    big.fill(0x65, 0, 100);
    buf.hasWritten(100);
    expect(buf.readableBytes()).toBe(104);
    expect(() => buf.hasWritten(buf.writableBytes() + 1)).toThrow(RangeError);
    expect(buf.readableBytes()).toBe(104);
  });

  it('detachStorage leaves the buffer empty and earlier views intact', () => {
    const buf = new NetBuffer(16);
    buf.append('in flight');
    const view = buf.peek();
    const capacity = buf.capacity();
    buf.detachStorage();
    expect(buf.readableBytes()).toBe(0);
    expect(buf.prependableBytes()).toBe(8);
    expect(buf.capacity()).toBe(capacity);
    buf.append('overwrite!');
    expect(view.toString()).toBe('in flight');
    expect(text(buf)).toBe('overwrite!');
  });
});

// ---- model-based property test ----

type Op =
  | { kind: 'append'; data: Uint8Array }
  | { kind: 'appendString'; data: string }
  | { kind: 'appendRange'; data: Uint8Array; start: number; end: number }
  | { kind: 'retrieve'; len: number }
  | { kind: 'retrieveAsBytes'; len: number }
  | { kind: 'retrieveAsString'; len: number }
  | { kind: 'retrieveAll' }
  | { kind: 'prepend'; data: Uint8Array }
  | { kind: 'appendInt'; width: 1 | 2 | 4 | 8; value: bigint }
  | { kind: 'readInt'; width: 1 | 2 | 4 | 8 }
  | { kind: 'ensureWritable'; len: number }
  | { kind: 'shrink'; reserve: number }
  | { kind: 'beginWrite'; data: Uint8Array }
  | { kind: 'unwrite'; len: number }
  | { kind: 'detach' };

const width = fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), data: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({
    kind: fc.constant('appendString' as const),
    data: fc.string({ maxLength: 40, unit: 'grapheme' }),
  }),
  fc.uint8Array({ maxLength: 200 }).chain((data) =>
    fc.tuple(fc.nat(data.length), fc.nat(data.length)).map(([a, b]) => ({
      kind: 'appendRange' as const,
      data,
      start: Math.min(a, b),
      end: Math.max(a, b),
    })),
  ),
  fc.record({ kind: fc.constant('retrieve' as const), len: fc.nat(400) }),
  fc.record({ kind: fc.constant('retrieveAsBytes' as const), len: fc.nat(400) }),
  fc.record({ kind: fc.constant('retrieveAsString' as const), len: fc.nat(50) }),
  fc.constant({ kind: 'retrieveAll' as const }),
  fc.record({ kind: fc.constant('prepend' as const), data: fc.uint8Array({ maxLength: 12 }) }),
  fc.record({
    kind: fc.constant('appendInt' as const),
    width,
    value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  }),
  fc.record({ kind: fc.constant('readInt' as const), width }),
  fc.record({ kind: fc.constant('ensureWritable' as const), len: fc.nat(2000) }),
  fc.record({ kind: fc.constant('shrink' as const), reserve: fc.nat(64) }),
  fc.record({ kind: fc.constant('beginWrite' as const), data: fc.uint8Array({ maxLength: 100 }) }),
  fc.record({ kind: fc.constant('unwrite' as const), len: fc.nat(50) }),
  fc.constant({ kind: 'detach' as const }),
);

/** Truncates `value` to a signed integer of `width` bytes. */
function signed(value: bigint, w: number): bigint {
  return BigInt.asIntN(w * 8, value);
}

function bigEndian(value: bigint, w: number): Uint8Array {
  const out = new Uint8Array(w);
  let v = BigInt.asUintN(w * 8, value);
  for (let i = w - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

describe('Buffer vs a Uint8Array model (property)', () => {
  it('random operation sequences leave the same readable bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 64 }), fc.array(opArb, { maxLength: 60 }), (initial, ops) => {
        const buf = new NetBuffer(initial);
        let model: Uint8Array = new Uint8Array(0);
        for (const op of ops) {
          switch (op.kind) {
            case 'append':
              buf.append(op.data);
              model = concat(model, op.data);
              break;
            case 'appendString':
              buf.append(op.data);
              model = concat(model, new TextEncoder().encode(op.data));
              break;
            case 'appendRange':
              buf.appendRange(op.data, op.start, op.end);
              model = concat(model, op.data.subarray(op.start, op.end));
              break;
            case 'retrieve':
              buf.retrieve(op.len);
              model = model.slice(Math.min(op.len, model.length));
              break;
            case 'retrieveAsBytes':
              if (op.len > model.length) {
                expect(() => buf.retrieveAsBytes(op.len)).toThrow(RangeError);
              } else {
                expect([...buf.retrieveAsBytes(op.len)]).toEqual([...model.subarray(0, op.len)]);
                model = model.slice(op.len);
              }
              break;
            case 'retrieveAsString':
              if (op.len > model.length) {
                expect(() => buf.retrieveAsString(op.len, 'latin1')).toThrow(RangeError);
              } else {
                expect(buf.retrieveAsString(op.len, 'latin1')).toBe(
                  globalThis.Buffer.from(model.subarray(0, op.len)).toString('latin1'),
                );
                model = model.slice(op.len);
              }
              break;
            case 'retrieveAll':
              buf.retrieveAll();
              model = new Uint8Array(0);
              break;
            case 'prepend':
              if (op.data.length > buf.prependableBytes()) {
                expect(() => buf.prepend(op.data)).toThrow(RangeError);
              } else {
                buf.prepend(op.data);
                model = concat(op.data, model);
              }
              break;
            case 'appendInt': {
              const v = signed(op.value, op.width);
              if (op.width === 1) buf.appendInt8(Number(v));
              else if (op.width === 2) buf.appendInt16(Number(v));
              else if (op.width === 4) buf.appendInt32(Number(v));
              else buf.appendInt64(v);
              model = concat(model, bigEndian(v, op.width));
              break;
            }
            case 'readInt': {
              const read = (): bigint => {
                if (op.width === 1) return BigInt(buf.readInt8());
                if (op.width === 2) return BigInt(buf.readInt16());
                if (op.width === 4) return BigInt(buf.readInt32());
                return buf.readInt64();
              };
              if (model.length < op.width) {
                expect(read).toThrow(RangeError);
              } else {
                let expected = 0n;
                for (let i = 0; i < op.width; i++) expected = (expected << 8n) | BigInt(model[i]!);
                expect(read()).toBe(signed(expected, op.width));
                model = model.slice(op.width);
              }
              break;
            }
            case 'ensureWritable':
              buf.ensureWritable(op.len);
              expect(buf.writableBytes()).toBeGreaterThanOrEqual(op.len);
              break;
            case 'shrink':
              buf.shrink(op.reserve);
              expect(buf.writableBytes()).toBe(op.reserve);
              break;
            case 'beginWrite': {
              const region = buf.beginWrite(op.data.length);
              region.set(op.data, 0);
              buf.hasWritten(op.data.length);
              model = concat(model, op.data);
              break;
            }
            case 'unwrite':
              if (op.len > model.length) {
                expect(() => buf.unwrite(op.len)).toThrow(RangeError);
              } else {
                buf.unwrite(op.len);
                model = model.slice(0, model.length - op.len);
              }
              break;
            case 'detach':
              buf.detachStorage();
              model = new Uint8Array(0);
              break;
          }
          expect(buf.readableBytes()).toBe(model.length);
          expect([...buf.peek()]).toEqual([...model]);
          expect(buf.prependableBytes() + buf.readableBytes() + buf.writableBytes()).toBe(buf.capacity());
          expect(buf.prependableBytes()).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 300 },
    );
  });
});
