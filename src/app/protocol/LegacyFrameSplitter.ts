import { Limits } from './errno.js';
import { ProtocolError } from './errors.js';
import { allocBytes } from './framing.js';

const EMPTY = new Uint8Array(0);
const MIN_CAPACITY = 256;
// A partial-message buffer grown past this is dropped once its message completes, so one big
// message does not pin a large buffer to an idle connection.
const KEEP_CAPACITY = 64 * 1024;

/**
 * Splits the classic client's byte stream (JSON text, then one `\0`) into messages.
 *
 * Usage per socket read: `push(chunk)`, then call `next()` until it returns undefined.
 * Every byte is scanned exactly once: a chunk is searched from where the last search stopped,
 * and bytes carried over into the partial buffer are known to hold no `\0`. A message that lies
 * entirely inside one chunk is returned as a view of that chunk (no copy); only a message split
 * across chunks is assembled in an owned buffer.
 *
 * A returned view is valid until the next `push()`/`next()` call; decode it before moving on.
 * A pushed chunk is read (never written) until next() returns undefined, so a caller that reuses
 * its read buffer must drain first.
 * A message longer than `maxMessageBytes` (without its `\0`) fails with FRAME_TOO_LARGE as soon
 * as that is known, without waiting for its terminator; after an error the splitter stays failed.
 */
export class LegacyFrameSplitter {
  private chunk: Uint8Array | null = null;
  private pos = 0;
  private partial: Uint8Array = EMPTY;
  private partialLen = 0;
  private failure: ProtocolError | null = null;

  constructor(readonly maxMessageBytes: number = Limits.MAX_MESSAGE_BYTES) {}

  /** Bytes held for an incomplete message or not yet returned by next(). */
  get bufferedBytes(): number {
    return this.partialLen + (this.chunk === null ? 0 : this.chunk.length - this.pos);
  }

  push(bytes: Uint8Array): void {
    if (this.failure !== null) throw this.failure;
    if (bytes.length === 0) return;
    const rest = this.chunk;
    if (rest === null) {
      this.chunk = bytes;
      this.pos = 0;
      return;
    }
    // The caller did not drain with next(): keep the unscanned remainder in front of the new bytes.
    const left = rest.length - this.pos;
    const joined = allocBytes(left + bytes.length);
    joined.set(rest.subarray(this.pos), 0);
    joined.set(bytes, left);
    this.chunk = joined;
    this.pos = 0;
  }

  next(): Uint8Array | undefined {
    if (this.failure !== null) throw this.failure;
    const chunk = this.chunk;
    if (chunk === null) return undefined;
    const from = this.pos;
    const nul = chunk.indexOf(0, from);
    if (nul === -1) {
      this.chunk = null;
      this.append(chunk, from, chunk.length);
      return undefined;
    }
    this.pos = nul + 1;
    if (this.pos === chunk.length) this.chunk = null; // let the socket's chunk be collected
    if (this.partialLen === 0) {
      this.check(nul - from);
      return chunk.subarray(from, nul);
    }
    this.append(chunk, from, nul);
    const out = this.partial.subarray(0, this.partialLen);
    this.partialLen = 0;
    if (this.partial.length > KEEP_CAPACITY) this.partial = EMPTY;
    return out;
  }

  private append(src: Uint8Array, from: number, to: number): void {
    const need = this.partialLen + (to - from);
    this.check(need);
    if (need > this.partial.length) {
      let cap = Math.max(MIN_CAPACITY, this.partial.length * 2);
      while (cap < need) cap *= 2;
      const grown = allocBytes(Math.min(cap, Math.max(need, this.maxMessageBytes)));
      grown.set(this.partial.subarray(0, this.partialLen), 0);
      this.partial = grown;
    }
    this.partial.set(src.subarray(from, to), this.partialLen);
    this.partialLen = need;
  }

  private check(len: number): void {
    if (len > this.maxMessageBytes) {
      this.chunk = null;
      this.partial = EMPTY;
      this.partialLen = 0;
      this.failure = new ProtocolError(
        'FRAME_TOO_LARGE',
        `legacy message longer than ${this.maxMessageBytes} bytes`,
      );
      throw this.failure;
    }
  }
}
