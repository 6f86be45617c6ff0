import {
  EventLoop,
  type InetAddress,
  LengthHeaderCodec,
  type TcpConnection,
  TcpServer,
} from '../../net/index.js';
import { Limits } from '../protocol/errno.js';
import { ChatService } from '../service/ChatService.js';
import type { ChatSession, CodecKind, SessionTransport } from '../service/ChatSession.js';
import { type DeliveryRouter, LocalDeliveryRouter } from '../service/DeliveryRouter.js';
import { LocalPresence, type Presence } from '../service/Presence.js';
import type { ChatServices } from '../services/ChatServices.js';
import { ChatConnection, type ConnectionHost } from './ChatConnection.js';
import type { Logger } from './logger.js';
import type { ChatMetrics } from './metrics.js';
import { type CloseReason, ServerObserver } from './ServerObserver.js';

export interface ChatServerOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 6000; 0 picks a free port. */
  port?: number;
  /** This server's identity in the store; its stale sessions are cleared on start. Default 'HOST:PORT'. */
  serverId?: string;
  /** Close framed connections silent for this long; 0 disables. Default 90 000 ms. */
  idleTimeoutMs?: number;
  /** Also apply the idle timeout to legacy connections. Default false. */
  idleTimeoutLegacy?: boolean;
  /** Pending output at which a slow reader is disconnected. Default 8 MiB. */
  highWaterMarkBytes?: number;
  /** Largest frame payload or legacy message. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Chat messages per second per session. Default 2000. */
  messagesPerSecond?: number;
  /** Cluster presence and routing; default single-node, in memory. */
  presence?: Presence;
  /** Where this server routes committed messages. Default: its local sessions. */
  router?: (presence: Presence) => DeliveryRouter;
  loop?: EventLoop;
  logger: Logger;
  /** Where counters and histograms go (`--metrics-port`). Default: none. */
  metrics?: ChatMetrics;
}

const kDefaultPort = 6000;

/** What the server hands the code that builds its services (they route to its presence). */
export interface ServicesWiring {
  presence: Presence;
  /** For metrics: a commit batch of `size` messages took `durationMs`. */
  onBatch: (size: number, durationMs: number) => void;
}

/**
 * The chat server: the net library's TcpServer in front, the ChatService behind, one
 * ChatConnection per client between them.
 */
export class ChatServer implements ConnectionHost {
  readonly service: ChatService;
  private readonly services: ChatServices;
  readonly maxMessageBytes: number;
  readonly framing: LengthHeaderCodec;
  /** Half the high-water mark: bulk sends pause there until drained, well before a slow reader is cut off. */
  readonly outputPauseBytes: number;
  private readonly tcp: TcpServer;
  private readonly loop: EventLoop;
  private readonly idleTimeoutMs: number;
  private readonly idleLegacy: boolean;
  private readonly highWaterMark: number;
  private readonly logger: Logger;
  private readonly closing = new Set<Promise<void>>();
  private readonly observer: ServerObserver;
  private stopping = false;
  readonly serverId: string;

  constructor(
    /** Builds the business services (in-process for chat-server, remote for chat-gateway). */
    makeServices: (wiring: ServicesWiring) => ChatServices,
    options: ChatServerOptions,
  ) {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? kDefaultPort;
    this.logger = options.logger;
    this.observer = new ServerObserver(options.logger, options.metrics ?? null);
    this.loop = options.loop ?? EventLoop.default();
    this.idleTimeoutMs = options.idleTimeoutMs ?? 90_000;
    this.idleLegacy = options.idleTimeoutLegacy ?? false;
    this.highWaterMark = options.highWaterMarkBytes ?? 8 * 1024 * 1024;
    this.outputPauseBytes = Math.max(1, Math.floor(this.highWaterMark / 2));
    this.maxMessageBytes = options.maxMessageBytes ?? Limits.MAX_MESSAGE_BYTES;
    this.framing = new LengthHeaderCodec((conn, frame) => (conn.context as ChatConnection).onFrame(frame), {
      maxFrameSize: this.maxMessageBytes,
      onError: (conn, error) => (conn.context as ChatConnection).reject(error),
    });
    this.serverId = options.serverId ?? `${host}:${port}`;
    const presence = options.presence ?? new LocalPresence();
    this.services = makeServices({
      presence,
      onBatch: (size, durationMs) => this.observer.batchCommitted(size, durationMs),
    });
    this.service = new ChatService(this.services, presence, {
      serverId: this.serverId,
      messagesPerSecond: options.messagesPerSecond,
      onError: (error, context) => this.observer.serviceError(error, context),
      events: this.observer,
    });
    this.service.setRouter(options.router ? options.router(presence) : new LocalDeliveryRouter(presence));
    this.tcp = new TcpServer({ name: 'chat', host, port, loop: this.loop, noDelay: true });
    this.tcp.setConnectionCallback(this.onConnection);
    this.tcp.setMessageCallback((conn, buffer, at) => (conn.context as ChatConnection).onBytes(buffer, at));
  }

