import type { TcpConnection, TimerId } from '../../net/index.js';

/** How output to classic clients is paced (docs/DECISIONS.md "Pacing"). */
export interface LegacyPacing {
  /**
   * Least time between two writes to one classic session, so that a client reading promptly gets
   * one message per `recv`. Default 2 ms (measured with the real client: 1 ms lost messages, 2 ms
   * and 5 ms lost none).
   */
  gapMs: number;
  /** Largest legacy write, `\0` included: the classic client's `recv` buffer. Default 1,024. */
  maxWriteBytes: number;
}

export const kDefaultLegacyPacing: Readonly<LegacyPacing> = { gapMs: 2, maxWriteBytes: 1024 };

/** Queued messages above which bulk sends (an inbox catch-up) wait… */
const kPauseAbove = 32;
/** …until the queue is down to this many. */
const kResumeAt = 8;

/**
 * One classic session's output queue: one message per write, `gapMs` apart, each write from its
 * own TimerQueue callback (so no two share a writev or a tick). Each session has its own queue
 * and at most one timer: sessions never wait for each other, and nothing else waits for them.
 * Bytes still queued here have not been sent: a push counts as delivered only once the kernel
 * took its bytes (ChatService, via `sentBytes` + `queuedBytes`), so whatever is dropped at a
 * close stays unread.
 */
export class LegacyOutbox {
  /** Written entries before `head` are cleared to undefined (no shift per write). */
  private queue: Array<Uint8Array | undefined> = [];
  private head = 0;
  private bytes = 0;
  private timer: TimerId | null = null;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private closed = false;
  private roomWaiters: (() => void)[] = [];
  private emptyWaiters: (() => void)[] = [];

  constructor(
    private readonly conn: TcpConnection,
    private readonly gapMs: number,
  ) {}

  /** Bytes waiting here (not yet handed to the connection). */
  get queuedBytes(): number {
    return this.bytes;
  }

  get queuedMessages(): number {
    return this.queue.length - this.head;
  }

  enqueue(bytes: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(bytes);
    this.bytes += bytes.byteLength;
    this.arm();
  }

  /**
   * Undefined while the queue is short, else a promise that resolves once it has drained to a
   * few messages (or the outbox closed): bulk senders go at the client's pace, memory stays bounded.
   */
  whenRoom(): Promise<void> | undefined {
    if (this.closed || this.queuedMessages <= kPauseAbove) return undefined;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Undefined when nothing is queued, else resolves once all of it has been written (or dropped at a close). */
  whenEmpty(): Promise<void> | undefined {
    if (this.closed || this.queuedMessages === 0) return undefined;
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** The connection is gone: drop everything, release a waiting sender. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) this.conn.loop.cancel(this.timer);
    this.timer = null;
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.wake();
  }

  private arm(): void {
    if (this.timer !== null || this.queuedMessages === 0) return;
    const wait = Math.max(0, this.lastWriteAt + this.gapMs - performance.now());
    this.timer = this.conn.loop.runAfter(wait, this.writeOne);
  }

  private readonly writeOne = (): void => {
    this.timer = null;
    if (this.closed || !this.conn.connected) return;
    const bytes = this.queue[this.head];
    if (bytes === undefined) return;
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.bytes -= bytes.byteLength;
    this.lastWriteAt = performance.now();
    this.conn.send(bytes);
    this.wake();
    this.arm();
  };

  private wake(): void {
    const left = this.closed ? 0 : this.queuedMessages;
    if (left <= kResumeAt && this.roomWaiters.length > 0) {
      for (const resolve of this.roomWaiters.splice(0)) resolve();
    }
    if (left === 0 && this.emptyWaiters.length > 0) {
      for (const resolve of this.emptyWaiters.splice(0)) resolve();
    }
  }
}
