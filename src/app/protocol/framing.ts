import { Buffer } from 'node:buffer';

/** Size of the framed codec's length header: uint32, big-endian, counting the payload only. */
export const FRAME_HEADER_BYTES = 4;

/**
 * `Buffer.allocUnsafe` hands out slices of a shared pool for small sizes: much cheaper per message
 * than a zeroed `new Uint8Array`. Callers always overwrite every byte.
 */
export function allocBytes(n: number): Uint8Array {
  return Buffer.allocUnsafe(n);
}

export function writeUint32BE(buf: Uint8Array, offset: number, v: number): void {
  buf[offset] = v >>> 24;
  buf[offset + 1] = v >>> 16;
  buf[offset + 2] = v >>> 8;
  buf[offset + 3] = v;
}

export function readUint32BE(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

/** Prepends the 4-byte big-endian length. The network layer's LengthHeaderCodec does the reverse. */
export function frame(payload: Uint8Array): Uint8Array {
  const out = allocBytes(FRAME_HEADER_BYTES + payload.length);
  writeUint32BE(out, 0, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}
