import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import {
  adler32,
  ChatProtobufCodec,
  codecFor,
  decodeMuduoPayload,
  encodeMuduoPayload,
  FRAME_HEADER_BYTES,
  frame,
  MUDUO_MIN_PAYLOAD,
  PROTO_TYPE_BY_MSGID,
  ProtobufCodec,
  ProtocolError,
  protobufCodec,
  readUint32BE,
  writeUint32BE,
} from '../../src/app/protocol/index.js';
import { concat, fromHex, hex, SAMPLES } from './fixtures.js';

const VECTOR_BODY = '080112094368656e205368756f1a0852756e6e696e673f';
const VECTOR_FRAME =
  '0000002b 0000000c 6d7564756f2e517565727900 080112094368656e205368756f1a0852756e6e696e673f c9370b1e';

function expectProtocolError(f: () => unknown, code?: string): ProtocolError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    if (code !== undefined) expect((e as ProtocolError).code).toBe(code);
    return e as ProtocolError;
  }
  throw new Error(`expected ProtocolError ${code ?? ''}`);
}

/** Rewrites the trailing checksum so a deliberately broken payload gets past the checksum check. */
function resum(payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(payload);
  writeUint32BE(p, p.length - 4, adler32(p, 0, p.length - 4));
  return p;
}

function naiveAdler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (const x of data) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

describe('adler32', () => {
  it('matches known values', () => {
    expect(adler32(new Uint8Array(0))).toBe(1);
    expect(adler32(new TextEncoder().encode('Wikipedia'))).toBe(0x11e60398);
    expect(adler32(new TextEncoder().encode('abc'))).toBe(0x024d0127);
  });

  it('matches a per-byte reference on long inputs (past the 5552-byte reduction block)', () => {
    for (const n of [5551, 5552, 5553, 20000, 100_003]) {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = (i * 131 + (i >> 7)) & 0xff;
      expect(adler32(data), `n=${n}`).toBe(naiveAdler32(data));
      data.fill(0xff); // worst case for the unreduced sums
      expect(adler32(data), `n=${n} all 0xff`).toBe(naiveAdler32(data));
    }
  });

  it('covers a sub-range and continues from a seed', () => {
    const data = new TextEncoder().encode('hello, adler world');
    expect(adler32(data, 3, 10)).toBe(naiveAdler32(data.subarray(3, 10)));
    expect(adler32(data, 7, data.length, adler32(data, 0, 7))).toBe(adler32(data));
  });
});