  /** Clears this server's stale sessions (a previous crash), then listens. */
  async start(): Promise<InetAddress> {
    const stale = await this.services.users.resetServer(this.serverId);
    if (stale > 0) this.log('info', `marked ${stale} stale session(s) of ${this.serverId} offline`);
    return this.tcp.start();
  }

  get connectionCount(): number {
    return this.tcp.connectionCount;
  }

  /**
   * Graceful stop: no new connections, every accepted message committed and acknowledged,
   * output flushed, users marked offline. The store stays open (its owner closes it).
   */
  async stop(graceMs = 5000): Promise<void> {
    // Not awaited here: the listener's close completes only once every connection is gone,
    // which is what tcp.stop() below brings about.
    this.stopping = true;
    const notAccepting = this.tcp.stopAccepting();
    await this.service.flush();
    await this.tcp.stop({ graceMs });
    await notAccepting;
    await Promise.all(this.closing);
    // Requests read while the connections were closing: commit them before the store closes.
    await this.service.flush();
  }

  openSession(transport: SessionTransport): ChatSession {
    return this.service.openSession(transport);
  }

  log(level: 'debug' | 'info' | 'warn', message: string): void {
    this.logger.log(level, message);
  }

  codecChosen(peer: string, codec: CodecKind): void {
    this.observer.codecChosen(peer, codec);
  }

  forcedClose(chat: ChatConnection, reason: CloseReason): void {
    if (chat.closeReason !== null) return;
    chat.closeReason = reason;
    this.observer.forcedClose(chat.peer, chat.session?.userId ?? null, reason);
  }

  private readonly onConnection = (conn: TcpConnection): void => {
    if (conn.connected) {
      const chat = new ChatConnection(conn, this);
      conn.context = chat;
      this.observer.connectionUp(chat.peer, this.tcp.connectionCount);
      conn.setErrorCallback((_c, error) => {
        chat.closeReason ??= {
          code: 'socket_error',
          detail: (error as NodeJS.ErrnoException).code ?? error.message,
        };
      });
      conn.setHighWaterMarkCallback((c, pending) => {
        // A reader this slow would make us buffer without bound; its messages wait in its inbox.
        this.forcedClose(chat, { code: 'slow_reader', detail: `${pending} bytes pending` });
        c.forceClose();
      }, this.highWaterMark);
      if (this.idleTimeoutMs > 0) this.armIdle(conn, chat, this.idleTimeoutMs);
      return;
    }
    const chat = conn.context as ChatConnection;
    this.observer.connectionDown(
      {
        peer: chat.peer,
        codec: chat.codecIfKnown,
        userId: chat.session?.userId ?? null,
        openedAt: chat.openedAt,
      },
      chat.closeReason ?? { code: this.stopping ? 'server_stopping' : 'peer_closed' },
    );
    chat.onDown();
    if (chat.idleTimer !== null) this.loop.cancel(chat.idleTimer);
    if (chat.session !== null) {
      const closed = this.service.closeSession(chat.session);
      this.closing.add(closed);
      void closed.finally(() => this.closing.delete(closed));
    }
  };

  /** One TimerQueue entry per connection, re-armed lazily: activity costs nothing per message. */
  private armIdle(conn: TcpConnection, chat: ChatConnection, delayMs: number): void {
    chat.idleTimer = this.loop.runAfter(delayMs, () => {
      chat.idleTimer = null;
      if (!conn.connected) return;
      if (chat.kind === 'legacy' && !this.idleLegacy && chat.session !== null) return;
      const idle = performance.now() - chat.lastActive;
      if (idle >= this.idleTimeoutMs) {
        this.forcedClose(chat, { code: 'idle_timeout', detail: `silent for ${Math.round(idle)} ms` });
        conn.forceClose();
        return;
      }
      this.armIdle(conn, chat, this.idleTimeoutMs - idle);
    });
  }
}
