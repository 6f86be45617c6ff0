import { describe, expect, it } from 'vitest';
import {
  LegacyFrameSplitter,
  LegacyStreamDecoder,
  legacyCodec,
  ProtocolError,
} from '../../src/app/protocol/index.js';
import { CLASSIC_CLIENT_REQUESTS, concat } from './fixtures.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The classic client's framing: JSON text then one NUL. */
function wire(objs: readonly unknown[]): Uint8Array {
  return concat(...objs.map((o) => enc.encode(`${JSON.stringify(o)}\0`)));
}

function drain(s: LegacyFrameSplitter): string[] {
  const out: string[] = [];
  for (let m = s.next(); m !== undefined; m = s.next()) out.push(dec.decode(m));
  return out;
}

function splitAll(chunks: readonly Uint8Array[], max?: number): string[] {
  const s = new LegacyFrameSplitter(max);
  const out: string[] = [];
  for (const c of chunks) {
    s.push(c);
    out.push(...drain(s));
  }
  return out;
}

function expectProtocolError(f: () => unknown, code: string): ProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe(code);
    expect((e as ProtocolError).errno).toBe(3);
    return e as ProtocolError;
  }
  throw new Error(`expected ProtocolError ${code}`);
}

const MESSAGES = CLASSIC_CLIENT_REQUESTS.map((o) => JSON.stringify(o));

