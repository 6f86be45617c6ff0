import { Buffer } from 'node:buffer';
import { ProtocolError } from './errors.js';
import { FRAME_HEADER_BYTES, writeUint32BE } from './framing.js';

// fatal: invalid UTF-8 must be rejected, not silently turned into U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 JSON bytes → value. Invalid UTF-8 → BAD_UTF8, invalid JSON → BAD_JSON. */
export function decodeJsonBytes(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new ProtocolError('BAD_UTF8', 'message is not valid UTF-8', { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError('BAD_JSON', 'message is not valid JSON', { cause });
  }
}

export type JsonLayout = 'payload' | 'framed' | 'nul-terminated';

/**
 * value → UTF-8 JSON in one exactly-sized allocation, optionally with the 4-byte length header in
 * front ('framed') or a `\0` behind ('nul-terminated', the classic stream). JSON.stringify escapes
 * U+0000, so the terminator can never occur inside the text.
 */
export function encodeJsonBytes(value: object, layout: JsonLayout): Uint8Array {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new ProtocolError('UNENCODABLE', 'reply cannot be serialized to JSON', { cause });
  }
  if (typeof text !== 'string') throw new ProtocolError('UNENCODABLE', 'reply serializes to nothing');
  // Measured fastest for the classic stream: one native size-and-copy.
  if (layout === 'nul-terminated') return Buffer.from(`${text}\0`, 'utf8');
  const n = Buffer.byteLength(text, 'utf8');
  const head = layout === 'framed' ? FRAME_HEADER_BYTES : 0;
  const out = Buffer.allocUnsafe(head + n);
  if (head !== 0) writeUint32BE(out, 0, n);
  out.write(text, head, 'utf8');
  return out;
}
