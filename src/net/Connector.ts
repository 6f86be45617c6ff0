import { type OnReadOpts, Socket, type SocketConstructorOpts } from 'node:net';
import type { EventLoop } from './EventLoop.js';
import type { TimerId } from './TimerQueue.js';
import { onreadOption, type ReadCallback } from './userReadBuffer.js';

/** muduo's back-off: 500 ms, doubling up to 30 s. */
export const kInitRetryDelayMs = 500;
export const kMaxRetryDelayMs = 30_000;

export type ConnectorState = 'disconnected' | 'connecting' | 'connected';

export interface ConnectorOptions {
  host: string;
  port: number;
  loop: EventLoop;
  /** Retry failed attempts with back-off instead of reporting the failure. */
  retry: boolean;
  initRetryDelayMs?: number;
  maxRetryDelayMs?: number;
}

export type NewSocketCallback = (socket: Socket) => void;
export type ConnectFailedCallback = (error: Error, retryInMs: number | null) => void;

/**
 * Makes outgoing connections for TcpClient (muduo's Connector): one attempt at a time,
 * exponential back-off between attempts, and rejection of self-connects — a client on
 * loopback whose ephemeral port equals the server port connects to itself when the
 * server is down.
 */
export class Connector {
  private stateValue: ConnectorState = 'disconnected';
  private started = false;
  private retryDelayMs: number;
  private retry: boolean;
  private retryTimer: TimerId | null = null;
  private socket: Socket | null = null;
  private readTarget: ReadCallback = () => true;
  private newSocketCallback: NewSocketCallback = (socket) => socket.destroy();
  private connectFailedCallback: ConnectFailedCallback = () => {};

  constructor(private readonly options: ConnectorOptions) {
    this.retryDelayMs = options.initRetryDelayMs ?? kInitRetryDelayMs;
    this.retry = options.retry;
  }

  setRetry(on: boolean): void {
    this.retry = on;
  }

  get state(): ConnectorState {
    return this.stateValue;
  }

  setNewSocketCallback(cb: NewSocketCallback): void {
    this.newSocketCallback = cb;
  }

  setConnectFailedCallback(cb: ConnectFailedCallback): void {
    this.connectFailedCallback = cb;
  }

  /** Where reads of the next socket go (the socket's `onread` is fixed at construction). */
  setReadTarget(cb: ReadCallback): void {
    this.readTarget = cb;
  }

  start(): void {
    this.started = true;
    if (this.stateValue === 'disconnected' && this.retryTimer === null) this.connect();
  }

  /** Stops retrying and abandons an attempt in progress. */
  stop(): void {
    this.started = false;
    if (this.retryTimer !== null) {
      this.options.loop.cancel(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.stateValue === 'connecting') {
      this.socket?.destroy();
      this.socket = null;
      this.stateValue = 'disconnected';
    }
  }

  /** Starts over after a lost connection, with the back-off reset. */
  restart(): void {
    this.stateValue = 'disconnected';
    this.retryDelayMs = this.options.initRetryDelayMs ?? kInitRetryDelayMs;
    this.start();
  }

  private connect(): void {
    this.stateValue = 'connecting';
    // `onread` is accepted by the Socket constructor at runtime but missing from @types/node's options.
    const options: SocketConstructorOpts & { onread: OnReadOpts } = {
      allowHalfOpen: true,
      onread: onreadOption((nread, buffer) => this.readTarget(nread, buffer)),
    };
    const socket = new Socket(options);
    this.socket = socket;
    const onError = (error: Error): void => {
      socket.destroy();
      this.failed(socket, error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      if (this.socket !== socket) return;
      const { localAddress, localPort } = socket;
      if (localPort === socket.remotePort && localAddress === socket.remoteAddress) {
        // Read the address before destroy(), which clears it.
        socket.destroy();
        this.failed(socket, new Error(`self connect on ${localAddress}:${localPort}`));
        return;
      }
      // Hold reads until the TcpConnection is wired up, exactly like an accepted socket.
      socket.pause();
      this.stateValue = 'connected';
      this.socket = null;
      this.newSocketCallback(socket);
    });
    socket.connect({ host: this.options.host, port: this.options.port });
  }

  private failed(socket: Socket, error: Error): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.stateValue = 'disconnected';
    if (!this.started) return;
    if (!this.retry) {
      this.started = false;
      this.connectFailedCallback(error, null);
      return;
    }
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, this.options.maxRetryDelayMs ?? kMaxRetryDelayMs);
    // Arm the retry before telling the user, so that a stop() from the callback cancels it.
    this.retryTimer = this.options.loop.runAfter(delay, () => {
      this.retryTimer = null;
      if (this.started) this.connect();
    });
    this.connectFailedCallback(error, delay);
  }
}
