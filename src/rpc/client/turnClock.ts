/**
 * performance.now() read once per turn of JavaScript work: calls made in one turn (say, the
 * continuations of a batch of responses) share one reading, as the timers of one loop iteration
 * share libuv's loop time. A reading costs ~50 ns on this machine; sharing it measured +6% calls/s
 * at 256 in flight (bench/rpc). The reading is dropped by a nextTick, which runs once the current
 * callback and the promise jobs it queued are done, before Node waits for I/O again; and it is
 * taken again after `kMaxUses` uses, so that a long burst of calls in one turn does not
 * shorten the deadlines of its last calls by more than the time of a few dozen calls.
 */
const kMaxUses = 64;

let cached = 0;
let uses = kMaxUses;
let forgetQueued = false;

const forget = (): void => {
  uses = kMaxUses;
  forgetQueued = false;
};

export function turnNow(): number {
  if (uses < kMaxUses) {
    uses++;
    return cached;
  }
  cached = performance.now();
  uses = 1;
  if (!forgetQueued) {
    forgetQueued = true;
    process.nextTick(forget);
  }
  return cached;
}
