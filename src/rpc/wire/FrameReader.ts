/**
 * A protobufjs reader over a connection's input buffer, reused for every frame. protobufjs
 * returns `bytes` fields as views of the buffer it reads, but the input buffer is reused for the
 * next read; this reader hands out owned copies instead (small ones come from Node's buffer
 * pool), so messages can be decoded in place without copying whole reads.
 */
import protobuf from 'protobufjs';
import { copyBytes } from './copyBytes.js';

export class FrameReader extends protobuf.BufferReader {
  constructor() {
    super(globalThis.Buffer.alloc(0));
  }

  /** Points the reader at `bytes[start, end)`; decode with `type.decode(reader, end - start)`. */
  reset(bytes: globalThis.Buffer, start: number, end: number): void {
    this.buf = bytes;
    this.view = null;
    this.pos = start;
    this.len = end;
  }

  override raw(start: number, end: number): globalThis.Buffer {
    const out = globalThis.Buffer.allocUnsafe(end - start);
    copyBytes(this.buf, start, end, out, 0);
    return out;
  }
}
