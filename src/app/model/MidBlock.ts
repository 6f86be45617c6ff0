import type { SqlDriver } from '../store/SqlDriver.js';
import { takeMids } from './appendBatch.js';

/** Ids taken at once when the block runs out. */
const DEFAULT_BLOCK = 4096;

/**
 * Message ids for a writer that shares the store with other writers: a block of ids is taken
 * from the `messages.mid` counter in its own short transaction, then handed out locally, so
 * appends never hold the counter's row lock (which serialized every writer of the store until
 * its commit). Mids stay unique and grow within one writer; across writers their order no longer
 * follows commit order, and ids of a block that is not used up, or of a failed append, are skipped.
 */
export class MidBlock {
  /** Ids last + 1 … end are at hand. */
  private last = 0;
  private end = 0;
  private refill: Promise<void> | null = null;

  constructor(
    private readonly db: SqlDriver,
    private readonly size = DEFAULT_BLOCK,
  ) {}

  /**
   * Hands `n` ids to one append and returns the one before the first (it uses base + 1 … base + n).
   * `resync` moves the counter past MAX(mid) first (see takeMids). Runs outside the append's
   * transaction, so that no append holds a connection while another one fetches a block.
   */
  async allocate(n: number, resync = false): Promise<number> {
    if (resync) this.end = this.last;
    while (this.end - this.last < n) {
      this.refill ??= this.takeBlock(Math.max(n, this.size), resync).finally(() => {
        this.refill = null;
      });
      await this.refill;
    }
    const base = this.last;
    this.last += n;
    return base;
  }

  private async takeBlock(n: number, resync: boolean): Promise<void> {
    const end = await this.db.transaction((tx) => takeMids(tx, n, resync));
    this.last = end - n;
    this.end = end;
  }
}
