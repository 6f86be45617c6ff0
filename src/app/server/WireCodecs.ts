import { decodeJsonBytes, encodeJsonBytes } from '../protocol/jsonBytes.js';

/** Payload bytes ⇄ plain message objects for one codec; `encode` returns complete wire bytes. */
export interface WireCodec {
  decode(payload: Uint8Array): unknown;
  encode(message: object): Uint8Array;
}

export interface WireCodecs {
  /** Framed JSON (also decodes a legacy message's text). */
  readonly json: WireCodec;
  /** Classic JSON + `\\0` stream: encode only (decoding splits first, then uses `json`). */
  readonly legacy: WireCodec;
  readonly protobuf: WireCodec;
}

export const jsonCodec: WireCodec = {
  decode: decodeJsonBytes,
  encode: (message) => encodeJsonBytes(message, 'framed'),
};

export const legacyCodec: WireCodec = {
  decode: decodeJsonBytes,
  encode: (message) => encodeJsonBytes(message, 'nul-terminated'),
};
