import {
  EventLoop,
  type InetAddress,
  LengthHeaderCodec,
  type TcpConnection,
  TcpServer,
} from '../../net/index.js';
import type { ChatStore } from '../model/ChatStore.js';
import { Limits } from '../protocol/errno.js';
import { ChatService } from '../service/ChatService.js';
import type { ChatSession, SessionTransport } from '../service/ChatSession.js';
import { type DeliveryRouter, LocalDeliveryRouter } from '../service/DeliveryRouter.js';
import { LocalPresence, type Presence } from '../service/Presence.js';
import { ChatConnection, type ConnectionHost } from './ChatConnection.js';
import { kDefaultLegacyPacing, type LegacyPacing } from './LegacyOutbox.js';
import type { Logger } from './logger.js';

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
  /** Least time between two writes to one classic (legacy) session. Default 2 ms. */
  legacyGapMs?: number;
  /** Largest write to a classic session, `\0` included (its `recv` buffer). Default 1024. */
  legacyWriteBytes?: number;
  /** Cluster presence and routing; default single-node, in memory. */
  presence?: Presence;
  router?: (presence: Presence) => DeliveryRouter;
  loop?: EventLoop;
  logger: Logger;
}

const kDefaultPort = 6000;

/**
 * The chat server: the net library's TcpServer in front, the ChatService behind, one
 * ChatConnection per client between them.
 */
export class ChatServer implements ConnectionHost {
  readonly service: ChatService;
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
  readonly serverId: string;

  constructor(
    private readonly store: ChatStore,
    options: ChatServerOptions,
  ) {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? kDefaultPort;
    this.logger = options.logger;
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
    this.framing = new LengthHeaderCodec((conn, frame) => (conn.context as ChatConnection).onFrame(frame), {
      maxFrameSize: this.maxMessageBytes,
      onError: (conn, error) => (conn.context as ChatConnection).reject(error),
    });
    this.serverId = options.serverId ?? `${host}:${port}`;
    const presence = options.presence ?? new LocalPresence();
    this.service = new ChatService(store, presence, {
      serverId: this.serverId,
      messagesPerSecond: options.messagesPerSecond,
      legacyWriteBytes: this.legacyPacing.maxWriteBytes,
      onError: (error, context) => this.logger.log('warn', `${context}: ${describe(error)}`),
    });
    this.service.setRouter(options.router ? options.router(presence) : new LocalDeliveryRouter(presence));
    this.tcp = new TcpServer({ name: 'chat', host, port, loop: this.loop, noDelay: true });
    this.tcp.setConnectionCallback(this.onConnection);
    this.tcp.setMessageCallback((conn, buffer, at) => (conn.context as ChatConnection).onBytes(buffer, at));
  }

  /** Clears this server's stale sessions (a previous crash), then listens. */
  async start(): Promise<InetAddress> {
    const stale = await this.store.users.resetServer(this.serverId);
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

  /** A reader this slow would make us buffer without bound; its messages wait in its inbox. */
  dropSlowReader(conn: TcpConnection, pendingBytes: number): void {
    if (!conn.connected) return;
    this.log(
      'warn',
      `${conn.peerAddress.toIpPort()}: ${pendingBytes} bytes pending, disconnecting slow reader`,
    );
    conn.forceClose();
  }

  private readonly onConnection = (conn: TcpConnection): void => {
    if (conn.connected) {
      const chat = new ChatConnection(conn, this);
      conn.context = chat;
      conn.setHighWaterMarkCallback((c, pending) => this.dropSlowReader(c, pending), this.highWaterMarkBytes);
      if (this.idleTimeoutMs > 0) this.armIdle(conn, chat, this.idleTimeoutMs);
      return;
    }
    const chat = conn.context as ChatConnection;
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
        this.log('debug', `${conn.peerAddress.toIpPort()}: idle for ${Math.round(idle)} ms, closing`);
        conn.forceClose();
        return;
      }
      this.armIdle(conn, chat, this.idleTimeoutMs - idle);
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
