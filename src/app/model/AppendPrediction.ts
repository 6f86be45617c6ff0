import type { NewMessage } from './types.js';

/** Past this many users known, the prediction starts over (a bound on its memory). */
const MAX_USERS = 200_000;
/** After a wrong guess, this many appends read first (another writer is probably at work). */
const APPENDS_AFTER_MISS = 64;

/**
 * What this process expects the store to hold once the appends it has sent commit: the last mid
 * and the last seq of each recipient it has seen. While this process is the only writer, that is
 * exactly right, and an append need not read before writing (appendPredicted). Guards in the
 * transaction catch any wrong guess, so being wrong costs a retry, never a wrong row.
 */
export class AppendPrediction {
  lastMid: number | null = null;
  readonly lastSeq = new Map<number, number>();
  private readsLeft = 0;

  /** Whether an append of `batch` may skip reading: everything it needs is known. */
  covers(batch: readonly NewMessage[]): boolean {
    if (this.lastMid === null) return false;
    if (this.readsLeft > 0) {
      this.readsLeft--;
      return false;
    }
    for (const m of batch) for (const id of m.recipients) if (!this.lastSeq.has(id)) return false;
    return true;
  }

  /**
   * An append was sent: once it commits, the users in `written` hold those seqs and mids end at
   * `lastMid`; `read` (what a reading append found) teaches the seqs of the other users it saw.
   */
  learn(written: ReadonlyMap<number, number>, lastMid: number, read?: ReadonlyMap<number, number>): void {
    if (this.lastSeq.size > MAX_USERS) this.lastSeq.clear();
    if (read !== undefined) for (const [id, seq] of read) this.lastSeq.set(id, seq);
    for (const [id, seq] of written) this.lastSeq.set(id, seq);
    this.lastMid = lastMid;
  }

  /** An append failed, so what it taught may never happen: forget everything. */
  forget(): void {
    this.lastSeq.clear();
    this.lastMid = null;
  }

  /** A guess was wrong: forget, and read for a while. */
  missed(): void {
    this.forget();
    this.readsLeft = APPENDS_AFTER_MISS;
  }
}
