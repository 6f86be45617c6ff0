import { readdirSync, readFileSync } from 'node:fs';

/**
 * Descriptors kept free beyond the connections (a quarter of the limit, 16 to 64): the store's
 * pool growing, the SQLite worker's files, refused connections held for their ERROR reply, logs.
 */
function reserveFor(limit: number): number {
  return Math.min(64, Math.max(16, Math.floor(limit / 4)));
}

/**
 * How many connections this process can accept without running out of file descriptors:
 * the soft RLIMIT_NOFILE minus what is open now minus a reserve. Undefined where /proc is
 * missing (not Linux): the connection limit alone applies then.
 *
 * Why: when accept(2) fails with EMFILE, libuv closes a spare descriptor it keeps, accepts the
 * pending connections and closes them at once, then reopens the spare (muduo's acceptor does
 * the same) — so Node never reports the error and nobody logs it, and while the process sits at
 * its limit every other open (the store, a file) fails too. Staying below the limit instead
 * makes the refusal visible (logged, framed clients told) and keeps the process whole.
 */
export interface DescriptorBudget {
  /** Connections that fit. */
  connections: number;
  /** Descriptors kept free beyond them (refused connections waiting for their ERROR use these). */
  spare: number;
}

export function descriptorBudget(): DescriptorBudget | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (line === null || line[1] === 'unlimited') return undefined;
    const limit = Number(line[1]);
    const open = readdirSync('/proc/self/fd').length;
    const spare = reserveFor(limit);
    return { connections: Math.max(1, limit - open - spare), spare };
  } catch {
    return undefined;
  }
}
