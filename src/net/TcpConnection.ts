import type { Socket } from 'node:net';
import { Buffer } from './Buffer.js';
import {
  type CloseCallback,
  type ConnectionCallback,
  defaultConnectionCallback,
  defaultMessageCallback,
  type ErrorCallback,
  type HighWaterMarkCallback,
  type MessageCallback,
  type WriteCompleteCallback,
} from './Callbacks.js';
import type { EventLoop } from './EventLoop.js';
import { InetAddress } from './InetAddress.js';
import type { TimerId } from './TimerQueue.js';
import { installUserReadBuffer } from './userReadBuffer.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnecting' | 'disconnected';

const kNoBytes = new Uint8Array(0);

/** muduo's default high-water mark: 64 MiB of pending output. */
export const kDefaultHighWaterMark = 64 * 1024 * 1024;

/**
 * One TCP connection, server- or client-side. Owned by the TcpServer/TcpClient that made it;
 * user code talks to it through the callbacks and the methods below.
 *
 * Input arrives in `inputBuffer` (passed to the message callback). Output goes straight to
 * the socket; bytes the kernel cannot take yet wait in Node's socket queue, which
 * `pendingOutputBytes()` measures and the high-water mark watches.
 */
export class TcpConnection {
  /** Free slot for the user (muduo's boost::any context). */
  context: unknown = undefined;

  private stateValue: ConnectionState = 'connecting';
  private readonly input = new Buffer();
  private reading = false;
  /** Input that arrived while reading was stopped and has not been shown to the message callback. */
  private undelivered = false;
  private dispatching = false;
  private sendsThisDispatch = 0;
  private tickCorked = false;
  private closeTimer: TimerId | null = null;
  private highWaterMark = kDefaultHighWaterMark;

  private connectionCallback: ConnectionCallback = defaultConnectionCallback;
  private messageCallback: MessageCallback = defaultMessageCallback;
  private writeCompleteCallback: WriteCompleteCallback | null = null;
  private highWaterMarkCallback: HighWaterMarkCallback | null = null;
  private errorCallback: ErrorCallback | null = null;
  private closeCallback: CloseCallback | null = null;
  private bytesSent = 0;
  private bytesFlushed = 0;
  private countFlushed = false;
  /** Writes carry the completion callback (see updateWriteReports). */
  private reportWrites = false;

  readonly localAddress: InetAddress;
  readonly peerAddress: InetAddress;

