/**
 * One provider address as the channel sees it: its connection, what the registry says about its
 * load, and local health. A provider that refused a connection or dropped one is "down" for a
 * back-off period (doubling up to a cap) and is skipped by the balancer meanwhile, so calls fail
 * over at once instead of each finding out again.
 */
import type { NativeConnection } from './NativeConnection.js';

export interface BackoffOptions {
  /** First down period after a failure. Default 250 ms. */
  initialMs: number;
  /** Longest down period. Default 5000 ms. */
  maxMs: number;
}

export class Endpoint {
  connection: NativeConnection | null = null;
  /** In-flight calls the provider reported to the registry (all its callers together). */
  reportedLoad = 0;
  private downUntil = 0;
  private backoffMs = 0;

  constructor(
    readonly key: string,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Our calls on this provider that have not settled. */
  get outstanding(): number {
    return this.connection?.outstanding ?? 0;
  }

  isDown(now: number): boolean {
    return now < this.downUntil;
  }

  markDown(now: number, backoff: BackoffOptions): void {
    this.backoffMs = this.backoffMs === 0 ? backoff.initialMs : Math.min(this.backoffMs * 2, backoff.maxMs);
    this.downUntil = now + this.backoffMs;
  }

  markUp(): void {
    this.backoffMs = 0;
    this.downUntil = 0;
  }
}

/**
 * Least loaded first: our calls outstanding there, or the provider's reported load (all its
 * callers) when that is higher; ties go round-robin from
 * `start` so that idle providers share low-concurrency traffic. `avoid` is skipped when there is
 * another choice (the provider the previous attempt failed on).
 */
export function pickEndpoint(
  endpoints: readonly Endpoint[],
  now: number,
  start: number,
  avoid: { key: string } | null,
): Endpoint | null {
  let best: Endpoint | null = null;
  let bestScore = Number.POSITIVE_INFINITY;
  let fallback: Endpoint | null = null;
  const n = endpoints.length;
  for (let i = 0; i < n; i++) {
    const ep = endpoints[(start + i) % n]!;
    if (ep.isDown(now) || (ep.connection !== null && !ep.connection.usable)) continue;
    if (avoid !== null && ep.key === avoid.key) {
      fallback = ep;
      continue;
    }
    // The reported load already counts our calls of its report time: do not add them twice.
    const score = Math.max(ep.outstanding, ep.reportedLoad);
    if (score < bestScore) {
      best = ep;
      bestScore = score;
    }
  }
  return best ?? fallback;
}

/** FNV-1a (32 bits) of `key` then `node`, finished with a murmur-style mix: the rendezvous weight. */
function rendezvousWeight(key: string, node: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xff, 0x01000193);
  for (let i = 0; i < node.length; i++) h = Math.imul(h ^ node.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * The usable endpoint with the highest rendezvous weight for `affinity` (highest random
 * weight hashing): every caller with the same provider list picks the same one, and a key
 * moves only when its endpoint goes. The endpoint to `avoid` (the last failed attempt) is
 * taken only when nothing else is usable.
 */
export function pickByAffinity(
  endpoints: readonly Endpoint[],
  now: number,
  affinity: string,
  avoid: { key: string } | null,
): Endpoint | null {
  let best: Endpoint | null = null;
  let bestWeight = -1;
  let fallback: Endpoint | null = null;
  for (const ep of endpoints) {
    if (ep.isDown(now) || (ep.connection !== null && !ep.connection.usable)) continue;
    if (avoid !== null && ep.key === avoid.key) {
      fallback = ep;
      continue;
    }
    const weight = rendezvousWeight(affinity, ep.key);
    if (weight > bestWeight) {
      best = ep;
      bestWeight = weight;
    }
  }
  return best ?? fallback;
}
