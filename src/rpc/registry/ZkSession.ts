/**
 * A ZooKeeper session that outlives session expiry: node-zookeeper-client's Client is dead once
 * its session expires, so this wrapper replaces it with a fresh one and tells its users
 * (`onSession` hooks) to put their ephemeral nodes and watches back. Operations are promises
 * bounded by `opTimeoutMs`, because the client queues them for as long as ZooKeeper is away.
 */
import { EventEmitter } from 'node:events';
import * as zookeeper from 'node-zookeeper-client';
import { RpcError } from '../errors.js';
import { patchZkClient } from './zkClientFixes.js';

export interface ZkSessionOptions {
  /** "host:port[,host:port…]", as node-zookeeper-client takes it. */
  connect: string;
  /** Requested session timeout. Default 30 000 ms (the classic framework's). */
  sessionTimeoutMs?: number;
  /** Longest wait for one operation (while disconnected, operations queue). Default 5000 ms. */
  opTimeoutMs?: number;
  /** Upper bound of the random delay between reconnect attempts. Default 200 ms. */
  spinDelayMs?: number;
}

export type ZkWatcher = (event: zookeeper.Event) => void;

export interface Credentials {
  sessionId: globalThis.Buffer;
  password: globalThis.Buffer;
}
export type SessionHook = () => void;

export interface ZkData {
  data: globalThis.Buffer;
  stat: zookeeper.Stat;
}

type ZkCallback<T> = (error: Error | zookeeper.Exception | null, result: T) => void;

const { Exception } = zookeeper;

function codeOf(error: unknown): number | undefined {
  return error instanceof Exception ? error.getCode() : undefined;
}

export function isNoNode(error: unknown): boolean {
  return codeOf(error) === Exception.NO_NODE;
}

export function isNodeExists(error: unknown): boolean {
  return codeOf(error) === Exception.NODE_EXISTS;
}

/**
 * Events: 'connected' (a server answered, same or new session), 'disconnected', 'expired'
 * (the old session and its ephemeral nodes are gone; a new session follows), 'session'
 * (a new session or client is up, after the hooks ran).
 */
export class ZkSession extends EventEmitter {
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  private readonly opTimeoutMs: number;
  private readonly spinDelayMs: number;
  private client: zookeeper.Client | null = null;
  private isConnected = false;
  private closed = false;
  private probe: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private lastCredentials: Credentials | null = null;
  private readonly hooks: SessionHook[] = [];
  /** Counts sessions: a watch set under an older session is dead and must not be trusted. */
  generation = 0;

