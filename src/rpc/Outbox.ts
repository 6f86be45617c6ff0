/**
 * Write batching for one connection: frames encoded during a turn of the loop are appended to
 * one reusable byte array and handed to the socket in a single write when the loop's queued
 * functors run (right after the current I/O callbacks, so no extra latency). Many calls become
 * one syscall, and the array is reused whenever the kernel took everything at once.
 */
import type { EventLoop } from '../net/EventLoop.js';
import type { TcpConnection } from '../net/TcpConnection.js';
import type { FrameSink } from './wire/nativeFrame.js';

const kInitialBytes = 16 * 1024;
/** After a burst, do not keep more than this much idle memory per connection. */
const kKeepBytes = 256 * 1024;
/** Default of `eagerFlushBytes`. */
const kEagerFlushBytes = 32 * 1024;

export class Outbox implements FrameSink {
  bytes: globalThis.Buffer = globalThis.Buffer.allocUnsafe(kInitialBytes);
  private length = 0;
  private scheduled = false;
  /** A buffer the socket may still be reading from (its write was queued, not done). */
  private lent: globalThis.Buffer | null = null;
  /** A free buffer to switch to, so steady traffic allocates nothing. */
  private spare: globalThis.Buffer | null = null;

  /**
   * @param eagerFlushBytes past this much appended, write at once instead of at the end of the
   *   loop turn, so that the peer starts on a big batch while the rest is produced. Default 32 KiB.
   */
  constructor(
    private readonly loop: EventLoop,
    private readonly conn: TcpConnection,
    private readonly eagerFlushBytes = kEagerFlushBytes,
  ) {}

  /** Bytes appended and not yet flushed. */
  get pendingBytes(): number {
    return this.length;
  }

  reserve(length: number): number {
    const need = this.length + length;
    if (need > this.bytes.length) {
      const grown = globalThis.Buffer.allocUnsafe(Math.max(need, this.bytes.length * 2));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    return this.length;
  }

  replaceBytes(grown: globalThis.Buffer): void {
    this.bytes = grown;
  }

  commit(end: number): void {
    this.length = end;
    if (end >= this.eagerFlushBytes) {
      this.flush();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      this.loop.queueInLoop(this.scheduledFlush);
    }
  }

  private readonly scheduledFlush = (): void => {
    this.scheduled = false;
    this.flush();
  };

  /** Writes what has been appended now (also run automatically once per loop turn). */
  readonly flush = (): void => {
    const length = this.length;
    if (length === 0) return;
    this.length = 0;
    const conn = this.conn;
    const before = conn.pendingOutputBytes();
    if (before === 0 && this.lent !== null) {
      // Everything queued earlier has been written: the lent buffer is free again.
      this.spare = this.lent;
      this.lent = null;
    }
    conn.send(this.bytes.subarray(0, length));
    if (conn.pendingOutputBytes() > before) {
      // The socket keeps a reference to what the kernel did not take: never overwrite it.
      if (this.lent === null) this.lent = this.bytes;
      this.bytes = this.spare ?? globalThis.Buffer.allocUnsafe(kInitialBytes);
      this.spare = null;
    } else if (this.bytes.length > kKeepBytes) {
      this.bytes = globalThis.Buffer.allocUnsafe(kInitialBytes);
    }
  };
}
