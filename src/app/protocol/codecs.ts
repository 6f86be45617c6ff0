import { ChatProtobufCodec } from './chatProtobuf.js';
import { jsonCodec } from './jsonCodec.js';
import type { LegacyStreamDecoder } from './legacyCodec.js';
import { legacyCodec } from './legacyCodec.js';

export type CodecKind = 'legacy' | 'json' | 'protobuf';

/** What the server needs to write to any connection, whatever its codec. */
export interface ChatCodec {
  readonly kind: CodecKind;
  /** One server→client message as complete wire bytes (framed, or `\0`-terminated for legacy). */
  encode(msg: object): Uint8Array;
}

/**
 * A codec for one framed payload. The 4-byte length framing itself is the network layer's
 * (LengthHeaderCodec); `encode` = frame(encodePayload) in a single allocation.
 * decodePayload yields the JSON-shaped object (with `msgid`), to be checked by parseRequest.
 */
export interface PayloadCodec extends ChatCodec {
  readonly kind: 'json' | 'protobuf';
  decodePayload(payload: Uint8Array): unknown;
  encodePayload(msg: object): Uint8Array;
}

/** The classic stream: stateful splitting per connection, so decoding goes through a decoder object. */
export interface LegacyCodec extends ChatCodec {
  readonly kind: 'legacy';
  createDecoder(maxMessageBytes?: number): LegacyStreamDecoder;
}

export const protobufCodec: PayloadCodec = new ChatProtobufCodec();
export { jsonCodec, legacyCodec };

const LEFT_BRACE = 0x7b;

/** docs/PROTOCOL.md §1–2: the first byte a client sends picks the codec for the connection's lifetime. */
export function detectCodec(firstByte: number): 'legacy' | 'framed' {
  return firstByte === LEFT_BRACE ? 'legacy' : 'framed';
}

/** A framed payload starting with `{` is JSON; anything else is a muduo protobuf payload. */
export function payloadKind(payload: Uint8Array): 'json' | 'protobuf' {
  return payload.length > 0 && payload[0] === LEFT_BRACE ? 'json' : 'protobuf';
}

export function payloadCodecFor(payload: Uint8Array): PayloadCodec {
  return payload.length > 0 && payload[0] === LEFT_BRACE ? jsonCodec : protobufCodec;
}

export function codecFor(kind: 'legacy'): LegacyCodec;
export function codecFor(kind: 'json' | 'protobuf'): PayloadCodec;
export function codecFor(kind: CodecKind): ChatCodec;
export function codecFor(kind: CodecKind): ChatCodec {
  return kind === 'legacy' ? legacyCodec : kind === 'json' ? jsonCodec : protobufCodec;
}
