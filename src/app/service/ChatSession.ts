import type { ChatPushView } from '../protocol/views.js';
import type { InboxStream } from './InboxStream.js';
import type { RateLimiter } from './RateLimiter.js';

export type CodecKind = 'legacy' | 'json' | 'protobuf';

/** What the business layer needs from a connection; the server implements it per codec. */
export interface SessionTransport {
  readonly kind: CodecKind;
  /** Encodes and writes one reply or push; drops ids a legacy client must not see. */
  send(message: object): void;
  close(): void;
  /** Stop / resume reading requests (the session's queue is full / drained). */
  pauseInput(): void;
  resumeInput(): void;
  /**
   * Output backpressure for bulk sends (an inbox catch-up): undefined when the connection can take
   * more now, else a promise that resolves once its pending output has drained (or it closed).
   * Optional: a transport without it is never waited for.
   */
  whenWritable?(): Promise<void> | undefined;
  /**
   * Output accounting, for clients that never acknowledge (legacy): bytes accepted by `send` so
   * far, in order, and how many of them the kernel has taken (still right once the connection is
   * down: whatever was queued then is lost, never counted). Optional: without it a send counts as
   * written.
   */
  bytesQueued?(): number;
  bytesFlushed?(): number;
  /**
   * Resolves once what `send` accepted has been taken by the kernel, the connection is gone, or
   * the transport gave up waiting (a logout counts a classic session's last pushes). Optional.
   */
  whenFlushed?(): Promise<void>;
  /** A short name for logs. */
  readonly peer: string;
  /** The client's source address (IP), for per-address limits; absent = unknown. */
  readonly address?: string;
  /** Told when the session logs in (true) or out (false). */
  loginChanged?(loggedIn: boolean): void;
}

/** Queued requests beyond which the connection stops being read. */
const kQueueHigh = 1024;
const kQueueLow = 256;

/**
 * One client's business-level state: who it is logged in as, its ordered request queue, its
 * inbox stream and the delivery acks not yet written to the store.
 */
export class ChatSession {
  userName = '';
  /** What the store records as holding this login (Presence.holder at login): its logout clears only that. */
  holder = '';
  inbox: InboxStream | null = null;
  closed = false;
  /** Chat messages submitted and not yet acknowledged; barriers wait for them. */
  inflightChats: Promise<unknown> = Promise.resolve();
  /** Highest seq known delivered (handed to the AckWriter). */
  deliveredSeq = 0;
  /** Seqs up to this were delivered before this login (counting only: metrics). */
  deliveryBaseline = 0;
  /**
   * Legacy only: seqs sent to the connection, each with the connection's byte count once it was
   * queued, that the kernel is not yet known to have taken; they count as delivered then.
   */
  unflushed: { seq: number; end: number }[] = [];
  flushCheckArmed = false;

  private user: number | null = null;
  private readonly queue: unknown[] = [];
  private head = 0;
  private pumping = false;
  private inputPaused = false;

  constructor(
    readonly transport: SessionTransport,
    private readonly handle: (session: ChatSession, message: unknown) => Promise<void> | undefined,
    /** Bounds the chat messages this session may send (errno 8 beyond it). */
    readonly rateLimiter: RateLimiter,
  ) {}

  get kind(): CodecKind {
    return this.transport.kind;
  }

  get loggedIn(): boolean {
    return this.user !== null;
  }

  /** The logged-in user; null before login and after logout. */
  get userId(): number | null {
    return this.user;
  }

  set userId(id: number | null) {
    const was = this.user !== null;
    this.user = id;
    if (was !== (id !== null)) this.transport.loginChanged?.(id !== null);
  }

  send(message: object): void {
    if (!this.closed) this.transport.send(message);
  }

  /** A committed message for this user; the inbox stream orders and de-duplicates it. */
  offerPush(push: ChatPushView): void {
    this.inbox?.offer(push);
  }

  /**
   * Requests run in arrival order. Chat messages return without waiting for their commit (group
   * commit keeps their order), so a client can pipeline them; every other request is a barrier.
   */
  enqueue(message: unknown): void {
    this.queue.push(message);
    if (!this.inputPaused && this.queue.length - this.head > kQueueHigh) {
      this.inputPaused = true;
      this.transport.pauseInput();
    }
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    while (this.head < this.queue.length && !this.closed) {
      const message = this.queue[this.head];
      this.queue[this.head++] = undefined;
      if (this.head >= 4096) {
        // Compact now and then so a long-lived busy session does not grow its queue forever.
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      const barrier = this.handle(this, message);
      if (barrier !== undefined) await barrier;
      if (this.inputPaused && this.queue.length - this.head < kQueueLow) {
        this.inputPaused = false;
        this.transport.resumeInput();
      }
    }
    this.queue.length = 0;
    this.head = 0;
    this.pumping = false;
  }
}
