import type { TimerCallback } from './Callbacks.js';

/** Opaque handle for a scheduled timer; pass it to `cancel`. */
export class TimerId {
  /** @internal */
  constructor(
    readonly sequence: number,
    /** @internal */ readonly timer: Timer,
  ) {}
}

/** @internal One scheduled callback. `when` is on the monotonic clock (ms). */
export interface Timer {
  when: number;
  readonly interval: number;
  readonly sequence: number;
  readonly callback: TimerCallback;
  canceled: boolean;
  /** Index in the heap, -1 when not queued. */
  index: number;
}

const now = (): number => performance.now();

/**
 * All of a loop's timers in one binary min-heap, driven by a single Node timer armed for the
 * earliest expiry (muduo arms one timerfd the same way). Scheduling and cancelling cost
 * O(log n) and no Node handle, so 100k idle-connection timers stay cheap.
 */
export class TimerQueue {
  private readonly heap: Timer[] = [];
  private sequence = 0;
  private armed: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  private runningExpired = false;

  /** Schedules `callback` after `delayMs`, then every `intervalMs` when > 0. */
  add(callback: TimerCallback, delayMs: number, intervalMs = 0): TimerId {
    const timer: Timer = {
      when: now() + Math.max(0, delayMs),
      interval: Math.max(0, intervalMs),
      sequence: ++this.sequence,
      callback,
      canceled: false,
      index: -1,
    };
    this.push(timer);
    this.rearm();
    return new TimerId(timer.sequence, timer);
  }

  cancel(id: TimerId): void {
    const timer = id.timer;
    timer.canceled = true;
    if (timer.index >= 0) {
      this.removeAt(timer.index);
      if (!this.runningExpired) this.rearm();
    }
  }

  /** Number of pending timers (cancelled ones are removed eagerly). */
  size(): number {
    return this.heap.length;
  }

  /** Cancels every timer and releases the Node timer. */
  clear(): void {
    for (const timer of this.heap) {
      timer.canceled = true;
      timer.index = -1;
    }
    this.heap.length = 0;
    this.disarm();
  }

  private readonly onTimeout = (): void => {
    this.armed = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    const expiry = now();
    const expired: Timer[] = [];
    while (this.heap.length > 0 && this.heap[0]!.when <= expiry) {
      expired.push(this.removeAt(0));
    }
    this.runningExpired = true;
    try {
      for (const timer of expired) {
        if (timer.canceled) continue;
        if (timer.interval > 0) {
          // Re-queue before running so the callback may cancel its own repeating timer.
          timer.when = expiry + timer.interval;
          this.push(timer);
        }
        timer.callback();
      }
    } finally {
      this.runningExpired = false;
      this.rearm();
    }
  };

  private rearm(): void {
    const first = this.heap[0];
    if (first === undefined) {
      this.disarm();
      return;
    }
    if (this.armed !== null && this.armedAt <= first.when) return;
    this.disarm();
    this.armedAt = first.when;
    // Node timers have 1 ms resolution; an early wake-up finds nothing expired and re-arms.
    this.armed = setTimeout(this.onTimeout, Math.max(0, Math.ceil(first.when - now())));
  }

  private disarm(): void {
    if (this.armed !== null) clearTimeout(this.armed);
    this.armed = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  // ---- binary heap ordered by (when, sequence) ----

  private static before(a: Timer, b: Timer): boolean {
    return a.when < b.when || (a.when === b.when && a.sequence < b.sequence);
  }

  private push(timer: Timer): void {
    timer.index = this.heap.length;
    this.heap.push(timer);
    this.siftUp(timer.index);
  }

  private removeAt(index: number): Timer {
    const heap = this.heap;
    const removed = heap[index]!;
    const last = heap.pop()!;
    if (index < heap.length) {
      heap[index] = last;
      last.index = index;
      this.siftDown(index);
      this.siftUp(last.index);
    }
    removed.index = -1;
    return removed;
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    const timer = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!TimerQueue.before(timer, parent)) break;
      heap[index] = parent;
      parent.index = index;
      index = parentIndex;
    }
    heap[index] = timer;
    timer.index = index;
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    const size = heap.length;
    const timer = heap[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && TimerQueue.before(heap[right]!, heap[left]!) ? right : left;
      if (!TimerQueue.before(heap[child]!, timer)) break;
      heap[index] = heap[child]!;
      heap[index]!.index = index;
      index = child;
    }
    heap[index] = timer;
    timer.index = index;
  }
}
