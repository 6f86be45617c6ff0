import type { WireObject } from './types.js';

/**
 * Turns message objects (the JSON shapes of docs/PROTOCOL.md §3–4) into frame payloads and back.
 * The 4-byte length header is not the codec's business: the client frames payloads with the
 * net library's LengthHeaderCodec. A codec may offer `encodeFrame` to build header + payload in
 * one allocation; the client uses it when present.
 *
 * `decode` receives a view that is only valid during the call; it must not keep it. It throws
 * on a payload it cannot decode (the client then closes the connection with a PROTOCOL error).
 */
export interface ClientCodec {
  readonly name: string;
  encode(obj: WireObject): Uint8Array;
  decode(payload: Uint8Array): WireObject;
  encodeFrame?(obj: WireObject): Uint8Array;
}

/** Framed JSON: the payload is the UTF-8 JSON text of one object (it always starts with `{`). */
export class JsonClientCodec implements ClientCodec {
  readonly name = 'json';

  encode(obj: WireObject): Uint8Array {
    return globalThis.Buffer.from(JSON.stringify(obj), 'utf8');
  }

  encodeFrame(obj: WireObject): Uint8Array {
    const text = JSON.stringify(obj);
    const n = globalThis.Buffer.byteLength(text, 'utf8');
    const out = globalThis.Buffer.allocUnsafe(4 + n);
    out.writeUInt32BE(n, 0);
    out.write(text, 4, 'utf8');
    return out;
  }

  decode(payload: Uint8Array): WireObject {
    const bytes =
      payload instanceof globalThis.Buffer
        ? payload
        : globalThis.Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TypeError('frame is not a JSON object');
    }
    return value as WireObject;
  }
}

export type CodecName = 'json' | 'protobuf';

/**
 * The codec for a name, or the given ClientCodec itself. 'protobuf' is loaded on demand (it pulls
 * in protobufjs), hence the promise.
 */
export async function loadClientCodec(codec: CodecName | ClientCodec = 'json'): Promise<ClientCodec> {
  if (typeof codec === 'object') return codec;
  if (codec === 'json') return new JsonClientCodec();
  if (codec === 'protobuf') {
    const { ProtobufClientCodec } = await import('./protobufCodec.js');
    return new ProtobufClientCodec();
  }
  throw new Error(`unknown codec '${String(codec)}' (expected json or protobuf)`);
}
