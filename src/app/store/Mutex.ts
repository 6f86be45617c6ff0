/**
 * A FIFO async mutex. Unlock hands the lock straight to the next waiter, so a waiter can never
 * be overtaken by a `tryLock` that happens between the unlock and the waiter's wake-up.
 */
export class Mutex {
  private locked = false;
  private readonly waiters: (() => void)[] = [];

  /** Takes the lock synchronously when it is free (the fast path: no promise, no tick). */
  tryLock(): boolean {
    if (this.locked) return false;
    this.locked = true;
    return true;
  }

  lock(): Promise<void> {
    if (this.tryLock()) return Promise.resolve();
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  unlock(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.locked = false;
  }
}
