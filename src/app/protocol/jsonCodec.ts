import type { PayloadCodec } from './codecs.js';
import { decodeJsonBytes, encodeJsonBytes } from './jsonBytes.js';

/** Framed JSON: the payload is one UTF-8 JSON object. */
export const jsonCodec: PayloadCodec = {
  kind: 'json',
  decodePayload: (payload) => decodeJsonBytes(payload),
  encodePayload: (msg) => encodeJsonBytes(msg, 'payload'),
  encode: (msg) => encodeJsonBytes(msg, 'framed'),
};
