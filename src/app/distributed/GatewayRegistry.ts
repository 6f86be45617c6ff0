/**
 * The gateway registry in ZooKeeper: every chat-gateway keeps one ephemeral node
 *
 *   <root>/gateways/<gateway id>   JSON GatewayRecord {id, host, port, connections, updatedAt, pid}
 *
 * where host:port is the address clients use. The node lives as long as the gateway's ZooKeeper
 * session: a gateway that dies (even SIGKILL) disappears once its session times out, one that
 * stops cleanly removes it at once. Discovering clients read the list and its connection counts
 * (GatewayDirectory) to pick the least-loaded gateway; other components use its 'removed' event
 * to learn that a gateway is gone.
 */
import { EventEmitter } from 'node:events';
import {
  type ChildChange,
  ChildWatch,
  decodeJsonNode,
  encodeJsonNode,
  putEphemeral,
  RegistrationUpkeep,
  type ZkSession,
} from '../../rpc/index.js';

export interface GatewayRecord {
  /** The gateway's server id (its presence name in Redis), also the node's name. */
  id: string;
  /** Where clients connect (the listen address, or the gateway's --advertise). */
  host: string;
  port: number;
  /** Client connections open when it last reported. */
  connections: number;
  /** Epoch ms of that report (a report is written only when the count changed). */
  updatedAt: number;
  pid: number;
  /** The incarnation whose presence keys this gateway holds (RedisCluster's epoch); '' if none. */
  epoch: string;
}

export function gatewaysPath(root: string): string {
  return `${root}/gateways`;
}

export function gatewayPath(root: string, id: string): string {
  return `${gatewaysPath(root)}/${id}`;
}

/** Why `id` cannot name a gateway node, or null when it can. */
export function gatewayIdProblem(id: string): string | null {
  if (id === '' || id === '.' || id === '..' || id.includes('/') || id.length > 200) {
    return `gateway id '${id}' cannot name a ZooKeeper node (no '/', not empty, at most 200 characters)`;
  }
  return null;
}

export function encodeGateway(record: GatewayRecord): globalThis.Buffer {
  return encodeJsonNode(record);
}

/** Parses a gateway node's data; null when it is not a usable record. */
export function decodeGateway(key: string, data: globalThis.Buffer): GatewayRecord | null {
  const r = decodeJsonNode<GatewayRecord>(data);
  if (r === null || typeof r.host !== 'string' || r.host === '' || !Number.isInteger(r.port)) return null;
  const port = r.port as number;
  if (port < 1 || port > 65535) return null;
  const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
  return {
    id: key,
    host: r.host,
    port,
    connections: n(r.connections),
    updatedAt: n(r.updatedAt),
    pid: n(r.pid),
    epoch: typeof r.epoch === 'string' ? r.epoch : '',
  };
}

// ------------------------------------------------------------------ the gateway's side

export interface GatewayRegistrarOptions {
  session: ZkSession;
  /** Registry root (chat-gateway's --registry-root). */
  root: string;
  id: string;
  /** The address clients use. */
  host: string;
  port: number;
  /** The current client connection count. */
  connections: () => number;
  /** Shortest time between two reports of the count. Default 1000 ms. */
  reportIntervalMs?: number;
  /** The current presence epoch, written in every record. Default ''. */
  epoch?: () => string;
  /** A registration or report failed (it is retried). */
  onError?: (error: unknown) => void;
}

/**
 * Keeps this gateway's node in place (again after every new session) and its connection count
 * current: checked every `reportIntervalMs`, written only when it changed.
 */
export class GatewayRegistrar {
  private readonly path: string;
  private readonly upkeep: RegistrationUpkeep;
  private reported = -1;

  constructor(private readonly options: GatewayRegistrarOptions) {
    const problem = gatewayIdProblem(options.id);
    if (problem !== null) throw new Error(problem);
    this.path = gatewayPath(options.root, options.id);
    this.upkeep = new RegistrationUpkeep({
      session: options.session,
      register: this.register,
      report: this.report,
      intervalMs: options.reportIntervalMs ?? 1000,
      onError: (error) => options.onError?.(error),
    });
  }