  constructor(options: ZkSessionOptions) {
    super();
    // One 'connected'/'session' listener per watched directory (ChildWatch): no fixed cap.
    this.setMaxListeners(0);
    this.connectString = options.connect;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 30_000;
    this.opTimeoutMs = options.opTimeoutMs ?? 5000;
    this.spinDelayMs = options.spinDelayMs ?? 200;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** The current session's id and password (to take the session over in tests and tools). */
  credentials(): Credentials | null {
    if (this.client === null || !this.isConnected) return null;
    return { sessionId: this.client.getSessionId(), password: this.client.getSessionPassword() };
  }

  /** Runs `hook` on every new session (the first one included, if it is already up: now). */
  onSession(hook: SessionHook): void {
    this.hooks.push(hook);
    if (this.isConnected) hook();
  }

  /** Starts connecting (in the background; reconnects forever until `close`). */
  start(): void {
    if (this.client !== null || this.closed) return;
    this.newClient();
    // A tiny request now and then, so that a session ended behind our back is noticed (a reply
    // saying so, see replaceExpired; or no reply at all, zkClientFixes.ts fix 4) even when
    // nothing else is asked of ZooKeeper.
    this.probe = setInterval(
      () => {
        if (this.isConnected) this.exists('/').catch(() => {});
      },
      Math.max(250, Math.floor(this.sessionTimeoutMs / 3)),
    );
    this.probe.unref();
  }

  /** Resolves once connected; rejects with UNAVAILABLE after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<void> {
    this.start();
    if (this.isConnected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('connected', onConnected);
        reject(
          new RpcError('UNAVAILABLE', `ZooKeeper ${this.connectString} not reachable within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const onConnected = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.once('connected', onConnected);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probe !== null) clearInterval(this.probe);
    this.disarmWatchdog();
    const client = this.client;
    this.client = null;
    this.isConnected = false;
    if (client === null) return;
    // Our listeners ignore a client that is no longer current; the library's own must stay.
    // close() is queued behind pending requests; do not wait for ever if ZooKeeper is away.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      client.once('disconnected', () => {
        clearTimeout(timer);
        resolve();
      });
      client.close();
    });
  }

  /**
   * A new client object; with `resume`, it asks for the given session back (ZooKeeper grants it
   * if the session is still alive, otherwise answers "expired"). Watches belong to the client
   * object, so hooks run on the first connect of every client: watches and registrations are
   * put back (both are idempotent).
   */
  private newClient(resume: Credentials | null = null): void {
    // sessionId/sessionPassword are real options of the library that its typings omit.
    const options = {
      sessionTimeout: this.sessionTimeoutMs,
      spinDelay: this.spinDelayMs,
      retries: 0,
      ...(resume === null ? {} : { sessionId: resume.sessionId, sessionPassword: resume.password }),
    } as unknown as zookeeper.Option;
    const client = zookeeper.createClient(this.connectString, options);
    patchZkClient(client);
    this.client = client;
    let first = true;
    client.on('connected', () => {
      if (this.client !== client) return;
      this.isConnected = true;
      this.disarmWatchdog();
      this.lastCredentials = { sessionId: client.getSessionId(), password: client.getSessionPassword() };
      this.emit('connected');
      if (first) {
        first = false;
        this.generation++;
        for (const hook of this.hooks) hook();
        this.emit('session');
      }
    });
    client.on('disconnected', () => {
      if (this.client !== client) return;
      this.isConnected = false;
      this.armWatchdog(client);
      this.emit('disconnected');
    });
    client.on('expired', () => this.replaceExpired(client));
    this.armWatchdog(client);
    client.connect();
  }

  /**
   * Belt and braces for zkClientFixes.ts: if a client stays disconnected this long, replace it
   * by one that resumes the session (node-zookeeper-client 1.1.3 has been seen never to
   * reconnect after a server restart).
   */
  private armWatchdog(client: zookeeper.Client): void {
    this.disarmWatchdog();
    const delay = Math.max(1000, Math.min(5000, Math.floor(this.sessionTimeoutMs / 4)));
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      if (this.client !== client || this.isConnected || this.closed) return;
      this.client = null;
      client.close();
      this.newClient(this.lastCredentials);
    }, delay);
    this.watchdog.unref();
  }

  private disarmWatchdog(): void {
    if (this.watchdog !== null) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  /**
   * The session is gone, and its ephemeral nodes with it: start a new one (hooks run once it is
   * up). The client reports this when it reconnects (also after its read timeout dropped a
   * connection ZooKeeper left open but silent, zkClientFixes.ts fix 4); operations failing with
   * SESSION_EXPIRED land here too.
   */
  private replaceExpired(client: zookeeper.Client): void {
    if (this.client !== client || this.closed) return;
    this.isConnected = false;
    this.client = null;
    this.lastCredentials = null;
    client.close();
    this.emit('expired');
    this.newClient();
  }

  private op<T>(
    name: string,
    path: string,
    run: (client: zookeeper.Client, cb: ZkCallback<T>) => void,
  ): Promise<T> {
    const client = this.client;
    if (client === null || this.closed) {
      return Promise.reject(new RpcError('UNAVAILABLE', `ZooKeeper session closed (${name} ${path})`));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new RpcError('UNAVAILABLE', `ZooKeeper ${name} ${path} timed out after ${this.opTimeoutMs} ms`),
        );
      }, this.opTimeoutMs);
      run(client, (error, result) => {
        clearTimeout(timer);
        if (error) {
          if (codeOf(error) === Exception.SESSION_EXPIRED) this.replaceExpired(client);
          reject(error);
        } else {
          resolve(result);
        }
      });
    });
  }

  /** Creates a node; resolves false when it already exists. */
  async create(path: string, data: globalThis.Buffer | null, mode: number): Promise<boolean> {
    try {
      await this.op<string>('create', path, (c, cb) =>
        c.create(path, data ?? globalThis.Buffer.alloc(0), mode, cb),
      );
      return true;
    } catch (error) {
      if (isNodeExists(error)) return false;
      throw error;
    }
  }

  /** Creates `path` and its missing parents as persistent nodes. */
  async ensurePath(path: string): Promise<void> {
    await this.op<string>('mkdirp', path, (c, cb) => c.mkdirp(path, cb));
  }

  async remove(path: string): Promise<void> {
    try {
      await this.op<null>('remove', path, (c, cb) => c.remove(path, -1, (e) => cb(e, null)));
    } catch (error) {
      if (!isNoNode(error)) throw error;
    }
  }

  /** Children of `path`, or null when it does not exist. */
  async getChildren(path: string, watcher?: ZkWatcher): Promise<string[] | null> {
    try {
      return await this.op<string[]>('getChildren', path, (c, cb) =>
        watcher ? c.getChildren(path, watcher, cb) : c.getChildren(path, cb),
      );
    } catch (error) {
      if (isNoNode(error)) return null;
      throw error;
    }
  }

  /** Data and stat of `path`, or null when it does not exist. */
  async getData(path: string, watcher?: ZkWatcher): Promise<ZkData | null> {
    try {
      return await this.op<ZkData>('getData', path, (c, cb) => {
        const done = (
          e: Error | zookeeper.Exception | null,
          data: globalThis.Buffer,
          stat: zookeeper.Stat,
        ): void => cb(e, { data: data ?? globalThis.Buffer.alloc(0), stat });
        if (watcher) c.getData(path, watcher, done);
        else c.getData(path, done);
      });
    } catch (error) {
      if (isNoNode(error)) return null;
      throw error;
    }
  }

  /** Stat of `path` or null; with a watcher, fires when it is created, changed or deleted. */
  async exists(path: string, watcher?: ZkWatcher): Promise<zookeeper.Stat | null> {
    const stat = await this.op<zookeeper.Stat | null>('exists', path, (c, cb) =>
      watcher ? c.exists(path, watcher, cb) : c.exists(path, cb),
    );
    return stat ?? null;
  }

  /** Sets data; resolves false when the node is gone. */
  async setData(path: string, data: globalThis.Buffer): Promise<boolean> {
    try {
      await this.op<zookeeper.Stat>('setData', path, (c, cb) => c.setData(path, data, -1, cb));
      return true;
    } catch (error) {
      if (isNoNode(error)) return false;
      throw error;
    }
  }

  /** This session's id as ZooKeeper reports it in `stat.ephemeralOwner`. */
  ownsEphemeral(stat: zookeeper.Stat): boolean {
    const client = this.client;
    return client !== null && stat.ephemeralOwner.equals(client.getSessionId());
  }
}
