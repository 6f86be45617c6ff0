/**
 * Publishes service implementations on one TCP port, in both wire formats (detected per
 * connection), and registers them in ZooKeeper when given one. The TypeScript face of the classic
 * `RpcProvider::NotifyService` / `Run`.
 *
 *   const provider = new RpcProvider({ ...loadRpcConfig('test.conf') });
 *   provider.notifyService(root.lookupService('fixbug.UserServiceRpc'), { Login: async (req) => ({ ... }) });
 *   await provider.run();
 */
import type protobuf from 'protobufjs';
import type { Buffer as NetBuffer } from '../../net/Buffer.js';
import { EventLoop } from '../../net/EventLoop.js';
import type { InetAddress } from '../../net/InetAddress.js';
import type { TcpConnection } from '../../net/TcpConnection.js';
import { TcpServer } from '../../net/TcpServer.js';
import type { TimerId } from '../../net/TimerQueue.js';
import { RpcError } from '../errors.js';
import { describeService, type ServiceDescriptor } from '../proto.js';
import { DEFAULT_REGISTRY_ROOT } from '../registry/layout.js';
import { ProviderRegistrar } from '../registry/ProviderRegistrar.js';
import { ZkSession } from '../registry/ZkSession.js';
import type { ServiceImpl, ServiceShape, UntypedService } from '../types.js';
import { PREFACE_LENGTH } from '../wire/nativeFrame.js';
import { ClassicServerSession } from './ClassicServerSession.js';
import { MethodTable } from './MethodTable.js';
import { NativeServerSession } from './NativeServerSession.js';
import { ProviderStats } from './ProviderStats.js';
import { sniff } from './sniff.js';

export interface RpcProviderOptions {
  /** Listen address. Default '127.0.0.1' (the classic `rpcserverip`). */
  host?: string;
  /** Listen port; 0 picks a free one. Default 0. */
  port?: number;
  /** Address published in ZooKeeper. Default `host`, or 127.0.0.1 when `host` is a wildcard. */
  advertiseHost?: string;
  /** ZooKeeper "host:port[,…]"; without it nothing is registered. */
  zookeeper?: string;
  /** ZooKeeper session timeout. Default 30 000 ms (as the classic framework). */
  zkSessionTimeoutMs?: number;
  /** How long `run()` waits for ZooKeeper. Default 10 000 ms. */
  zkConnectTimeoutMs?: number;
  /** Root of the native registry layout. Default '/mprpc'. */
  registryRoot?: string;
  /** Accept classic mprpc connections on the same port. Default true. */
  serveClassic?: boolean;
  /** Also write the classic ZooKeeper layout (for classic consumers). Default true. */
  classicLayout?: boolean;
  /** Calls run at once per native connection before reading pauses. Default 1024. */
  maxInFlightPerConnection?: number;
  /** Socket output per connection above which reading pauses. Default 4 MiB. */
  maxPendingOutputBytes?: number;
  /** Largest request (native frame or classic args). Default 16 MiB. */
  maxFrameBytes?: number;
  /** Check handler results against the response type before encoding. Default true. */
  verifyResponses?: boolean;
  /** How often the load in ZooKeeper is refreshed (when it changed). Default 1000 ms. */
  loadReportIntervalMs?: number;
  /** A connection that has not sent its first bytes by then is closed. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Told about classic-call failures and registry trouble (they are not thrown). Default: none. */
  onError?: (error: Error) => void;
  loop?: EventLoop;
  name?: string;
}

type Session = NativeServerSession | ClassicServerSession | TimerId;

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

