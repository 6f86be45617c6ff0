/** Loopback: the local Nginx of a cluster, the tests and the benches all connect from it. */
export const DEFAULT_TRUSTED_ADDRESSES: readonly string[] = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

export interface ConnectionLimitsOptions {
  /** Connections in total. Default 100 000 (and never more than `descriptorBudget`). */
  maxConnections?: number;
  /** Connections per source address; 0 = no limit. Default 256. Trusted addresses are exempt. */
  maxPerAddress?: number;
  /** Addresses exempt from the per-address limit. Default loopback (DEFAULT_TRUSTED_ADDRESSES). */
  trustedAddresses?: readonly string[];
  /**
   * Connections the process can hold without running out of file descriptors (see
   * descriptorBudget.ts); undefined = unknown, only `maxConnections` applies.
   */
  descriptorBudget?: number;
}

export const kDefaultMaxConnections = 100_000;
export const kDefaultMaxConnectionsPerAddress = 256;

/** Why a connection was refused; null = admitted. */
export type Refusal = 'connection limit' | 'descriptor limit' | 'per-address limit';

/**
 * Admission control at accept time: a total cap (kept below the descriptor limit, so accept never
 * runs the process out of descriptors) and a cap per source address. `admit` counts what it
 * admits; `leave` must follow for each of those.
 */
export class ConnectionLimits {
  readonly maxConnections: number;
  readonly maxPerAddress: number;
  private readonly trusted: ReadonlySet<string>;
  private readonly descriptorBudget: number;
  private readonly perAddress = new Map<string, number>();
  private total = 0;

  constructor(options: ConnectionLimitsOptions = {}) {
    this.maxConnections = options.maxConnections ?? kDefaultMaxConnections;
    this.maxPerAddress = options.maxPerAddress ?? kDefaultMaxConnectionsPerAddress;
    this.trusted = new Set(options.trustedAddresses ?? DEFAULT_TRUSTED_ADDRESSES);
    this.descriptorBudget = options.descriptorBudget ?? Number.POSITIVE_INFINITY;
  }

  get count(): number {
    return this.total;
  }

  isTrusted(ip: string): boolean {
    return this.trusted.has(ip);
  }

  /** Counts the connection and returns null, or returns why it must be refused (not counted). */
  admit(ip: string): Refusal | null {
    if (this.total >= this.maxConnections) return 'connection limit';
    if (this.total >= this.descriptorBudget) return 'descriptor limit';
    const limited = this.maxPerAddress > 0 && !this.trusted.has(ip);
    const mine = this.perAddress.get(ip) ?? 0;
    if (limited && mine >= this.maxPerAddress) return 'per-address limit';
    this.total++;
    if (limited) this.perAddress.set(ip, mine + 1);
    return null;
  }

  /** An admitted connection closed. */
  leave(ip: string): void {
    this.total--;
    const mine = this.perAddress.get(ip);
    if (mine === undefined) return;
    if (mine <= 1) this.perAddress.delete(ip);
    else this.perAddress.set(ip, mine - 1);
  }
}