describe('muduo ProtobufCodec layout', () => {
  it('produces the docs/PROTOCOL.md test vector', () => {
    expect(hex(encodeMuduoPayload('muduo.Query', fromHex(VECTOR_BODY), true))).toBe(
      VECTOR_FRAME.replace(/ /g, ''),
    );
    expect(hex(frame(encodeMuduoPayload('muduo.Query', fromHex(VECTOR_BODY))))).toBe(
      VECTOR_FRAME.replace(/ /g, ''),
    );
  });

  it('decodes the test vector', () => {
    const payload = fromHex(VECTOR_FRAME).subarray(FRAME_HEADER_BYTES);
    const { typeName, body } = decodeMuduoPayload(payload);
    expect(typeName).toBe('muduo.Query');
    expect(hex(body)).toBe(VECTOR_BODY);
  });

  it('decodes the test vector with protobufjs through the generic codec', () => {
    const root = protobuf.parse(
      'syntax = "proto2"; package muduo; message Query { required int64 id = 1; required string questioner = 2; repeated string question = 3; }',
    ).root;
    const codec = new ProtobufCodec(root);
    const { typeName, type, message } = codec.decode(fromHex(VECTOR_FRAME).subarray(4));
    expect(typeName).toBe('muduo.Query');
    expect(type.toObject(message, { longs: Number })).toEqual({
      id: 1,
      questioner: 'Chen Shuo',
      question: ['Running?'],
    });
    const again = codec.encode(
      'muduo.Query',
      { id: 1, questioner: 'Chen Shuo', question: ['Running?'] },
      true,
    );
    expect(hex(again)).toBe(VECTOR_FRAME.replace(/ /g, ''));
    expect([...codec.typeNames()]).toEqual(['muduo.Query']);
  });

  it('rejects a checksum mismatch (body or checksum byte flipped)', () => {
    const good = encodeMuduoPayload('muduo.Query', fromHex(VECTOR_BODY));
    for (const at of [0, 5, 20, good.length - 1]) {
      const bad = new Uint8Array(good);
      bad[at]! ^= 0x01;
      expectProtocolError(() => decodeMuduoPayload(bad), 'BAD_CHECKSUM');
    }
  });

  it('rejects payloads shorter than the minimum as TRUNCATED and every other prefix as a ProtocolError', () => {
    const good = encodeMuduoPayload('muduo.Query', fromHex(VECTOR_BODY));
    for (let n = 0; n < good.length; n++) {
      const e = expectProtocolError(() => decodeMuduoPayload(good.subarray(0, n)));
      if (n < MUDUO_MIN_PAYLOAD) expect(e.code).toBe('TRUNCATED');
      else expect(['BAD_CHECKSUM', 'BAD_NAME_LEN']).toContain(e.code);
      expect(e.errno).toBe(3);
    }
  });

  it('rejects nameLen out of range even with a valid checksum', () => {
    const good = encodeMuduoPayload('muduo.Query', fromHex(VECTOR_BODY));
    for (const nameLen of [0, 1, good.length - 7, 0x7fffffff, 0x80000000, 0xffffffff]) {
      const p = new Uint8Array(good);
      writeUint32BE(p, 0, nameLen);
      expectProtocolError(() => decodeMuduoPayload(resum(p)), 'BAD_NAME_LEN');
    }
    // The largest legal nameLen: the name runs up to the checksum, the body is empty.
    const max = new Uint8Array(good);
    writeUint32BE(max, 0, good.length - 8);
    max[good.length - 5] = 0;
    expect(decodeMuduoPayload(resum(max)).body.length).toBe(0);
  });

  it('rejects a type name that is not NUL-terminated', () => {
    const p = new Uint8Array(encodeMuduoPayload('muduo.Query', fromHex(VECTOR_BODY)));
    p[4 + 11] = 0x21;
    expectProtocolError(() => decodeMuduoPayload(resum(p)), 'BAD_NAME_LEN');
  });

  it('refuses to encode unusable type names', () => {
    expectProtocolError(() => encodeMuduoPayload('', new Uint8Array()), 'UNENCODABLE');
    expectProtocolError(() => encodeMuduoPayload('chat.Ünïcode', new Uint8Array()), 'UNENCODABLE');
    expectProtocolError(() => encodeMuduoPayload('a\0b', new Uint8Array()), 'UNENCODABLE');
  });
});

