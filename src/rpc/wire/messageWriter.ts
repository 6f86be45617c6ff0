/**
 * The RPC layer's one protobufjs writer. protobufjs 8 writers write into their `buf` at `pos`
 * (both public fields), so the writer is pointed wherever the bytes are wanted:
 * - `encodeInto` writes a message straight into a FrameSink, where its frame is being written:
 *   no intermediate buffer, no copy. When the message does not fit, the writer grows a copy
 *   (keeping everything before `pos`) and the sink adopts it.
 * - `encodeOwned` writes into a reused scratch buffer and returns an owned copy, for bytes kept
 *   beyond the current call (a waiting request, a classic frame).
 */
import protobuf from 'protobufjs';
import { copyBytes } from './copyBytes.js';
import type { FrameSink } from './nativeFrame.js';

const writer = protobuf.Writer.create();
const EMPTY = globalThis.Buffer.alloc(0);
let scratch: Uint8Array = globalThis.Buffer.allocUnsafe(1024);

/** Encodes `message` as `type` at `sink.bytes[at]`; returns the end. Throws what protobufjs throws. */
export function encodeInto(type: protobuf.Type, message: object, sink: FrameSink, at: number): number {
  const end = encodeAt(type, message, sink.bytes, at);
  const grown = writer.buf;
  writer.buf = EMPTY; // do not keep the sink's bytes alive from here
  if (grown !== sink.bytes) {
    sink.replaceBytes(
      globalThis.Buffer.isBuffer(grown)
        ? grown
        : globalThis.Buffer.from(grown.buffer, grown.byteOffset, grown.byteLength),
    );
  }
  return end;
}

/** `message` encoded as `type`, in a buffer of its own. Throws what protobufjs throws. */
export function encodeOwned(type: protobuf.Type, message: object): globalThis.Buffer {
  const end = encodeAt(type, message, scratch, 0);
  scratch = writer.buf; // keep a grown scratch buffer
  writer.buf = EMPTY;
  const out = globalThis.Buffer.allocUnsafe(end);
  copyBytes(scratch, 0, end, out, 0);
  return out;
}

function encodeAt(type: protobuf.Type, message: object, bytes: Uint8Array, at: number): number {
  const w = writer;
  w.buf = bytes;
  w.pos = at;
  w.view = null;
  w.states = null;
  try {
    type.encode(message, w);
  } catch (error) {
    w.buf = EMPTY;
    throw error;
  } finally {
    w.view = null;
  }
  return w.pos;
}
