import type { Functor, TimerCallback } from './Callbacks.js';
import { type TimerId, TimerQueue } from './TimerQueue.js';

/**
 * The reactor. Node already runs one event loop per process, so an EventLoop here is the
 * muduo-shaped face of it: queued functors, and timers multiplexed onto a single Node timer.
 * Every call happens on the loop thread, so `runInLoop` runs its functor at once.
 *
 * Differences from muduo, by necessity: there is no `loop()` to call (Node's loop is already
 * running) and no cross-thread `wakeup`; `quit()` cancels the loop's timers and queued
 * functors so that the process may exit once its sockets close.
 */
export class EventLoop {
  private static defaultLoop: EventLoop | null = null;

  private readonly timers = new TimerQueue();
  private pending: Functor[] = [];
  private pendingScheduled = false;
  private quitting = false;

  /** The process-wide loop used when no loop is passed explicitly. */
  static default(): EventLoop {
    EventLoop.defaultLoop ??= new EventLoop();
    return EventLoop.defaultLoop;
  }

  /** Runs `cb` now: on Node the caller is always on the loop's thread. */
  runInLoop(cb: Functor): void {
    if (this.quitting) return;
    cb();
  }

  /**
   * Runs `cb` after the current I/O callbacks finish (muduo's doPendingFunctors phase).
   * Functors queued together run together, in order, from one setImmediate.
   */
  queueInLoop(cb: Functor): void {
    if (this.quitting) return;
    this.pending.push(cb);
    if (!this.pendingScheduled) {
      this.pendingScheduled = true;
      setImmediate(this.runPending);
    }
  }

  /** Number of queued functors not yet run. */
  queueSize(): number {
    return this.pending.length;
  }

  /** Runs `cb` at wall-clock time `time` (a Date or epoch milliseconds). */
  runAt(time: Date | number, cb: TimerCallback): TimerId {
    const at = typeof time === 'number' ? time : time.getTime();
    return this.schedule(cb, at - Date.now(), 0);
  }

  runAfter(delayMs: number, cb: TimerCallback): TimerId {
    return this.schedule(cb, delayMs, 0);
  }

  runEvery(intervalMs: number, cb: TimerCallback): TimerId {
    if (!(intervalMs > 0)) throw new RangeError(`runEvery interval must be > 0, got ${intervalMs}`);
    return this.schedule(cb, intervalMs, intervalMs);
  }

  cancel(timerId: TimerId): void {
    this.timers.cancel(timerId);
  }

  /** Number of live timers (for leak checks). */
  timerCount(): number {
    return this.timers.size();
  }

  /** Cancels all timers and queued functors; later schedule calls are ignored. */
  quit(): void {
    this.quitting = true;
    this.timers.clear();
    this.pending = [];
  }

  isQuitting(): boolean {
    return this.quitting;
  }

  private schedule(cb: TimerCallback, delayMs: number, intervalMs: number): TimerId {
    const id = this.timers.add(cb, delayMs, intervalMs);
    if (this.quitting) this.timers.cancel(id);
    return id;
  }

  private readonly runPending = (): void => {
    this.pendingScheduled = false;
    // Swap first, like muduo: functors queued while running go to the next round.
    const functors = this.pending;
    this.pending = [];
    for (const functor of functors) functor();
  };
}