describe('chat protobuf codec', () => {
  it('is the protobuf codec of the registry', () => {
    expect(codecFor('protobuf')).toBe(protobufCodec);
    expect(protobufCodec.kind).toBe('protobuf');
    expect(protobufCodec).toBeInstanceOf(ChatProtobufCodec);
  });

  it('covers every msgid in the samples', () => {
    expect(new Set(SAMPLES.map((s) => s.msgid))).toEqual(
      new Set(Object.keys(PROTO_TYPE_BY_MSGID).map(Number)),
    );
  });

  for (const sample of SAMPLES) {
    it(`round-trips msgid ${String(sample.msgid)} ${JSON.stringify(sample).slice(0, 60)}`, () => {
      const wire = protobufCodec.encode(sample);
      expect(readUint32BE(wire, 0)).toBe(wire.length - FRAME_HEADER_BYTES);
      const payload = wire.subarray(FRAME_HEADER_BYTES);
      expect(hex(protobufCodec.encodePayload(sample))).toBe(hex(payload));
      expect(payload[0]).not.toBe(0x7b); // never mistaken for framed JSON
      const { typeName } = decodeMuduoPayload(payload);
      expect(typeName).toBe(PROTO_TYPE_BY_MSGID[sample.msgid as keyof typeof PROTO_TYPE_BY_MSGID]);
      expect(protobufCodec.decodePayload(payload)).toEqual(sample);
    });
  }

  it('sends a numeric reqid as its decimal string (protobuf reqid is a string)', () => {
    const out = protobufCodec.decodePayload(protobufCodec.encodePayload({ msgid: 16, errno: 0, reqid: 42 }));
    expect(out).toEqual({ msgid: 16, errno: 0, reqid: '42' });
  });

  it('keeps errno 0 and empty strings present (proto3 optional presence)', () => {
    const out = protobufCodec.decodePayload(
      protobufCodec.encodePayload({ msgid: 11, errno: 0, cmid: '', mid: 1 }),
    ) as Record<string, unknown>;
    expect(out).toEqual({ msgid: 11, errno: 0, cmid: '', mid: 1 });
  });

  it('restores empty friends/groups/users on a successful login ack', () => {
    const ack = {
      msgid: 2,
      errno: 0,
      id: 7,
      name: 'a',
      friends: [],
      groups: [{ id: 1, groupname: 'g', groupdesc: '', users: [] }],
    };
    expect(protobufCodec.decodePayload(protobufCodec.encodePayload(ack))).toEqual(ack);
  });

  it('ignores keys that are not fields of the type (the server may pass extra data)', () => {
    const out = protobufCodec.decodePayload(
      protobufCodec.encodePayload({ msgid: 13, errno: 0, friendid: 3, extra: 'x' }),
    );
    expect(out).toEqual({ msgid: 13, errno: 0, friendid: 3 });
  });

  it('refuses to encode an unknown msgid or a wrongly typed field (errno 9: our bug, not the peer)', () => {
    for (const bad of [{}, { msgid: 0 }, { msgid: 21 }, { msgid: '6' }, { msgid: 'toString' }]) {
      const e = expectProtocolError(() => protobufCodec.encode(bad), 'UNENCODABLE');
      expect(e.errno).toBe(9);
    }
    expectProtocolError(() => protobufCodec.encode({ msgid: 6, toid: 'x' }), 'UNENCODABLE');
    expectProtocolError(() => protobufCodec.encode({ msgid: 6, toid: 1.5 }), 'UNENCODABLE');
    expectProtocolError(
      () => protobufCodec.encode({ msgid: 2, errno: 0, friends: [{ id: 'x' }] }),
      'UNENCODABLE',
    );
  });

  it('rejects an unknown type name, including the nested helper types', () => {
    const chatCodec = new ProtobufCodec(
      protobuf.parse('syntax = "proto3"; package chat; message Nope { int32 a = 1; }').root,
    );
    const nope = chatCodec.encode('chat.Nope', { a: 1 });
    expectProtocolError(() => protobufCodec.decodePayload(nope), 'UNKNOWN_TYPE');
    for (const name of ['chat.Friend', 'chat.Group', 'chat.GroupUser', 'chat', 'muduo.Query', '.chat.Ping']) {
      expectProtocolError(
        () => protobufCodec.decodePayload(encodeMuduoPayload(name, new Uint8Array())),
        'UNKNOWN_TYPE',
      );
    }
  });

  it('rejects a malformed protobuf body with a valid checksum as BAD_PROTOBUF', () => {
    for (const body of [Uint8Array.of(0xff, 0xff), Uint8Array.of(0x0a, 0x05, 0x01), Uint8Array.of(0x0f)]) {
      expectProtocolError(
        () => protobufCodec.decodePayload(encodeMuduoPayload('chat.OneChat', body)),
        'BAD_PROTOBUF',
      );
    }
  });

  it('rejects checksum mismatch and truncation of a chat payload', () => {
    const good = protobufCodec.encodePayload(SAMPLES[2]!);
    const flipped = new Uint8Array(good);
    flipped[good.length - 10]! ^= 0x80;
    expectProtocolError(() => protobufCodec.decodePayload(flipped), 'BAD_CHECKSUM');
    for (let n = 0; n < good.length; n++)
      expectProtocolError(() => protobufCodec.decodePayload(good.subarray(0, n)));
  });

  it('skips unknown fields from a newer peer', () => {
    const withExtra = concat(Uint8Array.of(0x08, 0x07), Uint8Array.of(0xa0, 0x06, 0x01)); // id=7, field 100 = 1
    expect(protobufCodec.decodePayload(encodeMuduoPayload('chat.LogoutRequest', withExtra))).toEqual({
      msgid: 3,
      id: 7,
    });
  });
});
