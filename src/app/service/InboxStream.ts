import type { InboxEntry } from '../model/types.js';
import type { ChatPushView } from '../protocol/views.js';

/** Pushes one logged-in user's inbox to their connection, in seq order, with no gaps. */
export interface InboxSource {
  readInbox(userId: number, afterSeq: number, limit: number): Promise<InboxEntry[]>;
}

const kPageSize = 256;

export function pushFromEntry(e: InboxEntry): ChatPushView {
  return e.kind === 'one'
    ? {
        msgid: 6,
        mid: e.mid,
        seq: e.seq,
        id: e.sender,
        name: e.senderName,
        toid: e.target,
        msg: e.body,
        time: e.time,
      }
    : {
        msgid: 10,
        mid: e.mid,
        seq: e.seq,
        id: e.sender,
        name: e.senderName,
        groupid: e.target,
        msg: e.body,
        time: e.time,
      };
}

/**
 * The store is the source of truth; notifications are hints. A notification for exactly the
 * next seq is pushed straight away (the common case, no query); anything else — a gap after
 * a lost or reordered notification, a login with history — is repaired by reading the inbox.
 *
 * Reading the inbox goes at the pace of the connection (`backpressure`): a long backlog is not
 * dumped into the socket faster than the client reads it, which would trip the slow-reader
 * limit at every login and leave the backlog undeliverable.
 */
export class InboxStream {
  private pulling = false;
  private repull = false;
  private closed = false;

  constructor(
    private readonly userId: number,
    private lastPushed: number,
    private readonly source: InboxSource,
    private readonly sink: (push: ChatPushView) => void,
    private readonly onError: (error: unknown) => void,
    /** Undefined when more may be pushed now, else resolves when it may. */
    private readonly backpressure: () => Promise<void> | undefined = () => undefined,
  ) {}

  get lastPushedSeq(): number {
    return this.lastPushed;
  }

  offer(push: ChatPushView): void {
    if (this.closed || push.seq <= this.lastPushed) return;
    if (this.pulling) {
      this.repull = true;
      return;
    }
    if (push.seq === this.lastPushed + 1) {
      this.lastPushed = push.seq;
      this.sink(push);
      return;
    }
    void this.catchUp();
  }

  /** Reads and pushes everything after the last pushed seq. */
  async catchUp(): Promise<void> {
    if (this.closed) return;
    if (this.pulling) {
      this.repull = true;
      return;
    }
    this.pulling = true;
    try {
      do {
        this.repull = false;
        for (;;) {
          const entries = await this.source.readInbox(this.userId, this.lastPushed, kPageSize);
          for (const entry of entries) {
            if (this.closed) return;
            if (entry.seq <= this.lastPushed) continue;
            this.lastPushed = entry.seq;
            this.sink(pushFromEntry(entry));
            const wait = this.backpressure();
            if (wait !== undefined) await wait;
          }
          if (entries.length < kPageSize) break;
        }
      } while (this.repull && !this.closed);
    } catch (error) {
      this.onError(error);
    } finally {
      this.pulling = false;
    }
  }

  close(): void {
    this.closed = true;
  }
}
