/** A connection holding input for an unfinished message, as the InputBudget sees it. */
export interface InputHolder {
  /** Bytes held for unfinished messages, as last reported to the budget. */
  heldBytes: number;
  /** When the unfinished message's first byte arrived (performance.now() ms); 0 = none started. */
  messageStartedAt: number;
  /** Closes the connection: it broke the budget or its message's deadline. */
  cut(reason: InputCutReason, detail: string): void;
}

export type InputCutReason = 'input budget' | 'message deadline';

export interface InputBudgetOptions {
  /** Bytes all connections together may hold for unfinished messages. Default 16 MiB. */
  maxTotalBytes?: number;
  /** A started message must be complete within this long; 0 disables. Default 5000 ms. */
  messageTimeoutMs?: number;
}

export const kDefaultMaxInputBytes = 16 * 1024 * 1024;
export const kDefaultMessageTimeoutMs = 5000;
/** Past the budget, holders are cut until the total is back under this share of it (hysteresis). */
const kRefillShare = 0.75;

/**
 * Bounds what hostile clients can park in memory and for how long: the bytes every connection
 * holds for unfinished messages (partial frames, a classic message without its `\0`) count
 * against one budget; past it the connections holding the most are closed first. A message that
 * has started must complete within `messageTimeoutMs` (slowloris), checked by `expire()`, which
 * the owner calls periodically. Connections holding nothing are not tracked at all, so the
 * usual case (whole messages per read) costs two comparisons per read.
 */
export class InputBudget {
  readonly maxTotalBytes: number;
  readonly messageTimeoutMs: number;
  private readonly holders = new Set<InputHolder>();
  private total = 0;

  constructor(options: InputBudgetOptions = {}) {
    this.maxTotalBytes = options.maxTotalBytes ?? kDefaultMaxInputBytes;
    this.messageTimeoutMs = options.messageTimeoutMs ?? kDefaultMessageTimeoutMs;
  }

  /** Bytes held for unfinished messages by all connections. */
  get totalBytes(): number {
    return this.total;
  }

  get holderCount(): number {
    return this.holders.size;
  }

  /**
   * After each read: `held` bytes are now kept for unfinished messages; `completed` tells whether
   * a message finished in this read (the bytes left over then belong to a message that started now).
   */
  update(holder: InputHolder, held: number, now: number, completed: boolean): void {
    const before = holder.heldBytes;
    if (held === 0) {
      if (before === 0) return;
      this.release(holder);
      return;
    }
    if (before === 0) this.holders.add(holder);
    if (before === 0 || completed || holder.messageStartedAt === 0) holder.messageStartedAt = now;
    holder.heldBytes = held;
    this.total += held - before;
    if (this.total > this.maxTotalBytes) this.cutLargest();
  }

  /** The holder keeps nothing any more (its message completed, or it is going away). */
  release(holder: InputHolder): void {
    if (holder.heldBytes === 0) return;
    this.total -= holder.heldBytes;
    holder.heldBytes = 0;
    holder.messageStartedAt = 0;
    this.holders.delete(holder);
  }

  /**
   * The server stopped reading this connection (its request queue is full): the client cannot
   * finish its message, so its deadline stops until `resume`. Its bytes still count.
   */
  pause(holder: InputHolder): void {
    holder.messageStartedAt = 0;
  }

  /** Reading again: an unfinished message gets a fresh deadline. */
  resume(holder: InputHolder, now: number): void {
    if (holder.heldBytes > 0) holder.messageStartedAt = now;
  }

  /** Cuts every holder whose message started more than `messageTimeoutMs` before `now`. */
  expire(now: number): void {
    if (this.messageTimeoutMs <= 0) return;
    const limit = now - this.messageTimeoutMs;
    const late: InputHolder[] = [];
    for (const holder of this.holders) {
      if (holder.messageStartedAt !== 0 && holder.messageStartedAt <= limit) late.push(holder);
    }
    for (const holder of late) {
      const age = Math.round(now - holder.messageStartedAt);
      this.release(holder);
      holder.cut(
        'message deadline',
        `message not complete ${age} ms after its first byte (limit ${this.messageTimeoutMs} ms)`,
      );
    }
  }

  /** Over budget (rare: an attack): close the biggest holders until comfortably under it. */
  private cutLargest(): void {
    const target = Math.floor(this.maxTotalBytes * kRefillShare);
    const biggestFirst = [...this.holders].sort((a, b) => b.heldBytes - a.heldBytes);
    for (const holder of biggestFirst) {
      if (this.total <= target) break;
      const held = holder.heldBytes;
      this.release(holder);
      holder.cut(
        'input budget',
        `holding ${held} bytes of unfinished messages while all connections held more than ${this.maxTotalBytes}`,
      );
    }
  }
}
