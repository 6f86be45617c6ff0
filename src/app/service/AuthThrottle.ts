export interface AuthThrottleOptions {
  /** Failed logins one address may make on one account before it must wait. Default 5. */
  failuresPerAccount?: number;
  /** Failed logins one address may make on all accounts together before it must wait. Default 20. */
  failuresPerAddress?: number;
  /** The first wait; each further failure doubles it. Default 1000 ms. */
  baseDelayMs?: number;
  /** The longest wait. Default 15 minutes. */
  maxDelayMs?: number;
  /** A counter with no failure for this long starts over. Default 15 minutes. */
  forgetAfterMs?: number;
  /** Registrations one address may make at once. Default 20. */
  registrationBurst?: number;
  /** Registrations one address may make per minute, sustained. Default 10. */
  registrationsPerMinute?: number;
  /** Addresses exempt from the per-address limits (a local proxy). Default: none. */
  isTrusted?: (address: string) => boolean;
  /** Most counters kept per kind; the least recently touched go first. Default 100 000. */
  maxEntries?: number;
}

interface Failures {
  count: number;
  last: number;
  lockedUntil: number;
}

interface Bucket {
  tokens: number;
  last: number;
}

/**
 * Slows down password guessing and account farming, in memory (per process).
 *
 * Failed logins are counted per (account, source address) and per source address. Past the free
 * failures, each further failure locks that counter for `baseDelayMs`, doubling up to
 * `maxDelayMs`; a locked login is refused (errno 8, with the wait) without checking the
 * password, so it tells the guesser nothing and costs no scrypt. The account is never locked
 * as such: its owner on another address is not shut out by someone else's failures. A success
 * clears that (account, address) counter, not the address's. Registrations are a token bucket
 * per address. Trusted addresses (a proxy every client shares) are not throttled at all: behind
 * a proxy an (account, address) lock would be a lock on the account, which anyone could set off.
 */
export class AuthThrottle {
  private readonly failuresPerAccount: number;
  private readonly failuresPerAddress: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly forgetAfterMs: number;
  private readonly registrationBurst: number;
  private readonly registrationsPerMs: number;
  private readonly isTrusted: (address: string) => boolean;
  private readonly maxEntries: number;
  private readonly byAccount = new Map<string, Failures>();
  private readonly byAddress = new Map<string, Failures>();
  private readonly registrations = new Map<string, Bucket>();

  constructor(options: AuthThrottleOptions = {}) {
    this.failuresPerAccount = options.failuresPerAccount ?? 5;
    this.failuresPerAddress = options.failuresPerAddress ?? 20;
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 15 * 60_000;
    this.forgetAfterMs = options.forgetAfterMs ?? 15 * 60_000;
    this.registrationBurst = options.registrationBurst ?? 20;
    this.registrationsPerMs = (options.registrationsPerMinute ?? 10) / 60_000;
    this.isTrusted = options.isTrusted ?? (() => false);
    this.maxEntries = options.maxEntries ?? 100_000;
  }

  /** Milliseconds `address` must wait before trying `account` again; 0 = it may try now. */
  loginWait(account: number, address: string, now = performance.now()): number {
    if (this.isTrusted(address)) return 0;
    const mine = this.current(this.byAccount, accountKey(account, address), now);
    const wait = mine === undefined ? 0 : mine.lockedUntil - now;
    const all = this.current(this.byAddress, address, now);
    return Math.max(0, wait, all === undefined ? 0 : all.lockedUntil - now);
  }

  loginFailed(account: number, address: string, now = performance.now()): void {
    if (this.isTrusted(address)) return;
    this.fail(this.byAccount, accountKey(account, address), this.failuresPerAccount, now);
    this.fail(this.byAddress, address, this.failuresPerAddress, now);
  }

  loginSucceeded(account: number, address: string): void {
    this.byAccount.delete(accountKey(account, address));
  }

  /** Takes a registration for `address`: 0, or the milliseconds until it may register again. */
  takeRegistration(address: string, now = performance.now()): number {
    if (this.isTrusted(address)) return 0;
    let bucket = this.registrations.get(address);
    if (bucket === undefined) {
      bucket = { tokens: this.registrationBurst, last: now };
    } else {
      this.registrations.delete(address);
      bucket.tokens = Math.min(
        this.registrationBurst,
        bucket.tokens + (now - bucket.last) * this.registrationsPerMs,
      );
      bucket.last = now;
    }
    this.touch(this.registrations, address, bucket);
    if (bucket.tokens < 1) return Math.ceil((1 - bucket.tokens) / this.registrationsPerMs);
    bucket.tokens -= 1;
    return 0;
  }

  /** The counter under `key`, unless it has been quiet long enough to be forgotten. */
  private current(map: Map<string, Failures>, key: string, now: number): Failures | undefined {
    const entry = map.get(key);
    if (entry === undefined) return undefined;
    if (now - entry.last >= this.forgetAfterMs && now >= entry.lockedUntil) {
      map.delete(key);
      return undefined;
    }
    return entry;
  }

  private fail(map: Map<string, Failures>, key: string, free: number, now: number): void {
    const entry = this.current(map, key, now) ?? { count: 0, last: now, lockedUntil: 0 };
    map.delete(key);
    entry.count++;
    entry.last = now;
    if (entry.count >= free) {
      const doublings = Math.min(30, entry.count - free);
      entry.lockedUntil = now + Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** doublings);
    }
    this.touch(map, key, entry);
  }

  /** (Re)inserts as the most recent entry; past `maxEntries` the least recent one goes. */
  private touch<V>(map: Map<string, V>, key: string, value: V): void {
    map.set(key, value);
    if (map.size > this.maxEntries) map.delete(map.keys().next().value as string);
  }
}

function accountKey(account: number, address: string): string {
  return `${account}@${address}`;
}
