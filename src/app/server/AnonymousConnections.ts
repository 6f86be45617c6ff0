export const kDefaultMaxAnonymous = 4096;

/**
 * Connections that are silent or not logged in, bounded by count rather than by a timer: the
 * classic client connects, then waits at its menu (for minutes, sending nothing, no heartbeat),
 * so a short timer would cut it off. When there are more than `max`, the oldest is evicted;
 * `add` returns it for the caller to close. Insertion order is age (a Set keeps it).
 */
export class AnonymousConnections<T> {
  private readonly members = new Set<T>();

  constructor(readonly max: number = kDefaultMaxAnonymous) {}

  get size(): number {
    return this.members.size;
  }

  has(member: T): boolean {
    return this.members.has(member);
  }

  /** Adds `member` as the newest; returns the oldest when the cap is exceeded (already removed). */
  add(member: T): T | undefined {
    this.members.delete(member);
    this.members.add(member);
    if (this.members.size <= this.max) return undefined;
    const oldest = this.members.values().next().value as T;
    this.members.delete(oldest);
    return oldest;
  }

  remove(member: T): void {
    this.members.delete(member);
  }
}
