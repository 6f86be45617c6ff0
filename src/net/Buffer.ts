/**
 * muduo's Buffer: a growable byte array split into three regions.
 *
 *   +-------------------+------------------+------------------+
 *   | prependable bytes |  readable bytes  |  writable bytes  |
 *   |                   |     (CONTENT)    |                  |
 *   +-------------------+------------------+------------------+
 *   0      <=      readerIndex   <=   writerIndex    <=     capacity
 *
 * Readers get zero-copy views (`peek`) valid until the next mutation; `retrieve*`
 * methods that return bytes copy them. All integers are big-endian (network order).
 */
export class Buffer {
  static readonly kCheapPrepend = 8;
  static readonly kInitialSize = 1024;

  private storage: globalThis.Buffer;
  private readerIndex: number;
  private writerIndex: number;

  constructor(initialSize = Buffer.kInitialSize) {
    this.storage = globalThis.Buffer.allocUnsafe(Buffer.kCheapPrepend + initialSize);
    this.readerIndex = Buffer.kCheapPrepend;
    this.writerIndex = Buffer.kCheapPrepend;
  }

  readableBytes(): number {
    return this.writerIndex - this.readerIndex;
  }

  writableBytes(): number {
    return this.storage.length - this.writerIndex;
  }

  prependableBytes(): number {
    return this.readerIndex;
  }

  /** Total bytes of backing storage (for memory accounting and tests). */
  capacity(): number {
    return this.storage.length;
  }

  /** A zero-copy view of the readable bytes, valid until the buffer is next modified. */
  peek(len = this.readableBytes()): globalThis.Buffer {
    if (len > this.readableBytes())
      throw new RangeError(`peek(${len}) exceeds ${this.readableBytes()} readable`);
    return this.storage.subarray(this.readerIndex, this.readerIndex + len);
  }

  /** Index (relative to the readable start) of the first CRLF, or -1. */
  findCRLF(start = 0): number {
    const at = this.storage.indexOf('\r\n', this.readerIndex + start, 'latin1');
    return at < 0 || at + 2 > this.writerIndex ? -1 : at - this.readerIndex;
  }

  /** Index (relative to the readable start) of the first '\n', or -1. */
  findEOL(start = 0): number {
    return this.findByte(0x0a, start);
  }

  /** Index (relative to the readable start) of the first occurrence of `byte`, or -1. */
  findByte(byte: number, start = 0): number {
    const from = this.readerIndex + start;
    if (from >= this.writerIndex) return -1;
    const at = this.storage.indexOf(byte, from);
    return at < 0 || at >= this.writerIndex ? -1 : at - this.readerIndex;
  }

  retrieve(len: number): void {
    if (len < this.readableBytes()) {
      this.readerIndex += len;
    } else {
      this.retrieveAll();
    }
  }

  retrieveAll(): void {
    // Rewind so the next append reuses the whole array instead of growing it.
    this.readerIndex = Buffer.kCheapPrepend;
    this.writerIndex = Buffer.kCheapPrepend;
  }

  retrieveAsString(len: number, encoding: BufferEncoding = 'utf8'): string {
    if (len > this.readableBytes())
      throw new RangeError(`retrieve(${len}) exceeds ${this.readableBytes()} readable`);
    const text = this.storage.toString(encoding, this.readerIndex, this.readerIndex + len);
    this.retrieve(len);
    return text;
  }

  retrieveAllAsString(encoding: BufferEncoding = 'utf8'): string {
    return this.retrieveAsString(this.readableBytes(), encoding);
  }

  /** Copies `len` readable bytes out and consumes them. */
  retrieveAsBytes(len: number): globalThis.Buffer {
    const out = globalThis.Buffer.from(this.peek(len));
    this.retrieve(len);
    return out;
  }

  retrieveAllAsBytes(): globalThis.Buffer {
    return this.retrieveAsBytes(this.readableBytes());
  }

  append(data: Uint8Array | string): void {
    if (typeof data === 'string') {
      const len = globalThis.Buffer.byteLength(data);
      this.ensureWritable(len);
      this.writerIndex += this.storage.write(data, this.writerIndex);
      return;
    }
    this.ensureWritable(data.length);
    this.storage.set(data, this.writerIndex);
    this.writerIndex += data.length;
  }

  /** Appends `source[start, end)` without creating an intermediate view. */
  appendRange(source: Uint8Array, start: number, end: number): void {
    const len = end - start;
    this.ensureWritable(len);
    if (source instanceof globalThis.Buffer) {
      source.copy(this.storage, this.writerIndex, start, end);
    } else {
      this.storage.set(source.subarray(start, end), this.writerIndex);
    }
    this.writerIndex += len;
  }

  /** Puts bytes in front of the readable region, using the reserved prepend space. */
  prepend(data: Uint8Array): void {
    if (data.length > this.prependableBytes()) {
      throw new RangeError(`prepend(${data.length}) exceeds ${this.prependableBytes()} prependable`);
    }
    this.readerIndex -= data.length;
    this.storage.set(data, this.readerIndex);
  }

