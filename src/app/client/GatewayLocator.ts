/**
 * Client-side discovery: the chat gateways registered in ZooKeeper (GatewayRegistry) and the
 * choice of one to connect to. Loaded only by clients given `discover` (it pulls in the
 * ZooKeeper client).
 *
 * The choice is the less loaded of two gateways drawn at random ("power of two choices"), where
 * load is the gateway's reported connection count plus the picks this process made since that
 * report. Why not simply the least loaded: counts are reported at most once a second, so many
 * clients starting at once all read the same counts and would all pick the same gateway (a
 * herd). Two random candidates keep any one gateway from taking the whole herd while still
 * steering away from the loaded ones; the local picks make one process's clients (a load
 * generator, a test) spread evenly between reports.
 */
import { parseZkHosts, ZkSession } from '../../rpc/index.js';
import { GatewayDirectory, type GatewayRecord } from '../distributed/GatewayRegistry.js';

export const DEFAULT_DISCOVERY_ROOT = '/mprpc';

/** How long a gateway the client just lost is avoided (it stays listed until its session ends). */
const AVOID_MS = 10_000;

export interface DiscoveryTarget {
  /** ZooKeeper connect string "host:port[,host:port…]". */
  connect: string;
  /** Registry root (the gateways' --registry-root). */
  root: string;
}

/** Parses `zk://HOST:PORT[,HOST:PORT…][/root]`; throws a message fit for a user when malformed. */
export function parseDiscoverUrl(url: string): DiscoveryTarget {
  const match = /^zk:\/\/([^/]+)(\/.*)?$/.exec(url.trim());
  if (match === null)
    throw new Error(`bad discovery address '${url}' (want zk://HOST:PORT[,HOST:PORT…][/root])`);
  const connect = match[1]!;
  if (parseZkHosts(connect) === null)
    throw new Error(`bad ZooKeeper address '${connect}' in '${url}' (want HOST:PORT[,HOST:PORT…])`);
  const root =
    match[2] === undefined || match[2] === '/' ? DEFAULT_DISCOVERY_ROOT : match[2].replace(/\/+$/, '');
  if (root.includes('//')) throw new Error(`bad registry root '${root}' in '${url}'`);
  return { connect, root };
}

export interface GatewayLocatorOptions {
  /** ZooKeeper session timeout of the locator. Default 10 000 ms. */
  sessionTimeoutMs?: number;
  /** Called when the last user released it (and it closed). */
  onClose?: () => void;
}

interface Tally {
  /** Picks since the gateway's last report. */
  picks: number;
  /** The report they are counted against. */
  updatedAt: number;
}

export class GatewayLocator {
  readonly target: DiscoveryTarget;
  private readonly session: ZkSession;
  private readonly directory: GatewayDirectory;
  private readonly tallies = new Map<string, Tally>();
  private readonly avoided = new Map<string, number>();
  private users = 0;
  private readonly onClose: (() => void) | undefined;

  constructor(target: DiscoveryTarget | string, options: GatewayLocatorOptions = {}) {
    this.target = typeof target === 'string' ? parseDiscoverUrl(target) : target;
    this.onClose = options.onClose;
    this.session = new ZkSession({
      connect: this.target.connect,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
    });
    this.directory = new GatewayDirectory(this.session, this.target.root);
  }

  /** The live gateways as last seen. */
  gateways(): GatewayRecord[] {
    return this.directory.list();
  }

  /**
   * A gateway to connect to (see the module comment), or null when none is listed. Gateways
   * marked with `avoid` are taken only when nothing else is listed.
   */
  pick(): GatewayRecord | null {
    const now = Date.now();
    const all = this.directory.list();
    const fresh = all.filter((g) => (this.avoided.get(g.id) ?? 0) <= now);
    const candidates = fresh.length > 0 ? fresh : all;
    if (candidates.length === 0) return null;
    let chosen = candidates[Math.floor(Math.random() * candidates.length)]!;
    if (candidates.length > 1) {
      const others = candidates.filter((g) => g !== chosen);
      const second = others[Math.floor(Math.random() * others.length)]!;
      const a = this.load(chosen);
      const b = this.load(second);
      if (b < a || (b === a && Math.random() < 0.5)) chosen = second;
    }
    this.tally(chosen).picks++;
    return chosen;
  }

  /** Resolves with a gateway once one is listed; rejects after `timeoutMs`. */
  async waitPick(timeoutMs: number): Promise<GatewayRecord> {
    const deadline = Date.now() + timeoutMs;
    await this.directory.waitKnown(timeoutMs);
    for (;;) {
      const gateway = this.pick();
      if (gateway !== null) return gateway;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no chat gateway registered under zk://${this.target.connect}${this.target.root}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 1000));
        const off = this.directory.on('added', done);
        function done(): void {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    }
  }

  /** The connection to `id` was lost: prefer the others for a while. */
  avoid(id: string): void {
    this.avoided.set(id, Date.now() + AVOID_MS);
  }

  /** Counts a user; `release` closes the session after the last one. */
  retain(): this {
    this.users++;
    return this;
  }

  async release(): Promise<void> {
    if (--this.users > 0) return;
    this.onClose?.();
    this.directory.close();
    await this.session.close();
  }

  private tally(gateway: GatewayRecord): Tally {
    let t = this.tallies.get(gateway.id);
    if (t === undefined || t.updatedAt !== gateway.updatedAt) {
      // A new report counts the connections our earlier picks made.
      t = { picks: 0, updatedAt: gateway.updatedAt };
      this.tallies.set(gateway.id, t);
    }
    return t;
  }

  private load(gateway: GatewayRecord): number {
    return gateway.connections + this.tally(gateway).picks;
  }
}

/** One locator per discovery address in this process, shared by its clients. */
const shared = new Map<string, GatewayLocator>();

/** The process's locator for `url` (created on first use); give it back with `release()`. */
export function sharedLocator(url: string): GatewayLocator {
  const target = parseDiscoverUrl(url);
  const key = `${target.connect}${target.root}`;
  let locator = shared.get(key);
  if (locator === undefined) {
    const created = new GatewayLocator(target, {
      onClose: () => {
        if (shared.get(key) === created) shared.delete(key);
      },
    });
    locator = created;
    shared.set(key, locator);
  }
  return locator.retain();
}
