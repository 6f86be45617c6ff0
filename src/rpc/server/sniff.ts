/**
 * Per-connection wire detection (README, "One port, two formats"). A native caller opens with
 * the 8-byte preface "MRPC" 1 0 0 0; a classic consumer opens with its header size as a
 * little-endian uint32, which for "MRPC" would be 1.1e9 bytes, far over any real header
 * (classic headers are capped at 64 KiB). So the first four bytes decide, unambiguously.
 */
import type { Buffer as NetBuffer } from '../../net/Buffer.js';
import { MAGIC_BE, PREFACE_LENGTH, PROTOCOL_VERSION } from '../wire/nativeFrame.js';

export type Sniffed = 'more' | 'native' | 'classic' | 'bad-version';

export function sniff(input: NetBuffer): Sniffed {
  if (input.readableBytes() < 4) return 'more';
  const head = input.peek(4).readUInt32BE(0);
  if (head !== MAGIC_BE) return 'classic';
  if (input.readableBytes() < PREFACE_LENGTH) return 'more';
  return input.peek(PREFACE_LENGTH)[4] === PROTOCOL_VERSION ? 'native' : 'bad-version';
}
