/**
 * Every pending call's deadline, driven by a single timer of the net library's EventLoop.
 *
 * Calls are kept in one FIFO list per timeout length (as Node keeps its own timer lists): within
 * a list deadlines only grow, so adding is an append and removing an unlink, both O(1) and
 * allocation-free (the call object is the list node). Almost every call of a channel uses the
 * same timeout, so there is usually one list. The timer is armed for the earliest list head and
 * is not re-armed when a head is removed: it wakes a little early, finds nothing due and re-arms,
 * so the common case never touches Node timers. Call `clear()` when done, or the armed timer
 * keeps the process up until it fires.
 */
import type { EventLoop } from '../../net/EventLoop.js';
import type { TimerId } from '../../net/TimerQueue.js';

export interface DeadlineEntry {
  /** `performance.now()` time; Infinity entries are never added. */
  deadline: number;
  /** @internal list links, null when not queued */
  deadlinePrev: DeadlineEntry | null;
  deadlineNext: DeadlineEntry | null;
  deadlineList: DeadlineList | null;
}

/** @internal */
export class DeadlineList {
  head: DeadlineEntry | null = null;
  tail: DeadlineEntry | null = null;
  constructor(readonly timeoutMs: number) {}
}

export class DeadlineQueue<T extends DeadlineEntry> {
  private readonly lists = new Map<number, DeadlineList>();
  private count = 0;
  private timer: TimerId | null = null;
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly loop: EventLoop,
    private readonly onExpired: (entry: T) => void,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Queues `entry`, whose deadline is `timeoutMs` (whole ms) after now. */
  add(entry: T, timeoutMs: number): void {
    let list = this.lists.get(timeoutMs);
    if (list === undefined) {
      list = new DeadlineList(timeoutMs);
      this.lists.set(timeoutMs, list);
    }
    const tail = list.tail;
    // Clock ties or an entry re-added late could break the order; fall back to an ordered insert.
    if (tail !== null && tail.deadline > entry.deadline) {
      this.insertSorted(list, entry);
    } else {
      entry.deadlinePrev = tail;
      entry.deadlineNext = null;
      if (tail === null) list.head = entry;
      else tail.deadlineNext = entry;
      list.tail = entry;
    }
    entry.deadlineList = list;
    this.count++;
    if (entry.deadline < this.armedAt) this.arm(entry.deadline);
  }

  remove(entry: T): void {
    const list = entry.deadlineList;
    if (list === null) return;
    const prev = entry.deadlinePrev;
    const next = entry.deadlineNext;
    if (prev === null) list.head = next;
    else prev.deadlineNext = next;
    if (next === null) list.tail = prev;
    else next.deadlinePrev = prev;
    entry.deadlinePrev = null;
    entry.deadlineNext = null;
    entry.deadlineList = null;
    this.count--;
  }

  /** Removes every entry without expiring it (channel shutdown) and stops the timer. */
  clear(): T[] {
    const all: T[] = [];
    for (const list of this.lists.values()) {
      while (list.head !== null) {
        const entry = list.head as T;
        this.remove(entry);
        all.push(entry);
      }
    }
    this.lists.clear();
    this.disarm();
    return all;
  }

  private insertSorted(list: DeadlineList, entry: T): void {
    let after = list.tail;
    while (after !== null && after.deadline > entry.deadline) after = after.deadlinePrev;
    const before = after === null ? list.head : after.deadlineNext;
    entry.deadlinePrev = after;
    entry.deadlineNext = before;
    if (after === null) list.head = entry;
    else after.deadlineNext = entry;
    if (before === null) list.tail = entry;
    else before.deadlinePrev = entry;
  }

  private arm(at: number): void {
    this.disarm();
    this.armedAt = at;
    this.timer = this.loop.runAfter(Math.max(0, at - performance.now()), this.onTimer);
  }

  private disarm(): void {
    if (this.timer !== null) this.loop.cancel(this.timer);
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [timeoutMs, list] of this.lists) {
      while (list.head !== null && list.head.deadline <= now) {
        const entry = list.head as T;
        this.remove(entry);
        this.onExpired(entry);
      }
      if (list.head === null) this.lists.delete(timeoutMs);
      else next = Math.min(next, list.head.deadline);
    }
    // onExpired may have added entries (and armed): keep the earlier of the two.
    if (next < this.armedAt) this.arm(next);
  };
}
