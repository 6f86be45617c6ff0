/** Protobuf base-128 varints for uint32 values, on plain byte arrays (the header codecs' one primitive). */
import { RpcError } from '../errors.js';

export function varint32Size(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

/** Writes `value` (0..2^32-1) at `offset`; returns the offset after it. */
export function writeVarint32(out: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) {
    out[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[offset++] = value;
  return offset;
}

/** A cursor over `bytes[pos, end)`; reused by the decoders so that reading allocates nothing. */
export interface Cursor {
  bytes: Uint8Array;
  pos: number;
  end: number;
}

function truncated(): RpcError {
  return new RpcError('PROTOCOL_ERROR', 'truncated protobuf header');
}

/** Reads a varint as uint32 (higher bits of a longer varint are dropped, as protobuf does). */
export function readVarint32(c: Cursor): number {
  const bytes = c.bytes;
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= c.end) throw truncated();
    const b = bytes[c.pos++]!;
    if (shift < 32) result |= (b & 0x7f) << shift;
    if (b < 0x80) return result >>> 0;
    shift += 7;
  }
  throw new RpcError('PROTOCOL_ERROR', 'varint longer than 10 bytes');
}

/** Skips one field of the given wire type (unknown fields are ignored, as protobuf requires). */
export function skipField(c: Cursor, wireType: number): void {
  switch (wireType) {
    case 0:
      readVarint32(c);
      return;
    case 1:
      c.pos += 8;
      break;
    case 2: {
      const len = readVarint32(c);
      c.pos += len;
      break;
    }
    case 5:
      c.pos += 4;
      break;
    default:
      throw new RpcError('PROTOCOL_ERROR', `unsupported protobuf wire type ${wireType}`);
  }
  if (c.pos > c.end) throw truncated();
}

/** Reads a length-delimited field's bounds; returns its start (the cursor moves past it). */
export function readLengthDelimited(c: Cursor): number {
  const len = readVarint32(c);
  const start = c.pos;
  if (start + len > c.end) throw truncated();
  c.pos = start + len;
  return start;
}