export class RpcProvider {
  readonly stats = new ProviderStats();
  private readonly table = new MethodTable();
  private readonly loop: EventLoop;
  private readonly server: TcpServer;
  private readonly opts: Required<
    Omit<RpcProviderOptions, 'zookeeper' | 'advertiseHost' | 'onError' | 'loop' | 'name'>
  >;
  private readonly sessions = new Map<TcpConnection, Session>();
  private registrar: ProviderRegistrar | null = null;
  private zk: ZkSession | null = null;
  private listening: InetAddress | null = null;
  private advertised = '';
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(private readonly options: RpcProviderOptions = {}) {
    this.loop = options.loop ?? EventLoop.default();
    this.opts = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      zkSessionTimeoutMs: options.zkSessionTimeoutMs ?? 30_000,
      zkConnectTimeoutMs: options.zkConnectTimeoutMs ?? 10_000,
      registryRoot: options.registryRoot ?? DEFAULT_REGISTRY_ROOT,
      serveClassic: options.serveClassic ?? true,
      classicLayout: options.classicLayout ?? true,
      maxInFlightPerConnection: options.maxInFlightPerConnection ?? 1024,
      maxPendingOutputBytes: options.maxPendingOutputBytes ?? 4 * 1024 * 1024,
      maxFrameBytes: options.maxFrameBytes ?? 16 * 1024 * 1024,
      verifyResponses: options.verifyResponses ?? true,
      loadReportIntervalMs: options.loadReportIntervalMs ?? 1000,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    };
    this.server = new TcpServer({
      name: options.name ?? 'RpcProvider',
      host: this.opts.host,
      port: this.opts.port,
      loop: this.loop,
      noDelay: true,
    });
    this.server.setConnectionCallback(this.onConnection);
    this.server.setMessageCallback(this.onFirstBytes);
  }

  /** Publishes `impl` as `service` (a protobufjs Service or its descriptor). Returns this. */
  notifyService<S extends ServiceShape<S> = UntypedService>(
    service: protobuf.Service | ServiceDescriptor,
    impl: ServiceImpl<S>,
  ): this {
    if (this.state === 'stopping' || this.state === 'stopped') {
      throw new RpcError('CONFIG_ERROR', 'provider is stopped');
    }
    const descriptor = 'shortName' in service ? service : describeService(service);
    this.table.add(descriptor, impl as Readonly<Record<string, unknown>>);
    this.registrar?.addService(descriptor).catch((error: unknown) => this.report(error));
    return this;
  }

  /** The bound address, once running. */
  get address(): InetAddress | null {
    return this.listening;
  }

  /** "ip:port" as published in ZooKeeper. */
  get advertisedAddress(): string {
    return this.advertised;
  }

  /** The ZooKeeper session (for tools and tests), when registering. */
  get zookeeperSession(): ZkSession | null {
    return this.zk;
  }

  /** Starts listening and, with `zookeeper`, registers every service; resolves with the address. */
  async run(): Promise<InetAddress> {
    if (this.state !== 'new') throw new RpcError('CONFIG_ERROR', 'run() may be called once');
    this.state = 'running';
    const address = await this.server.start();
    this.listening = address;
    const host = this.options.advertiseHost ?? (WILDCARDS.has(this.opts.host) ? '127.0.0.1' : this.opts.host);
    this.advertised = `${host}:${address.port}`;
    if (this.options.zookeeper !== undefined) {
      this.zk = new ZkSession({
        connect: this.options.zookeeper,
        sessionTimeoutMs: this.opts.zkSessionTimeoutMs,
      });
      this.registrar = new ProviderRegistrar({
        session: this.zk,
        root: this.opts.registryRoot,
        host,
        port: address.port,
        classicLayout: this.opts.classicLayout,
        protocols: this.opts.serveClassic ? ['native', 'classic'] : ['native'],
        loadReportIntervalMs: this.opts.loadReportIntervalMs,
        stats: this.stats,
        onError: (error) => this.report(error),
      });
      try {
        await this.registrar.start(this.table.services(), this.opts.zkConnectTimeoutMs);
      } catch (error) {
        await this.stop({ graceMs: 0 });
        throw error instanceof RpcError
          ? error
          : new RpcError('UNAVAILABLE', `cannot register in ZooKeeper: ${String(error)}`, { cause: error });
      }
    }
    return address;
  }

  /**
   * Leaves the registry first (so consumers stop choosing us), tells native callers to send no
   * more calls (GOAWAY), runs every call they sent before they read it and waits for them to
   * close their connections, for up to `graceMs`; then closes what is left.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    const until = Date.now() + (options.graceMs ?? 5000);
    await this.registrar?.stop().catch((error: unknown) => this.report(error));
    // Resolves only once every connection is closed (net.Server.close): not awaited here.
    const listenerClosed = this.server.stopAccepting();
    for (const session of this.sessions.values()) {
      if (session instanceof NativeServerSession) session.goAway('provider is shutting down');
    }
    // Answers to running calls must go out before the connections are half-closed, and calls
    // still on the wire when the GOAWAY left must find the connection open: a native caller
    // closes it itself once its last call is answered.
    while ((this.stats.inFlight > 0 || this.nativeCallersLeft()) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.server.stop({ graceMs: Math.max(0, until - Date.now()) });
    await listenerClosed;
    this.state = 'stopped';
  }

  private nativeCallersLeft(): boolean {
    for (const session of this.sessions.values()) {
      if (session instanceof NativeServerSession && session.open) return true;
    }
    return false;
  }

  private report(error: unknown): void {
    this.options.onError?.(error instanceof Error ? error : new Error(String(error)));
  }

  private readonly onConnection = (conn: TcpConnection): void => {
    if (conn.connected) {
      if (this.state !== 'running') {
        conn.forceClose();
        return;
      }
      // A connection must say which format it speaks in time, or it only holds a slot.
      const timer = this.loop.runAfter(this.opts.handshakeTimeoutMs, () => {
        if (this.sessions.get(conn) === timer) conn.forceClose();
      });
      this.sessions.set(conn, timer);
      return;
    }
    const session = this.sessions.get(conn);
    this.sessions.delete(conn);
    if (session instanceof NativeServerSession || session instanceof ClassicServerSession) session.onClosed();
    else if (session !== undefined) this.loop.cancel(session);
  };

  private readonly onFirstBytes = (conn: TcpConnection, input: NetBuffer): void => {
    const kind = sniff(input);
    if (kind === 'more') return;
    const timer = this.sessions.get(conn);
    if (
      timer !== undefined &&
      !(timer instanceof NativeServerSession || timer instanceof ClassicServerSession)
    ) {
      this.loop.cancel(timer);
    }
    if (kind === 'native') {
      input.retrieve(PREFACE_LENGTH);
      const session = new NativeServerSession(conn, this.loop, this.table, this.stats, {
        maxInFlight: this.opts.maxInFlightPerConnection,
        maxFrameBytes: this.opts.maxFrameBytes,
        maxPendingOutputBytes: this.opts.maxPendingOutputBytes,
        verifyResponses: this.opts.verifyResponses,
      });
      this.sessions.set(conn, session);
      session.start(input);
    } else if (kind === 'classic' && this.opts.serveClassic) {
      const session = new ClassicServerSession(conn, this.table, this.stats, {
        maxFrameBytes: this.opts.maxFrameBytes,
        verifyResponses: this.opts.verifyResponses,
        onError: (peer, reason) =>
          this.report(new RpcError('BAD_REQUEST', `classic call from ${peer}: ${reason}`)),
      });
      this.sessions.set(conn, session);
      session.start(input);
    } else {
      this.sessions.delete(conn);
      input.retrieveAll();
      conn.reset();
    }
  };
}
