/**
 * Encodes a protobuf message straight into a FrameSink, where its frame is being written: no
 * intermediate buffer, no allocation, no copy. protobufjs 8 writers write into their `buf` at
 * `pos` (both public fields), so the writer is pointed at the sink's bytes; when the message
 * does not fit, the writer grows a copy (keeping everything before `pos`) and the sink adopts it.
 */
import protobuf from 'protobufjs';
import type { FrameSink } from './nativeFrame.js';

const writer = protobuf.Writer.create();
const EMPTY = globalThis.Buffer.alloc(0);

/** Encodes `message` as `type` at `sink.bytes[at]`; returns the end. Throws what protobufjs throws. */
export function encodeInto(type: protobuf.Type, message: object, sink: FrameSink, at: number): number {
  const w = writer;
  w.buf = sink.bytes;
  w.pos = at;
  w.view = null;
  w.states = null;
  try {
    type.encode(message, w);
    const grown = w.buf;
    if (grown !== sink.bytes) {
      sink.replaceBytes(
        globalThis.Buffer.isBuffer(grown)
          ? grown
          : globalThis.Buffer.from(grown.buffer, grown.byteOffset, grown.byteLength),
      );
    }
    return w.pos;
  } finally {
    // Do not keep the sink's bytes alive from here.
    w.buf = EMPTY;
    w.view = null;
  }
}
