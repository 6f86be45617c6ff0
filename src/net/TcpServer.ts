import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server, type Socket } from 'node:net';
import {
  type ConnectionCallback,
  defaultConnectionCallback,
  defaultMessageCallback,
  type MessageCallback,
  type WriteCompleteCallback,
} from './Callbacks.js';
import { EventLoop } from './EventLoop.js';
import { InetAddress } from './InetAddress.js';
import { TcpConnection } from './TcpConnection.js';

export interface TcpServerOptions {
  /** Used in connection names and logs. Default `'TcpServer'`. */
  name?: string;
  /** Address to listen on. Default `'0.0.0.0'`. */
  host?: string;
  /** Port to listen on; 0 picks a free one, reported by `start()`. Default 0. */
  port?: number;
  /** Loop for timers and queued functors. Default `EventLoop.default()`. */
  loop?: EventLoop;
  /** Disable Nagle on accepted sockets. Default `false` (as muduo). */
  noDelay?: boolean;
  /** listen(2) backlog. Default 511 (Node's). */
  backlog?: number;
}

export interface StopOptions {
  /** How long connections get to flush and close before being forced. Default 5000 ms. */
  graceMs?: number;
}

interface WorkerMessage {
  muduoTs: 'listening';
  server: string;
  port: number;
}

const kWorkerIndexEnv = 'MUDUO_TS_WORKER_INDEX';

function isWorkerMessage(message: unknown): message is WorkerMessage {
  return (
    typeof message === 'object' && message !== null && (message as WorkerMessage).muduoTs === 'listening'
  );
}

/**
 * Accepts connections and hands each to user callbacks as a TcpConnection.
 *
 * `setThreadNum(n)` with n > 0 becomes n worker *processes* (node:cluster) sharing the listen
 * socket: muduo's one loop per thread turns into one loop per process, because a Node
 * process has one loop. Workers share nothing in memory; the same script runs in each of
 * them, so build the server the same way everywhere and let `start()` decide the role.
 */
export class TcpServer {
  readonly name: string;
  readonly loop: EventLoop;
  private readonly host: string;
  private readonly port: number;
  private readonly noDelay: boolean;
  private readonly backlog: number;
  private threadNum = 0;
  private server: Server | null = null;
  private listenAddress: InetAddress | null = null;
  private nextConnId = 1;
  private readonly connectionsByName = new Map<string, TcpConnection>();
  private readonly workers = new Set<Worker>();
  private stopping = false;
  /** Set while `stop()` waits for the last connection to close. */
  private onDrained: (() => void) | null = null;

  private connectionCallback: ConnectionCallback = defaultConnectionCallback;
  private messageCallback: MessageCallback = defaultMessageCallback;
  private writeCompleteCallback: WriteCompleteCallback | null = null;
  private acceptErrorCallback: ((error: Error) => void) | null = null;

  constructor(options: TcpServerOptions = {}) {
    this.name = options.name ?? 'TcpServer';
    this.host = options.host ?? '0.0.0.0';
    this.port = options.port ?? 0;
    this.loop = options.loop ?? EventLoop.default();
    this.noDelay = options.noDelay ?? false;
    this.backlog = options.backlog ?? 511;
  }

  setConnectionCallback(cb: ConnectionCallback): void {
    this.connectionCallback = cb;
  }

  setMessageCallback(cb: MessageCallback): void {
    this.messageCallback = cb;
  }

  setWriteCompleteCallback(cb: WriteCompleteCallback | null): void {
    this.writeCompleteCallback = cb;
  }

  /**
   * Told about errors of the listening socket once it listens (an accept that failed, e.g. EMFILE
   * when libuv's spare descriptor is gone); the server keeps accepting. Default: a process warning.
   */
  setAcceptErrorCallback(cb: ((error: Error) => void) | null): void {
    this.acceptErrorCallback = cb;
  }

  /** Number of worker processes; 0 (default) serves from this process. Call before `start`. */
  setThreadNum(n: number): void {
    if (!Number.isInteger(n) || n < 0)
      throw new RangeError(`thread number must be a non-negative integer: ${n}`);
    this.threadNum = n;
  }

  /** The address being listened on, once started. */
  get address(): InetAddress | null {
    return this.listenAddress;
  }

  get connectionCount(): number {
    return this.connectionsByName.size;
  }

  connections(): IterableIterator<TcpConnection> {
    return this.connectionsByName.values();
  }

  /**
   * In a worker process started by `setThreadNum`, its index 0..n-1 (kept by a replacement
   * when a worker dies); null elsewhere.
   */
  static workerIndex(): number | null {
    const raw = cluster.isWorker ? process.env[kWorkerIndexEnv] : undefined;
    return raw === undefined ? null : Number(raw);
  }

