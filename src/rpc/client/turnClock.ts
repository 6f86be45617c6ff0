/**
 * performance.now() read once per turn of JavaScript work: calls made in one turn (say, the
 * continuations of a batch of responses) share one reading, as libuv's loop time is shared by
 * the timers of one loop iteration. A reading costs ~50 ns here, a large share of a call's cost at
 * high rates. The value is dropped by a nextTick, which runs once the current callback and the
 * promise jobs it queued are done, before Node goes back to waiting for I/O: it is never older
 * than the JavaScript work in progress.
 */
let cached = -1;

const forget = (): void => {
  cached = -1;
};

export function turnNow(): number {
  if (cached < 0) {
    cached = performance.now();
    process.nextTick(forget);
  }
  return cached;
}
