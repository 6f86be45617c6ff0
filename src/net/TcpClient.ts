import type { Socket } from 'node:net';
import {
  type ConnectionCallback,
  defaultConnectionCallback,
  defaultMessageCallback,
  type MessageCallback,
  type WriteCompleteCallback,
} from './Callbacks.js';
import { type ConnectFailedCallback, Connector } from './Connector.js';
import { EventLoop } from './EventLoop.js';
import { TcpConnection } from './TcpConnection.js';

export interface TcpClientOptions {
  host: string;
  port: number;
  /** Used in the connection's name. Default `'TcpClient'`. */
  name?: string;
  loop?: EventLoop;
  /** Disable Nagle once connected. Default `false`. */
  noDelay?: boolean;
  /** First retry delay; doubles per failure up to `maxRetryDelayMs`. Default 500 ms. */
  initRetryDelayMs?: number;
  /** Default 30 000 ms. */
  maxRetryDelayMs?: number;
}

/**
 * One outgoing connection with the server's callback API. Without `enableRetry()` a failed
 * connect is reported through the connect-failed callback and the client stops; with it,
 * failed connects and lost connections are retried with exponential back-off.
 */
export class TcpClient {
  readonly name: string;
  readonly loop: EventLoop;
  private readonly connector: Connector;
  private readonly noDelay: boolean;
  private retry = false;
  private wantConnect = false;
  /** `connect()` was called while the previous connection was still closing. */
  private reconnectPending = false;
  private nextConnId = 1;
  private current: TcpConnection | null = null;

  private connectionCallback: ConnectionCallback = defaultConnectionCallback;
  private messageCallback: MessageCallback = defaultMessageCallback;
  private writeCompleteCallback: WriteCompleteCallback | null = null;
  private connectFailedCallback: ConnectFailedCallback = () => {};

  constructor(options: TcpClientOptions) {
    this.name = options.name ?? 'TcpClient';
    this.loop = options.loop ?? EventLoop.default();
    this.noDelay = options.noDelay ?? false;
    this.connector = new Connector({
      host: options.host,
      port: options.port,
      loop: this.loop,
      retry: false,
      initRetryDelayMs: options.initRetryDelayMs,
      maxRetryDelayMs: options.maxRetryDelayMs,
    });
    this.connector.setNewSocketCallback(this.newConnection);
    this.connector.setConnectFailedCallback((error, retryInMs) =>
      this.connectFailedCallback(error, retryInMs),
    );
  }

  /** The live connection, if any. */
  get connection(): TcpConnection | null {
    return this.current;
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

  /** `error` is why the attempt failed; `retryInMs` is null when the client gave up. */
  setConnectFailedCallback(cb: ConnectFailedCallback): void {
    this.connectFailedCallback = cb;
  }

  /** Retry failed connects and reconnect after a lost connection. Call before `connect`. */
  enableRetry(): void {
    this.retry = true;
    this.connector.setRetry(true);
  }

  get retryEnabled(): boolean {
    return this.retry;
  }

  /**
   * Starts connecting. Also valid after a connection went down (`disconnect()` or a lost
   * connection without retry): a new connection is made, once the old one is fully closed.
   */
  connect(): void {
    this.wantConnect = true;
    if (this.connector.state !== 'connected') {
      this.connector.start();
    } else if (this.current === null) {
      // The last connection is gone and was not retried: start over.
      this.connector.restart();
    } else if (!this.current.connected) {
      // Still closing (after disconnect()): connect again once it is down.
      this.reconnectPending = true;
    }
  }

  /** Half-closes the live connection after its output is flushed; no reconnect follows. */
  disconnect(): void {
    this.wantConnect = false;
    this.current?.shutdown();
  }

  /** Stops connecting (and retrying); an established connection is left alone. */
  stop(): void {
    this.wantConnect = false;
    this.connector.stop();
  }

  private readonly newConnection = (socket: Socket): void => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const conn = new TcpConnection(this.loop, `${this.name}-${peer}#${this.nextConnId++}`, socket, true);
    this.connector.setReadTarget(conn.onRead);
    if (this.noDelay) socket.setNoDelay(true);
    conn.setConnectionCallback(this.connectionCallback);
    conn.setMessageCallback(this.messageCallback);
    conn.setWriteCompleteCallback(this.writeCompleteCallback);
    conn.setCloseCallback(this.removeConnection);
    this.current = conn;
    conn.connectEstablished();
  };

  private readonly removeConnection = (conn: TcpConnection): void => {
    if (this.current === conn) this.current = null;
    const again = this.wantConnect && (this.retry || this.reconnectPending);
    this.reconnectPending = false;
    if (again) this.connector.restart();
  };
}