  /** Makes room for `len` more bytes: first by moving readable data to the front, then by growing. */
  ensureWritable(len: number): void {
    if (this.writableBytes() >= len) return;
    const readable = this.readableBytes();
    if (this.writableBytes() + this.prependableBytes() - Buffer.kCheapPrepend >= len) {
      // muduo's makeSpace: reuse the space already consumed at the front.
      this.storage.copy(this.storage, Buffer.kCheapPrepend, this.readerIndex, this.writerIndex);
    } else {
      const wanted = Buffer.kCheapPrepend + readable + len;
      const grown = globalThis.Buffer.allocUnsafe(Math.max(wanted, this.storage.length * 2));
      this.storage.copy(grown, Buffer.kCheapPrepend, this.readerIndex, this.writerIndex);
      this.storage = grown;
    }
    this.readerIndex = Buffer.kCheapPrepend;
    this.writerIndex = Buffer.kCheapPrepend + readable;
  }

  /** A view of the writable region, for reading straight from a socket; commit with `hasWritten`. */
  beginWrite(minBytes = 0): globalThis.Buffer {
    if (minBytes > 0) this.ensureWritable(minBytes);
    return this.storage.subarray(this.writerIndex);
  }

  hasWritten(len: number): void {
    if (len > this.writableBytes())
      throw new RangeError(`hasWritten(${len}) exceeds ${this.writableBytes()} writable`);
    this.writerIndex += len;
  }

  /** Drops the last `len` readable bytes. */
  unwrite(len: number): void {
    if (len > this.readableBytes())
      throw new RangeError(`unwrite(${len}) exceeds ${this.readableBytes()} readable`);
    this.writerIndex -= len;
  }

  /** Releases memory beyond `reserve` writable bytes (muduo's shrink). */
  shrink(reserve = 0): void {
    const readable = this.readableBytes();
    const next = globalThis.Buffer.allocUnsafe(Buffer.kCheapPrepend + readable + reserve);
    this.storage.copy(next, Buffer.kCheapPrepend, this.readerIndex, this.writerIndex);
    this.storage = next;
    this.readerIndex = Buffer.kCheapPrepend;
    this.writerIndex = Buffer.kCheapPrepend + readable;
  }

  /**
   * Forgets the backing array without copying it, after handing its readable bytes to
   * someone who keeps a reference (an in-flight socket write). Leaves the buffer empty.
   */
  detachStorage(): void {
    this.storage = globalThis.Buffer.allocUnsafe(this.storage.length);
    this.retrieveAll();
  }

  // ---- integers (big-endian) ----

  appendInt8(x: number): void {
    this.ensureWritable(1);
    this.storage.writeInt8(x, this.writerIndex);
    this.writerIndex += 1;
  }

  appendInt16(x: number): void {
    this.ensureWritable(2);
    this.storage.writeInt16BE(x, this.writerIndex);
    this.writerIndex += 2;
  }

  appendInt32(x: number): void {
    this.ensureWritable(4);
    this.storage.writeInt32BE(x, this.writerIndex);
    this.writerIndex += 4;
  }

  appendInt64(x: bigint): void {
    this.ensureWritable(8);
    this.storage.writeBigInt64BE(x, this.writerIndex);
    this.writerIndex += 8;
  }

  peekInt8(): number {
    this.requireReadable(1);
    return this.storage.readInt8(this.readerIndex);
  }

  peekInt16(): number {
    this.requireReadable(2);
    return this.storage.readInt16BE(this.readerIndex);
  }

  peekInt32(): number {
    this.requireReadable(4);
    return this.storage.readInt32BE(this.readerIndex);
  }

  peekInt64(): bigint {
    this.requireReadable(8);
    return this.storage.readBigInt64BE(this.readerIndex);
  }

  readInt8(): number {
    const x = this.peekInt8();
    this.retrieve(1);
    return x;
  }

  readInt16(): number {
    const x = this.peekInt16();
    this.retrieve(2);
    return x;
  }

  readInt32(): number {
    const x = this.peekInt32();
    this.retrieve(4);
    return x;
  }

  readInt64(): bigint {
    const x = this.peekInt64();
    this.retrieve(8);
    return x;
  }

  prependInt8(x: number): void {
    this.requirePrependable(1);
    this.readerIndex -= 1;
    this.storage.writeInt8(x, this.readerIndex);
  }

  prependInt16(x: number): void {
    this.requirePrependable(2);
    this.readerIndex -= 2;
    this.storage.writeInt16BE(x, this.readerIndex);
  }

  prependInt32(x: number): void {
    this.requirePrependable(4);
    this.readerIndex -= 4;
    this.storage.writeInt32BE(x, this.readerIndex);
  }

  prependInt64(x: bigint): void {
    this.requirePrependable(8);
    this.readerIndex -= 8;
    this.storage.writeBigInt64BE(x, this.readerIndex);
  }

  private requireReadable(len: number): void {
    if (this.readableBytes() < len)
      throw new RangeError(`need ${len} readable bytes, have ${this.readableBytes()}`);
  }

  private requirePrependable(len: number): void {
    if (this.prependableBytes() < len) {
      throw new RangeError(`need ${len} prependable bytes, have ${this.prependableBytes()}`);
    }
  }
}
