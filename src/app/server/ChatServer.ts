import {
  EventLoop,
  type InetAddress,
  LengthHeaderCodec,
  type TcpConnection,
  TcpServer,
  type TimerId,
} from '../../net/index.js';
import { Limits } from '../protocol/errno.js';
import type { AuthThrottleOptions } from '../service/AuthThrottle.js';
import { ChatService } from '../service/ChatService.js';
import type { ChatSession, CodecKind, SessionTransport } from '../service/ChatSession.js';
import { type DeliveryRouter, LocalDeliveryRouter } from '../service/DeliveryRouter.js';
import { LocalPresence, type Presence } from '../service/Presence.js';
import type { ChatServices } from '../services/ChatServices.js';
import { AnonymousConnections } from './AnonymousConnections.js';
import { ChatConnection, type ConnectionHost } from './ChatConnection.js';
import { ConnectionLimits, type ConnectionLimitsOptions } from './ConnectionLimits.js';
import { descriptorBudget } from './descriptorBudget.js';
import { InputBudget } from './InputBudget.js';
import { kDefaultLegacyPacing, type LegacyPacing } from './LegacyOutbox.js';
import type { Logger } from './logger.js';
import type { ChatMetrics } from './metrics.js';
import { type SecurityEvent, SecurityLog } from './SecurityLog.js';
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
  /** A started message must be complete within this long, every codec; 0 = none. Default 5000 ms. */
  messageTimeoutMs?: number;
  /** Bytes all connections may hold for unfinished messages. Default 16 MiB. */
  maxInputBytes?: number;
  /** Largest classic (legacy) message. Default 64 KiB. */
  maxLegacyMessageBytes?: number;
  /** Total and per-address connection caps (ConnectionLimits' defaults), kept below the descriptor limit. */
  connectionLimits?: Omit<ConnectionLimitsOptions, 'descriptorBudget'>;
  /** Connections silent or not logged in; beyond it the oldest is closed. Default 4096. */
  maxAnonymousConnections?: number;
  /** Failed-login and registration limits; `isTrusted` defaults to the connection limits' trusted addresses. */
  authThrottle?: AuthThrottleOptions;
  /** Least time between two writes to one classic (legacy) session. Default 2 ms. */
  legacyGapMs?: number;
  /** Largest write to a classic session, `\0` included (its `recv` buffer). Default 1024. */
  legacyWriteBytes?: number;
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
/** A classic request is small (a 4 KiB message escaped is ~25 KiB of JSON): 64 KiB is plenty. */
const kDefaultMaxLegacyMessageBytes = 64 * 1024;
/** Refused connections held at once to send their ERROR; more are closed without a word. */
const kMaxRefusedWaiting = 64;

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
  readonly highWaterMarkBytes: number;
  readonly legacyPacing: LegacyPacing;
  private readonly tcp: TcpServer;
  private readonly loop: EventLoop;
  private readonly idleTimeoutMs: number;
  private readonly idleLegacy: boolean;
  private readonly logger: Logger;
  private readonly closing = new Set<Promise<void>>();
  private readonly observer: ServerObserver;
  private stopping = false;
  readonly serverId: string;
  readonly maxLegacyMessageBytes: number;
  readonly inputBudget: InputBudget;
  readonly security: SecurityLog;
  private readonly limits: ConnectionLimits;
  private readonly anonymous: AnonymousConnections<ChatConnection>;
  /** Refused connections waiting (≤ 1 s) to be told why; beyond kMaxRefusedWaiting they are just closed. */
  private refusedWaiting = 0;
  private readonly maxRefusedWaiting: number;
  private deadlineSweep: TimerId | null = null;

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
    this.highWaterMarkBytes = options.highWaterMarkBytes ?? 8 * 1024 * 1024;
    this.outputPauseBytes = Math.max(1, Math.floor(this.highWaterMarkBytes / 2));
    this.legacyPacing = {
      gapMs: options.legacyGapMs ?? kDefaultLegacyPacing.gapMs,
      maxWriteBytes: options.legacyWriteBytes ?? kDefaultLegacyPacing.maxWriteBytes,
    };
    this.maxMessageBytes = options.maxMessageBytes ?? Limits.MAX_MESSAGE_BYTES;
    this.maxLegacyMessageBytes = options.maxLegacyMessageBytes ?? kDefaultMaxLegacyMessageBytes;
    this.security = new SecurityLog(this.logger);
    this.inputBudget = new InputBudget({
      maxTotalBytes: options.maxInputBytes,
      messageTimeoutMs: options.messageTimeoutMs,
    });
    const descriptors = descriptorBudget();
    this.limits = new ConnectionLimits({
      ...options.connectionLimits,
      descriptorBudget: descriptors?.connections,
    });
    // Refused connections waiting for their ERROR hold descriptors too: at most half the spare ones.
    this.maxRefusedWaiting = Math.min(kMaxRefusedWaiting, Math.floor((descriptors?.spare ?? 128) / 2));
    this.anonymous = new AnonymousConnections(options.maxAnonymousConnections);
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
      legacyWriteBytes: this.legacyPacing.maxWriteBytes,
      onError: (error, context) => this.observer.serviceError(error, context),
      events: this.observer,
      authThrottle: { isTrusted: (ip) => this.limits.isTrusted(ip), ...options.authThrottle },
      onThrottled: (event, peer, detail) => this.security.warn(event, peer, detail),
    });
    this.service.setRouter(options.router ? options.router(presence) : new LocalDeliveryRouter(presence));
    this.tcp = new TcpServer({ name: 'chat', host, port, loop: this.loop, noDelay: true });
    // With libuv's spare-descriptor trick an EMFILE rarely reaches us; when it does, say so.
    this.tcp.setAcceptErrorCallback((error) =>
      this.security.warn('accept error', host, `${error.message}; still accepting`),
    );
    this.tcp.setConnectionCallback(this.onConnection);
    this.tcp.setMessageCallback((conn, buffer, at) => (conn.context as ChatConnection).onBytes(buffer, at));
  }

  /** Clears this server's stale sessions (a previous crash), then listens. */
  async start(): Promise<InetAddress> {
    const stale = await this.services.users.resetServer(this.serverId);
    if (stale > 0) this.log('info', `marked ${stale} stale session(s) of ${this.serverId} offline`);
    const timeout = this.inputBudget.messageTimeoutMs;
    if (timeout > 0) {
      // One sweep for every connection's deadline: a deadline costs nothing per message.
      const every = Math.max(50, Math.min(1000, Math.floor(timeout / 5)));
      this.deadlineSweep = this.loop.runEvery(every, () => this.inputBudget.expire(performance.now()));
    }
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
    if (this.deadlineSweep !== null) this.loop.cancel(this.deadlineSweep);
    this.deadlineSweep = null;
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

  forcedClose(chat: ChatConnection, reason: CloseReason, securityEvent?: SecurityEvent): void {
    if (chat.closeReason !== null) return;
    chat.closeReason = reason;
    const securityLogged = securityEvent !== undefined;
    this.observer.forcedClose(chat.peer, chat.session?.userId ?? null, reason, !securityLogged);
    if (securityLogged)
      this.security.warn(securityEvent, chat.peer, `${reason.detail ?? reason.code}; closing`);
  }

  /** ChatConnection's hook: anonymous (not logged in) connections are bounded by count. */
  loginChanged(chat: ChatConnection, loggedIn: boolean): void {
    if (loggedIn) this.anonymous.remove(chat);
    else this.addAnonymous(chat);
  }

  private addAnonymous(chat: ChatConnection): void {
    const oldest = this.anonymous.add(chat);
    if (oldest === undefined) return;
    this.security.info(
      'anonymous connection evicted',
      oldest.peer,
      `more than ${this.anonymous.max} connections silent or not logged in; closing the oldest`,
    );
    oldest.closeReason ??= { code: 'anonymous_evicted' };
    oldest.close();
  }

  /** A reader this slow would make us buffer without bound; its messages wait in its inbox. */
  dropSlowReader(conn: TcpConnection, pendingBytes: number): void {
    if (!conn.connected) return;
    this.forcedClose(conn.context as ChatConnection, {
      code: 'slow_reader',
      detail: `${pendingBytes} bytes pending`,
    });
    conn.forceClose();
  }

  private readonly onConnection = (conn: TcpConnection): void => {
    if (conn.connected) {
      const chat = new ChatConnection(conn, this);
      conn.context = chat;
      const refusal = this.limits.admit(conn.peerAddress.ip);
      if (refusal !== null) {
        this.refuse(conn, chat, refusal);
        return;
      }
      chat.admitted = true;
      this.observer.connectionUp(chat.peer, this.tcp.connectionCount);
      conn.setErrorCallback((_c, error) => {
        chat.closeReason ??= {
          code: 'socket_error',
          detail: (error as NodeJS.ErrnoException).code ?? error.message,
        };
      });
      conn.setHighWaterMarkCallback((c, pending) => this.dropSlowReader(c, pending), this.highWaterMarkBytes);
      if (this.idleTimeoutMs > 0) this.armIdle(conn, chat, this.idleTimeoutMs);
      this.addAnonymous(chat);
      return;
    }
    const chat = conn.context as ChatConnection;
    if (!chat.admitted) {
      this.refusedWaiting--;
      return;
    }
    this.limits.leave(conn.peerAddress.ip);
    this.anonymous.remove(chat);
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

  /**
   * Over a limit: the connection is closed within a second, and a framed client that speaks
   * meanwhile gets ERROR errno 8 first (ChatConnection.refuse). Too many waiting: closed at once.
   */
  private refuse(conn: TcpConnection, chat: ChatConnection, refusal: string): void {
    const peer = conn.peerAddress.toIpPort();
    this.security.warn('connection refused', peer, `${refusal} (${this.limits.count} open); closing`);
    this.refusedWaiting++;
    if (this.refusedWaiting > this.maxRefusedWaiting) {
      conn.forceClose();
      return;
    }
    chat.refusal = `too many connections (${refusal}), try again later`;
    conn.forceCloseWithDelay(1);
  }

  /** One TimerQueue entry per connection, re-armed lazily: activity costs nothing per message. */
  private armIdle(conn: TcpConnection, chat: ChatConnection, delayMs: number): void {
    chat.idleTimer = this.loop.runAfter(delayMs, () => {
      chat.idleTimer = null;
      if (!conn.connected) return;
      // Silent connections (the classic client at its menu) are bounded by count, not by time.
      if (!chat.spoke) {
        this.armIdle(conn, chat, this.idleTimeoutMs);
        return;
      }
      if (chat.kind === 'legacy' && !this.idleLegacy) return;
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