describe('LegacyFrameSplitter', () => {
  it('returns several messages from one chunk, in order, without the NUL', () => {
    expect(splitAll([wire(CLASSIC_CLIENT_REQUESTS)])).toEqual(MESSAGES);
  });

  it('returns a message split at every possible position exactly once', () => {
    const bytes = wire([{ msgid: 6, toid: 2, msg: 'héllo 😀 world', time: '2024-01-01 00:00:00' }]);
    const expected = [dec.decode(bytes.subarray(0, bytes.length - 1))];
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(splitAll([bytes.subarray(0, cut), bytes.subarray(cut)]), `cut at ${cut}`).toEqual(expected);
    }
  });

  it('handles a three-message stream cut at every pair of positions', () => {
    const objs = CLASSIC_CLIENT_REQUESTS.slice(0, 3);
    const bytes = wire(objs);
    const expected = objs.map((o) => JSON.stringify(o));
    for (let a = 0; a <= bytes.length; a += 3) {
      for (let b = a; b <= bytes.length; b += 5) {
        const chunks = [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)];
        expect(splitAll(chunks)).toEqual(expected);
      }
    }
  });

  it('works byte at a time', () => {
    const bytes = wire(CLASSIC_CLIENT_REQUESTS);
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
    expect(splitAll(chunks)).toEqual(MESSAGES);
  });

  it('returns a message that lies inside one chunk as a view of that chunk (no copy)', () => {
    const bytes = wire([{ a: 1 }, { b: 2 }]);
    const s = new LegacyFrameSplitter();
    s.push(bytes);
    const first = s.next()!;
    expect(first.buffer).toBe(bytes.buffer);
    expect(dec.decode(first)).toBe('{"a":1}');
    expect(dec.decode(s.next()!)).toBe('{"b":2}');
    expect(s.next()).toBeUndefined();
    expect(s.bufferedBytes).toBe(0);
  });

  it('returns empty messages for consecutive NULs (the decoder then reports BAD_JSON)', () => {
    expect(splitAll([Uint8Array.of(0, 0)])).toEqual(['', '']);
  });

  it('keeps a partial message buffered and reports its size', () => {
    const s = new LegacyFrameSplitter();
    s.push(enc.encode('{"msgid":'));
    expect(s.next()).toBeUndefined();
    expect(s.bufferedBytes).toBe(9);
    s.push(enc.encode('18}\0{"x"'));
    expect(dec.decode(s.next()!)).toBe('{"msgid":18}');
    expect(s.next()).toBeUndefined();
    expect(s.bufferedBytes).toBe(4);
  });

  it('stays correct when the caller pushes again without draining', () => {
    const bytes = wire(CLASSIC_CLIENT_REQUESTS);
    const s = new LegacyFrameSplitter();
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 7) {
      s.push(bytes.subarray(i, i + 7));
      if (i % 3 === 0) {
        const m = s.next(); // take at most one, leave the rest pending
        if (m !== undefined) out.push(dec.decode(m));
      }
    }
    out.push(...drain(s));
    expect(out).toEqual(MESSAGES);
  });

  it('examines every byte at most once, however the stream is chunked (O(n) total)', () => {
    const scanned: [number, number][] = [];
    // Records the range each indexOf call looks at: [from, position of the hit or end).
    class Probe extends Uint8Array {
      override indexOf(v: number, from = 0): number {
        const r = super.indexOf(v, from);
        scanned.push([this.byteOffset + from, this.byteOffset + (r === -1 ? this.length : r + 1)]);
        return r;
      }
    }
    const bytes = wire(CLASSIC_CLIENT_REQUESTS);
    const whole = new Probe(bytes.length);
    whole.set(bytes);
    const s = new LegacyFrameSplitter();
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 5) {
      s.push(new Probe(whole.buffer, i, Math.min(5, bytes.length - i)));
      out.push(...drain(s));
    }
    expect(out).toEqual(MESSAGES);
    const total = scanned.reduce((n, [a, b]) => n + (b - a), 0);
    expect(total).toBe(bytes.length);
    scanned.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < scanned.length; i++)
      expect(scanned[i]![0]).toBeGreaterThanOrEqual(scanned[i - 1]![1]);
  });

  // Messages longer than the partial buffer's first capacity (256 bytes): the growth path, which
  // must carry the bytes already held into the bigger buffer.
  /** A JSON request whose text is exactly `length` bytes, with distinct bytes throughout. */
  function longMessage(length: number, tag: string): string {
    const head = `{"msgid":6,"tag":"${tag}","msg":"`;
    let body = '';
    for (let i = 0; body.length < length - head.length - 2; i++) body += String.fromCharCode(0x61 + (i % 26));
    return `${head}${body}"}`;
  }

  it('assembles a message several times the initial buffer, arriving in small chunks', () => {
    const m = longMessage(3000, 'a');
    const bytes = enc.encode(`${m}\0`);
    for (const size of [1, 100, 255, 256, 257, 1024]) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
      expect(splitAll(chunks), `chunks of ${size}`).toEqual([m]);
    }
  });

  it('grows while keeping earlier bytes when the first part already fills the initial buffer', () => {
    const m = longMessage(700, 'b');
    // 300 bytes first (more than 256 at once), then 5 bytes (grows again), then the rest.
    const bytes = enc.encode(`${m}\0`);
    expect(splitAll([bytes.slice(0, 300), bytes.slice(300, 305), bytes.slice(305)])).toEqual([m]);
  });

  it('reuses a grown buffer for the next long message without leaking the previous one', () => {
    const first = longMessage(2000, 'c');
    const second = longMessage(600, 'd');
    const third = longMessage(5000, 'e');
    const bytes = enc.encode(`${first}\0${second}\0{"msgid":18}\0${third}\0`);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 97) chunks.push(bytes.slice(i, i + 97));
    expect(splitAll(chunks)).toEqual([first, second, '{"msgid":18}', third]);
  });

  it('returns a long split message intact after its buffer outgrew what is kept (64 KiB)', () => {
    const big = longMessage(70 * 1024, 'f');
    const small = longMessage(300, 'g');
    const bytes = enc.encode(`${big}\0${small}\0`);
    const s = new LegacyFrameSplitter();
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 4096) {
      s.push(bytes.slice(i, i + 4096));
      out.push(...drain(s));
    }
    expect(out).toEqual([big, small]);
    expect(s.bufferedBytes).toBe(0);
  });

  it('grows no further than the maximum message size when doubling would pass it', () => {
    const m = longMessage(1000, 'h');
    const bytes = enc.encode(`${m}\0`);
    // 600 then 400 bytes: doubling 512 would give 1024 > 1000, capped at the maximum, still enough.
    expect(splitAll([bytes.slice(0, 600), bytes.slice(600)], 1000)).toEqual([m]);
    expect(splitAll([bytes.slice(0, 10), bytes.slice(10, 999), bytes.slice(999)], 1000)).toEqual([m]);
  });

  it('counts the unread rest of a pushed chunk as buffered until next() takes it', () => {
    const s = new LegacyFrameSplitter();
    s.push(enc.encode('{"a":1}\0{"b":22}\0{"c"'));
    expect(s.bufferedBytes).toBe(21);
    expect(dec.decode(s.next()!)).toBe('{"a":1}');
    expect(s.bufferedBytes).toBe(13); // '{"b":22}\0{"c"' still in the chunk
    expect(dec.decode(s.next()!)).toBe('{"b":22}');
    expect(s.bufferedBytes).toBe(4);
    expect(s.next()).toBeUndefined();
    expect(s.bufferedBytes).toBe(4); // now held as a partial message
    s.push(enc.encode(':3}\0{'));
    expect(s.bufferedBytes).toBe(9);
    expect(dec.decode(s.next()!)).toBe('{"c":3}');
    expect(s.bufferedBytes).toBe(1);
  });

  it('checks each message of a chunk against the maximum by its own length', () => {
    const m = 'x'.repeat(90);
    // Three messages of 90 bytes in one chunk, maximum 100: none is too large.
    expect(splitAll([enc.encode(`${m}\0${m}\0${m}\0`)], 100)).toEqual([m, m, m]);
  });

  it('accepts a message of exactly the maximum size', () => {
    const body = 'x'.repeat(100);
    expect(splitAll([enc.encode(`${body}\0`)], 100)).toEqual([body]);
    expect(splitAll([enc.encode(body.slice(0, 40)), enc.encode(`${body.slice(40)}\0`)], 100)).toEqual([body]);
  });

  it('fails with FRAME_TOO_LARGE once a message exceeds the maximum, before any NUL arrives', () => {
    const s = new LegacyFrameSplitter(100);
    s.push(new Uint8Array(60).fill(0x41));
    expect(s.next()).toBeUndefined();
    s.push(new Uint8Array(41).fill(0x41));
    const e = expectProtocolError(() => s.next(), 'FRAME_TOO_LARGE');
    expect(e.message).toBe('legacy message longer than 100 bytes');
    // Sticky: the stream cannot be resynchronised.
    expect(() => s.next()).toThrow(e);
    expect(() => s.push(Uint8Array.of(0))).toThrow(e);
    expect(s.bufferedBytes).toBe(0);
  });

  it('fails with FRAME_TOO_LARGE for an oversized message inside one chunk', () => {
    const s = new LegacyFrameSplitter(100);
    s.push(concat(new Uint8Array(101).fill(0x41), Uint8Array.of(0)));
    expectProtocolError(() => s.next(), 'FRAME_TOO_LARGE');
  });

  it('enforces the 1 MiB default', () => {
    const s = new LegacyFrameSplitter();
    expect(s.maxMessageBytes).toBe(1024 * 1024);
    const block = new Uint8Array(256 * 1024).fill(0x20);
    for (let i = 0; i < 4; i++) {
      s.push(block);
      expect(s.next()).toBeUndefined();
    }
    s.push(Uint8Array.of(0x20));
    expectProtocolError(() => s.next(), 'FRAME_TOO_LARGE');
  });
});

