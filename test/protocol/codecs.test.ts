import { describe, expect, it } from 'vitest';
import {
  codecFor,
  decodeJsonBytes,
  detectCodec,
  encodeJsonBytes,
  FRAME_HEADER_BYTES,
  frame,
  jsonCodec,
  legacyCodec,
  type PayloadCodec,
  ProtocolError,
  payloadCodecFor,
  payloadKind,
  protobufCodec,
  readUint32BE,
} from '../../src/app/protocol/index.js';
import { concat, hex, SAMPLES } from './fixtures.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function errorCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return (e as ProtocolError).code;
  }
  return undefined;
}

describe('codec detection', () => {
  it('picks legacy only for a first byte of "{"', () => {
    expect(detectCodec(0x7b)).toBe('legacy');
    for (const b of [0x00, 0x01, 0x20, 0x5b, 0x7a, 0x7c, 0xff]) expect(detectCodec(b)).toBe('framed');
  });

  it('tells framed JSON from protobuf by the payload first byte', () => {
    expect(payloadKind(enc.encode('{"msgid":18}'))).toBe('json');
    expect(payloadKind(protobufCodec.encodePayload({ msgid: 18 }))).toBe('protobuf');
    expect(payloadKind(new Uint8Array(0))).toBe('protobuf');
    expect(payloadKind(enc.encode(' {}'))).toBe('protobuf');
    expect(payloadCodecFor(enc.encode('{}'))).toBe(jsonCodec);
    expect(payloadCodecFor(Uint8Array.of(0, 0))).toBe(protobufCodec);
  });

  it('returns each codec by kind', () => {
    expect(codecFor('legacy')).toBe(legacyCodec);
    expect(codecFor('json')).toBe(jsonCodec);
    expect(codecFor('protobuf')).toBe(protobufCodec);
    expect([legacyCodec.kind, jsonCodec.kind, protobufCodec.kind]).toEqual(['legacy', 'json', 'protobuf']);
  });
});

describe('framing', () => {
  it('frame() prepends the 4-byte big-endian payload length', () => {
    const payload = new Uint8Array(300).fill(7);
    const f = frame(payload);
    expect([...f.subarray(0, 4)]).toEqual([0, 0, 1, 44]);
    expect(hex(f.subarray(4))).toBe(hex(payload));
    expect([...frame(new Uint8Array(0))]).toEqual([0, 0, 0, 0]);
  });
});

describe('JSON codecs', () => {
  it('framed JSON: encode = 4-byte length + the JSON payload; decode reverses it', () => {
    for (const s of SAMPLES) {
      const wire = jsonCodec.encode(s);
      expect(readUint32BE(wire, 0)).toBe(wire.length - FRAME_HEADER_BYTES);
      const payload = wire.subarray(FRAME_HEADER_BYTES);
      expect(dec.decode(payload)).toBe(JSON.stringify(s));
      expect(hex(jsonCodec.encodePayload(s))).toBe(hex(payload));
      expect(hex(frame(jsonCodec.encodePayload(s)))).toBe(hex(wire));
      expect(jsonCodec.decodePayload(payload)).toEqual(s);
    }
  });

  it('legacy: encode = JSON text + exactly one NUL, even when a string holds U+0000', () => {
    const msg = { msgid: 6, id: 1, name: 'n', toid: 2, msg: 'a\u0000b 好', time: 't' };
    const wire = legacyCodec.encode(msg);
    expect(wire[wire.length - 1]).toBe(0);
    expect(wire.indexOf(0)).toBe(wire.length - 1);
    expect(JSON.parse(dec.decode(wire.subarray(0, -1)))).toEqual(msg);
    const d = legacyCodec.createDecoder();
    d.push(concat(wire, wire));
    expect([d.next(), d.next(), d.next()]).toEqual([msg, msg, undefined]);
  });

  it('rejects invalid UTF-8 and invalid JSON with typed errors', () => {
    expect(errorCode(() => jsonCodec.decodePayload(Uint8Array.of(0x7b, 0xff, 0x7d)))).toBe('BAD_UTF8');
    expect(errorCode(() => jsonCodec.decodePayload(Uint8Array.of(0x7b, 0xed, 0xa0, 0x80, 0x7d)))).toBe(
      'BAD_UTF8',
    );
    expect(errorCode(() => jsonCodec.decodePayload(enc.encode('{"msgid":')))).toBe('BAD_JSON');
    expect(errorCode(() => jsonCodec.decodePayload(enc.encode('{} x')))).toBe('BAD_JSON');
    expect(errorCode(() => decodeJsonBytes(new Uint8Array(0)))).toBe('BAD_JSON');
  });

  it('refuses to encode what JSON cannot carry', () => {
    const cyclic: Record<string, unknown> = { msgid: 20 };
    cyclic.self = cyclic;
    for (const codec of [jsonCodec, legacyCodec] as const) {
      expect(errorCode(() => codec.encode(cyclic))).toBe('UNENCODABLE');
      expect(errorCode(() => codec.encode({ msgid: 19, t: 1n }))).toBe('UNENCODABLE');
    }
    expect(errorCode(() => encodeJsonBytes({ toJSON: () => undefined }, 'payload'))).toBe('UNENCODABLE');
  });

  it('every framed codec decodes what it encodes (same object shape for JSON and protobuf)', () => {
    const codecs: PayloadCodec[] = [jsonCodec, protobufCodec];
    for (const s of SAMPLES) {
      const [viaJson, viaProto] = codecs.map((c) =>
        c.decodePayload(c.encode(s).subarray(FRAME_HEADER_BYTES)),
      );
      expect(viaJson).toEqual(s);
      expect(viaProto).toEqual(viaJson);
    }
  });
});