  /** Connects and registers; rejects when ZooKeeper stays unreachable or the write fails. */
  async start(connectTimeoutMs: number): Promise<void> {
    if (!(await this.upkeep.start(connectTimeoutMs))) {
      throw new Error(`cannot register gateway ${this.options.id} in ZooKeeper`);
    }
  }

  /** Removes the node (clients stop choosing this gateway at once); the session stays open. */
  async stop(): Promise<void> {
    await this.upkeep.stop();
    const session = this.options.session;
    if (session.connected) await session.remove(this.path).catch(() => {});
  }

  private record(connections: number): GatewayRecord {
    return {
      id: this.options.id,
      host: this.options.host,
      port: this.options.port,
      connections,
      updatedAt: Date.now(),
      pid: process.pid,
      epoch: this.options.epoch?.() ?? '',
    };
  }

  private readonly register = async (): Promise<void> => {
    const session = this.options.session;
    await session.ensurePath(gatewaysPath(this.options.root));
    const connections = this.options.connections();
    await putEphemeral(session, this.path, encodeGateway(this.record(connections)));
    this.reported = connections;
  };

  /** The connection count, written when it changed (a failure re-registers, which writes it). */
  private readonly report = async (): Promise<boolean> => {
    const connections = this.options.connections();
    if (connections === this.reported) return true;
    this.reported = connections;
    return this.options.session.setData(this.path, encodeGateway(this.record(connections)));
  };
}

// ------------------------------------------------------------------ everyone else's side

export interface GatewayDirectoryEvents {
  /** A gateway registered (or was found by the first listing). */
  added: (gateway: GatewayRecord) => void;
  /** Its record changed (its connection count). */
  updated: (gateway: GatewayRecord) => void;
  /**
   * Its node is gone: it stopped, or its ZooKeeper session ended (it died, or lost ZooKeeper
   * for longer than its session timeout). `gateway` is its last known record.
   */
  removed: (gateway: GatewayRecord) => void;
}

/**
 * The live gateways, kept current by ZooKeeper watches. Events are emitted in the order the
 * changes were seen; after a ZooKeeper outage, what changed meanwhile is reported once the
 * session is back. `list()` never waits on ZooKeeper.
 *
 *   const gateways = new GatewayDirectory(session, '/mprpc');
 *   gateways.on('removed', (g) => releaseUsersOf(g.id));
 */
export class GatewayDirectory {
  private readonly emitter = new EventEmitter();
  private readonly watch: ChildWatch<GatewayRecord>;
  private readonly ready: Promise<void>;

  constructor(session: ZkSession, root: string) {
    let resolveReady!: () => void;
    this.ready = new Promise((resolve) => {
      resolveReady = resolve;
    });
    this.watch = new ChildWatch(session, gatewaysPath(root), decodeGateway, (changes) => {
      resolveReady();
      this.publish(changes);
    });
    session.start();
  }

  on<K extends keyof GatewayDirectoryEvents>(event: K, listener: GatewayDirectoryEvents[K]): () => void {
    this.emitter.on(event, listener);
    return () => this.emitter.off(event, listener);
  }

  /** The first listing has arrived. */
  get known(): boolean {
    return this.watch.known;
  }

  /** The live gateways as last seen (empty before the first listing). */
  list(): GatewayRecord[] {
    return this.watch.values();
  }

  get(id: string): GatewayRecord | undefined {
    return this.watch.get(id);
  }

  /** Resolves once the first listing has arrived; rejects after `timeoutMs`. */
  waitKnown(timeoutMs: number): Promise<void> {
    if (this.watch.known) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no gateway listing from ZooKeeper within ${timeoutMs} ms`)),
        timeoutMs,
      );
      void this.ready.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops watching (the session is its owner's to close). */
  close(): void {
    this.watch.close();
    this.emitter.removeAllListeners();
  }

  private publish(changes: readonly ChildChange<GatewayRecord>[]): void {
    for (const change of changes) this.emitter.emit(change.type, change.value);
  }
}