describe('LegacyStreamDecoder', () => {
  it('decodes the classic client stream into objects', () => {
    const d = legacyCodec.createDecoder();
    d.push(wire(CLASSIC_CLIENT_REQUESTS));
    const out: unknown[] = [];
    for (let v = d.next(); v !== undefined; v = d.next()) out.push(v);
    expect(out).toEqual(CLASSIC_CLIENT_REQUESTS);
  });

  it('reports garbage as BAD_JSON and stays failed', () => {
    const d = new LegacyStreamDecoder();
    d.push(enc.encode('{"msgid":1}\0{not json}\0{"msgid":2}\0'));
    expect(d.next()).toEqual({ msgid: 1 });
    const e = expectProtocolError(() => d.next(), 'BAD_JSON');
    expect(() => d.next()).toThrow(e);
  });

  it('reports invalid UTF-8 as BAD_UTF8', () => {
    const d = new LegacyStreamDecoder();
    d.push(concat(enc.encode('{"msg":"'), Uint8Array.of(0xc3, 0x28), enc.encode('"}\0')));
    expectProtocolError(() => d.next(), 'BAD_UTF8');
  });

  it('honours a custom maximum', () => {
    const d = legacyCodec.createDecoder(10);
    d.push(enc.encode('{"a":"0123456789"}\0'));
    expectProtocolError(() => d.next(), 'FRAME_TOO_LARGE');
  });
});
