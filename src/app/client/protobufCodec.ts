import { ChatProtobufCodec } from '../protocol/chatProtobuf.js';
import { type ClientCodec, JsonClientCodec } from './codec.js';
import type { WireObject } from './types.js';

const LEFT_BRACE = 0x7b;

/**
 * Framed protobuf (muduo ProtobufCodec layout, docs/PROTOCOL.md §1–2) through the protocol layer's
 * ChatProtobufCodec, which maps the JSON-shaped objects to chat.proto types by msgid and back.
 * A numeric reqid travels as a decimal string; the client matches either form.
 * Loaded on demand (`loadClientCodec('protobuf')`) so JSON-only users never load protobufjs.
 */
export class ProtobufClientCodec implements ClientCodec {
  readonly name = 'protobuf';
  private readonly inner = new ChatProtobufCodec();
  private readonly json = new JsonClientCodec();

  encode(obj: WireObject): Uint8Array {
    return this.inner.encodePayload(obj);
  }

  encodeFrame(obj: WireObject): Uint8Array {
    return this.inner.encode(obj);
  }

  /** A payload starting with `{` is JSON (docs/PROTOCOL.md §1–2), e.g. an ERROR from a server that could not
   * tell the codec yet; anything else is a muduo protobuf payload. */
  decode(payload: Uint8Array): WireObject {
    return payload[0] === LEFT_BRACE ? this.json.decode(payload) : this.inner.decodePayload(payload);
  }
}