  /**
   * @internal Created by TcpServer/TcpClient. `socket` must not have started reading yet,
   * and when `userReadInstalled` is false the connection reads through 'data' events.
   */
  constructor(
    readonly loop: EventLoop,
    readonly name: string,
    private readonly socket: Socket,
    userReadInstalled = false,
  ) {
    this.localAddress = InetAddress.fromSocket(socket.localAddress, socket.localPort, socket.localFamily);
    this.peerAddress = InetAddress.fromSocket(socket.remoteAddress, socket.remotePort, socket.remoteFamily);
    if (!userReadInstalled && !installUserReadBuffer(socket, this.onRead)) {
      socket.on('data', this.onData);
    }
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get connected(): boolean {
    return this.stateValue === 'connected';
  }

  get disconnected(): boolean {
    return this.stateValue === 'disconnected';
  }

  /** Bytes received and not yet retrieved by the message callback. */
  get inputBuffer(): Buffer {
    return this.input;
  }

  /** Bytes accepted by `send` and not yet handed to the kernel. */
  pendingOutputBytes(): number {
    return this.socket.writableLength;
  }

  /** Bytes accepted by `send` since the connection came up (including those dropped at a close). */
  sentBytes(): number {
    return this.bytesSent;
  }

  /**
   * Bytes of those the kernel has taken, as of the last write that completed: a lower bound that
   * stays valid after the connection is down, when whatever was still pending has been dropped.
   * Kept current only after `trackFlushedBytes()` (or while a write-complete callback is set).
   */
  flushedBytes(): number {
    return this.bytesFlushed;
  }

  setConnectionCallback(cb: ConnectionCallback): void {
    this.connectionCallback = cb;
  }

  setMessageCallback(cb: MessageCallback): void {
    this.messageCallback = cb;
  }

  /**
   * `cb` fires whenever pending output drains to zero, including output queued before it was
   * set (muduo fires it when the output buffer empties, whenever the callback came).
   */
  setWriteCompleteCallback(cb: WriteCompleteCallback | null): void {
    this.writeCompleteCallback = cb;
    this.updateWriteReports();
  }

  /** Keeps `flushedBytes()` current from now on, at the cost of a completion callback per write. */
  trackFlushedBytes(): void {
    this.countFlushed = true;
    this.updateWriteReports();
  }

  /** `cb` fires each time pending output grows from below `bytes` to `bytes` or more. */
  setHighWaterMarkCallback(cb: HighWaterMarkCallback | null, bytes = kDefaultHighWaterMark): void {
    this.highWaterMarkCallback = cb;
    this.highWaterMark = bytes;
  }

  setErrorCallback(cb: ErrorCallback | null): void {
    this.errorCallback = cb;
  }

  /** @internal */
  setCloseCallback(cb: CloseCallback): void {
    this.closeCallback = cb;
  }

  /**
   * Queues bytes for the peer. A Uint8Array is handed to the socket as is (as with
   * `socket.write`): do not modify it afterwards. A Buffer of this library is drained:
   * its readable bytes are sent without a copy and retrieved. Silently dropped once the
   * connection is no longer connected, as in muduo.
   */
  send(data: string | Uint8Array | Buffer): void {
    if (this.stateValue !== 'connected') return;
    const socket = this.socket;
    if (this.dispatching) {
      // Several sends from one message callback: gather them into one writev.
      if (++this.sendsThisDispatch === 2) socket.cork();
    } else if (!this.tickCorked) {
      // Sends from timers and promise callbacks (a commit acknowledging many messages, say):
      // gather everything sent in this tick into one writev.
      this.tickCorked = true;
      socket.cork();
      process.nextTick(this.uncorkTick);
    }
    const before = socket.writableLength;
    if (data instanceof Buffer) {
      const view = data.peek();
      this.write(view);
      // If the socket kept a reference to the view, the buffer must not reuse that memory.
      if (socket.writableLength > before) data.detachStorage();
      else data.retrieveAll();
    } else {
      this.write(data);
    }
    const after = socket.writableLength;
    if (this.highWaterMarkCallback !== null && after >= this.highWaterMark && before < this.highWaterMark) {
      const cb = this.highWaterMarkCallback;
      this.loop.queueInLoop(() => cb(this, after));
    }
  }

  /** Half-closes after all pending output is flushed; the peer may still send to us. */
  shutdown(): void {
    if (this.stateValue !== 'connected') return;
    this.stateValue = 'disconnecting';
    this.uncorkIfDispatching();
    this.socket.end();
  }

  /**
   * Closes now, discarding pending output and unread input (so that a message loop in
   * progress, such as the codec's, stops at the frame that caused the close).
   */
  forceClose(): void {
    if (this.stateValue === 'disconnected') return;
    this.stateValue = 'disconnecting';
    this.input.retrieveAll();
    this.noteFlushedBeforeClose();
    this.socket.destroy();
  }

  /**
   * Closes at once with a TCP RST, discarding pending output: the peer's next read fails
   * instead of seeing a clean end of stream (for protocols where EOF would read as success).
   */
  reset(): void {
    if (this.stateValue === 'disconnected') return;
    this.stateValue = 'disconnecting';
    this.input.retrieveAll();
    this.noteFlushedBeforeClose();
    this.socket.resetAndDestroy();
  }

  forceCloseWithDelay(seconds: number): void {
    if (this.stateValue === 'disconnected' || this.closeTimer !== null) return;
    this.closeTimer = this.loop.runAfter(seconds * 1000, () => {
      this.closeTimer = null;
      this.forceClose();
    });
  }

  setTcpNoDelay(on: boolean): void {
    this.socket.setNoDelay(on);
  }

  setKeepAlive(on: boolean, initialDelayMs = 0): void {
    this.socket.setKeepAlive(on, initialDelayMs);
  }

  /** Resumes reading after `stopRead` (backpressure from the consumer side). */
  startRead(): void {
    if (this.reading || this.stateValue === 'disconnected') return;
    this.reading = true;
    this.socket.resume();
    if (this.undelivered) {
      // Bytes held back while stopped: hand them over from the loop, not from inside startRead.
      this.loop.queueInLoop(() => {
        if (this.reading && this.undelivered && this.stateValue !== 'disconnected') this.dispatch();
      });
    }
  }

  /** Stops reading from the socket: the kernel buffer fills and the peer's sends slow down. */
  stopRead(): void {
    if (!this.reading) return;
    this.reading = false;
    this.socket.pause();
  }

  isReading(): boolean {
    return this.reading;
  }

  /** @internal Called once by the owner when the connection is set up. */
  connectEstablished(): void {
    this.stateValue = 'connected';
    this.reading = true;
    this.socket.resume();
    this.connectionCallback(this);
  }

  private write(data: string | Uint8Array): void {
    this.bytesSent += typeof data === 'string' ? globalThis.Buffer.byteLength(data) : data.byteLength;
    if (this.reportWrites) this.socket.write(data, this.onWritten);
    else this.socket.write(data);
  }

  /**
   * The last exact count before a destroy: what is not pending now has been taken by the kernel
   * (including synchronous writes whose callbacks Node has not run yet).
   */
  private noteFlushedBeforeClose(): void {
    if (this.reportWrites && !this.socket.destroyed) {
      this.bytesFlushed = this.bytesSent - this.socket.writableLength;
    }
  }

  /** Writes report their completion only while someone listens: it costs a callback each. */
  private updateWriteReports(): void {
    const wanted = this.writeCompleteCallback !== null || this.countFlushed;
    if (wanted && !this.reportWrites && this.stateValue === 'connected' && this.socket.writableLength > 0) {
      // Earlier writes carry no completion callback: an empty write behind them observes their drain.
      this.socket.write(kNoBytes, this.onWritten);
    }
    this.reportWrites = wanted;
  }

  /** One shared callback for the writes that report (Node batches those of one tick). */
  private readonly onWritten = (error?: Error | null): void => {
    // Dropped: the connection is going down. Node 20 completes the write that was in flight at a
    // destroy() without an error (and writableLength then reads 0), though the kernel never took
    // its bytes: a destroyed socket reports nothing (`noteFlushedBeforeClose` counted before).
    if (error || this.socket.destroyed) return;
    const pending = this.socket.writableLength;
    this.bytesFlushed = this.bytesSent - pending;
    if (pending === 0 && this.writeCompleteCallback !== null) this.writeCompleteCallback(this);
  };

  /** @internal The `onread` callback for sockets created with the shared read buffer. */
  readonly onRead = (nread: number, shared: Uint8Array): boolean => {
    this.input.appendRange(shared, 0, nread);
    this.received();
    return this.reading;
  };

  private readonly onData = (chunk: globalThis.Buffer): void => {
    this.input.append(chunk);
    this.received();
  };

  /**
   * Node may restart reading a paused socket behind our back (a `resume()` followed by
   * `pause()` in the same tick still runs the deferred `read(0)`, which calls readStart), so
   * a read can arrive after `stopRead`. Keep such bytes for `startRead` instead of
   * dispatching them while the user asked for no input.
   */
  private received(): void {
    if (this.reading) this.dispatch();
    else this.undelivered = true;
  }

  private dispatch(): void {
    this.undelivered = false;
    this.dispatching = true;
    this.sendsThisDispatch = 0;
    try {
      this.messageCallback(this, this.input, Date.now());
    } finally {
      this.dispatching = false;
      this.uncorkIfDispatching();
    }
  }

  private readonly uncorkTick = (): void => {
    this.tickCorked = false;
    this.socket.uncork();
  };

  private uncorkIfDispatching(): void {
    if (this.sendsThisDispatch >= 2) {
      this.sendsThisDispatch = 0;
      this.socket.uncork();
    }
  }

  /** Peer half-closed: flush what we still owe it, then close (muduo closes on read 0). */
  private readonly onEnd = (): void => {
    if (this.stateValue === 'connected') this.stateValue = 'disconnecting';
    this.socket.end();
  };

  private readonly onError = (error: Error): void => {
    if (this.errorCallback !== null) this.errorCallback(this, error);
  };

  private readonly onClose = (): void => {
    if (this.stateValue === 'disconnected') return;
    const wasUp = this.stateValue !== 'connecting';
    this.stateValue = 'disconnected';
    this.reading = false;
    if (this.closeTimer !== null) {
      this.loop.cancel(this.closeTimer);
      this.closeTimer = null;
    }
    if (wasUp) this.connectionCallback(this);
    this.closeCallback?.(this);
  };
}
