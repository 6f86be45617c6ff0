/** What the writer needs from the message model. */
export interface AckStore {
  ackMany(acks: ReadonlyMap<number, number>): Promise<void>;
}

/**
 * Coalesces the delivery acks of every session: one store write per `flushMs` for all users
 * together, not one per user (each lone write would be its own commit, with its own fsync).
 * Acks only move a cursor forward, so writes may overlap; they are still issued one at a time.
 */
export class AckWriter {
  /** userId → highest seq known delivered and not yet handed to the store. */
  private pending = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: AckStore,
    private readonly flushMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Records that `userId` has everything up to `seq`; written within `flushMs`. */
  note(userId: number, seq: number): void {
    const known = this.pending.get(userId);
    if (known !== undefined && known >= seq) return;
    this.pending.set(userId, seq);
    if (this.timer === null) this.timer = setTimeout(this.flushNow, this.flushMs).unref();
  }

  /** Writes what is pending now; resolves when every ack noted so far is written (or failed). */
  flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.size === 0) return this.writing;
    const batch = this.pending;
    this.pending = new Map();
    // Losing an ack only means a re-delivery the client de-duplicates by seq: report, go on.
    this.writing = this.writing.then(() => this.store.ackMany(batch)).catch(this.onError);
    return this.writing;
  }

  private readonly flushNow = (): void => {
    this.timer = null;
    void this.flush();
  };
}