  /** Whether this process forked workers for this server (and so serves nothing itself). */
  get isSupervisor(): boolean {
    return this.workers.size > 0;
  }

  /** Starts listening (or forks the workers) and resolves with the bound address. */
  start(): Promise<InetAddress> {
    if (this.threadNum > 0 && cluster.isPrimary) return this.startWorkers();
    return this.listen();
  }

  /**
   * Stops accepting, lets every connection flush its output and half-close, and forces the
   * stragglers after `graceMs`. In a supervisor, asks each worker to stop (SIGTERM).
   */
  async stop(options: StopOptions = {}): Promise<void> {
    const graceMs = options.graceMs ?? 5000;
    if (this.workers.size > 0) {
      this.stopping = true;
      await this.stopWorkers(graceMs);
      return;
    }
    const closed = this.stopAccepting();
    for (const conn of this.connectionsByName.values()) conn.shutdown();
    if (this.connectionsByName.size > 0) {
      await new Promise<void>((resolve) => {
        const forceTimer = setTimeout(() => {
          for (const conn of this.connectionsByName.values()) conn.forceClose();
        }, graceMs);
        this.onDrained = () => {
          clearTimeout(forceTimer);
          this.onDrained = null;
          resolve();
        };
      });
    }
    await closed;
  }

  /** Closes the listening socket; established connections carry on. Part of `stop()`. */
  stopAccepting(): Promise<void> {
    this.stopping = true;
    const server = this.server;
    this.server = null;
    return server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
  }

  private listen(): Promise<InetAddress> {
    return new Promise((resolve, reject) => {
      const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: this.noDelay });
      server.on('connection', this.newConnection);
      server.once('error', reject);
      server.listen({ host: this.host, port: this.port, backlog: this.backlog }, () => {
        server.off('error', reject);
        server.on('error', (error) => {
          if (this.acceptErrorCallback !== null) this.acceptErrorCallback(error);
          else process.emitWarning(`${this.name}: ${error.message}`);
        });
        const bound = server.address();
        const port = typeof bound === 'object' && bound !== null ? bound.port : this.port;
        this.listenAddress = new InetAddress(this.host, port);
        if (cluster.isWorker)
          process.send?.({ muduoTs: 'listening', server: this.name, port } satisfies WorkerMessage);
        resolve(this.listenAddress);
      });
      this.server = server;
    });
  }

  private readonly newConnection = (socket: Socket): void => {
    if (this.stopping || socket.remoteAddress === undefined) {
      socket.destroy();
      return;
    }
    const name = `${this.name}-${this.listenAddress?.toIpPort() ?? ''}#${this.nextConnId++}`;
    const conn = new TcpConnection(this.loop, name, socket);
    this.connectionsByName.set(name, conn);
    conn.setConnectionCallback(this.connectionCallback);
    conn.setMessageCallback(this.messageCallback);
    conn.setWriteCompleteCallback(this.writeCompleteCallback);
    conn.setCloseCallback(this.removeConnection);
    conn.connectEstablished();
  };

  private readonly removeConnection = (conn: TcpConnection): void => {
    this.connectionsByName.delete(conn.name);
    if (this.connectionsByName.size === 0) this.onDrained?.();
  };

  private startWorkers(): Promise<InetAddress> {
    return new Promise((resolve, reject) => {
      let listening = 0;
      const onMessage = (worker: Worker, message: unknown): void => {
        if (!isWorkerMessage(message) || message.server !== this.name || !this.workers.has(worker)) return;
        listening += 1;
        if (listening === this.threadNum) {
          this.listenAddress = new InetAddress(this.host, message.port);
          resolve(this.listenAddress);
        }
      };
      const fork = (index: number): void => {
        const worker = cluster.fork({ [kWorkerIndexEnv]: String(index) });
        this.workers.add(worker);
        worker.once('exit', (code, signal) => {
          this.workers.delete(worker);
          if (this.stopping) return;
          if (listening < this.threadNum) {
            reject(
              new Error(`${this.name}: worker exited before listening (code ${code}, signal ${signal})`),
            );
            return;
          }
          // A crashed worker is replaced so the server keeps its process count.
          process.emitWarning(
            `${this.name}: worker ${worker.process.pid} died (${signal ?? code}); restarting`,
          );
          listening -= 1;
          fork(index);
        });
      };
      cluster.on('message', onMessage);
      for (let i = 0; i < this.threadNum; i++) fork(i);
    });
  }

  private async stopWorkers(graceMs: number): Promise<void> {
    const exits = [...this.workers].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          const kill = setTimeout(() => worker.process.kill('SIGKILL'), graceMs + 1000);
          worker.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    this.workers.clear();
  }
}
