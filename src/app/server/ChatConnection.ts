import type { Buffer, LengthHeaderCodec, TcpConnection, TimerId } from '../../net/index.js';
import { jsonCodec, legacyCodec, protobufCodec } from '../protocol/codecs.js';
import { LegacyFrameSplitter } from '../protocol/LegacyFrameSplitter.js';
import { legacyMaySend } from '../protocol/legacyReplies.js';
import { errorReply } from '../protocol/replies.js';
import type { ChatSession, CodecKind, SessionTransport } from '../service/ChatSession.js';
import type { InputBudget, InputCutReason, InputHolder } from './InputBudget.js';
import { LegacyOutbox, type LegacyPacing } from './LegacyOutbox.js';
import type { SecurityEvent, SecurityLog } from './SecurityLog.js';
import type { CloseReason } from './ServerObserver.js';

/** What a connection asks of its server. */
export interface ConnectionHost {
  readonly maxMessageBytes: number;
  /** Largest classic message: a classic request is small, so far below `maxMessageBytes`. */
  readonly maxLegacyMessageBytes: number;
  /** Bytes held for unfinished messages, and their deadlines. */
  readonly inputBudget: InputBudget;
  readonly security: SecurityLog;
  /** The connection's session logged in or out (anonymous connections are bounded by count). */
  loginChanged(chat: ChatConnection, loggedIn: boolean): void;
  /** Splits framed connections' streams (shared by all of them); frames go to `onFrame`. */
  readonly framing: LengthHeaderCodec;
  /** Pending output at which bulk sends (inbox catch-up) wait for the client to read. */
  readonly outputPauseBytes: number;
  /** Pending output (a legacy session's paced queue included) at which a slow reader is cut off. */
  readonly highWaterMarkBytes: number;
  readonly legacyPacing: LegacyPacing;
  /** Closes a reader too slow for its output (logged). */
  dropSlowReader(conn: TcpConnection, pendingBytes: number): void;
  openSession(transport: SessionTransport): ChatSession;
  log(level: 'debug' | 'info' | 'warn', message: string): void;
  /** For logs and metrics: the connection's codec is now known. */
  codecChosen(peer: string, codec: CodecKind): void;
  /** Records why the server closes this connection (logged at info) before it closes it. */
  /**
   * Records why the server closes `chat` (for its connection-down line and metrics) and logs it:
   * through the rate-limited security log when `securityEvent` names one, else at info.
   */
  forcedClose(chat: ChatConnection, reason: CloseReason, securityEvent?: SecurityEvent): void;
}

const kBrace = 0x7b;
/** Longest a legacy logout waits for its queued output to reach the kernel. */
const kLogoutFlushMs = 5000;

/**
 * One client connection of the chat server: picks the codec from the first byte (docs/PROTOCOL.md
 * §1), turns bytes into messages for its ChatSession and replies into bytes. Bad input gets an
 * ERROR where the codec can carry one, then this connection — and only it — is closed.
 */
export class ChatConnection implements SessionTransport, InputHolder {
  kind: CodecKind = 'json';
  /** Set when the connection is over a limit: it gets an ERROR (framed) and is closed, never served. */
  refusal: string | null = null;
  /** Counted by the server's connection limits (not refused). */
  admitted = false;
  heldBytes = 0;
  messageStartedAt = 0;
  /** Messages decoded so far: tells the budget whether a read finished one. */
  private completed = 0;
  session: ChatSession | null = null;
  /** Last time the client sent anything (ms, monotonic), for the idle timeout. */
  lastActive = performance.now();
  idleTimer: TimerId | null = null;
  /** When it was accepted (ms, monotonic), for the connection-down log line. */
  readonly openedAt = performance.now();
  /** Why the server closed it; null when the peer did (or it has not closed). */
  closeReason: CloseReason | null = null;
  private splitter: LegacyFrameSplitter | null = null;
  /** Legacy only: paced output, one message per write. */
  private outbox: LegacyOutbox | null = null;
  private decided = false;
  private sawFrame = false;
  /** Resolve the pending `whenWritable` / `whenFlushed` promises once output has drained. */
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly conn: TcpConnection,
    private readonly host: ConnectionHost,
  ) {}

  get peer(): string {
    return this.conn.peerAddress.toIpPort();
  }

  /** The codec once known: legacy from the first byte, framed JSON / protobuf from the first frame. */
  get codecIfKnown(): CodecKind | null {
    return this.splitter !== null ? 'legacy' : this.sawFrame ? this.kind : null;
  }

  get address(): string {
    return this.conn.peerAddress.ip;
  }

  /** The client has sent its first byte (so its codec is known). */
  get spoke(): boolean {
    return this.decided;
  }

  /** The connection's message callback. */
  onBytes(buffer: Buffer, receiveTime: number): void {
    const now = performance.now();
    this.lastActive = now;
    if (!this.decided) {
      if (buffer.readableBytes() === 0) return;
      if (this.refusal !== null) {
        this.refuse(buffer);
        return;
      }
      this.decided = true;
      if (buffer.peekInt8() === kBrace) {
        this.kind = 'legacy';
        this.splitter = new LegacyFrameSplitter(
          Math.min(this.host.maxMessageBytes, this.host.maxLegacyMessageBytes),
        );
        this.outbox = new LegacyOutbox(this.conn, this.host.legacyPacing.gapMs);
        // A classic client never acks: a push counts as delivered once the kernel took its bytes.
        this.conn.trackFlushedBytes();
        this.host.codecChosen(this.peer, 'legacy');
      }
      this.session = this.host.openSession(this);
    }
    const completedBefore = this.completed;
    if (this.splitter !== null) this.onLegacyBytes(buffer);
    else this.host.framing.onMessage(this.conn, buffer, receiveTime);
    // What is left is an unfinished message: it counts against the input budget and its deadline.
    const held = this.conn.connected
      ? this.splitter !== null
        ? this.splitter.bufferedBytes
        : buffer.readableBytes()
      : 0;
    if (held !== 0 || this.heldBytes !== 0) {
      this.host.inputBudget.update(this, held, now, this.completed !== completedBefore);
    }
  }

  /** Over a connection limit: a framed client is told why (errno 8), a classic one just closed. */
  private refuse(buffer: Buffer): void {
    if (buffer.peekInt8() === kBrace) {
      this.conn.forceClose();
      return;
    }
    // The payload's first byte, when it has come, says JSON or protobuf.
    const bytes = buffer.peek();
    this.kind = bytes.length > 4 && bytes[4] !== kBrace ? 'protobuf' : 'json';
    buffer.retrieveAll();
    this.send(errorReply(8, this.refusal ?? 'too many connections'));
    this.conn.stopRead();
    this.conn.shutdown();
  }

  /** InputHolder: over the input budget or past its message deadline. */
  cut(reason: InputCutReason, detail: string): void {
    if (!this.conn.connected) return;
    const code = reason === 'message deadline' ? 'message_deadline' : 'input_budget';
    this.host.forcedClose(this, { code, detail }, reason);
    this.conn.stopRead();
    if (this.kind === 'legacy' || !this.decided) {
      this.conn.forceClose();
      return;
    }
    // Framed: the ERROR goes out first; the parked bytes are freed now, not at the close.
    this.conn.inputBuffer.retrieveAll();
    this.conn.inputBuffer.shrink(0);
    this.send(errorReply(3, reason === 'message deadline' ? 'message deadline expired' : 'server busy'));
    this.conn.shutdown();
    this.conn.forceCloseWithDelay(1);
  }

  private onLegacyBytes(buffer: Buffer): void {
    const splitter = this.splitter!;
    try {
      splitter.push(buffer.peek());
      // The splitter may hold views of these bytes until drained; it is drained below.
      for (let message = splitter.next(); message !== undefined; message = splitter.next()) {
        this.completed++;
        this.session!.enqueue(jsonCodec.decodePayload(message));
      }
      buffer.retrieveAll();
    } catch (error) {
      buffer.retrieveAll();
      this.reject(error);
    }
  }

  /** One framed payload (the server's LengthHeaderCodec has split the stream). */
  onFrame(payload: Uint8Array): void {
    this.completed++;
    const isJson = payload.length > 0 && payload[0] === kBrace;
    // The first frame fixes the reply codec; later frames may use either.
    if (!this.sawFrame) this.kind = isJson ? 'json' : 'protobuf';
    if (!this.sawFrame) this.host.codecChosen(this.peer, this.kind);
    this.sawFrame = true;
    let message: unknown;
    try {
      message = isJson ? jsonCodec.decodePayload(payload) : protobufCodec.decodePayload(payload);
    } catch (error) {
      this.reject(error);
      return;
    }
    this.session!.enqueue(message);
  }

  /** Bad bytes: tell the client why (when its codec can say it), then close only this connection. */
  reject(error: unknown): void {
    // Whatever else was read is dropped: the codec loop stops at the bad frame.
    this.conn.inputBuffer.retrieveAll();
    const reason = error instanceof Error ? error.message : String(error);
    this.host.forcedClose(this, { code: 'bad_input', detail: reason });
    if (this.kind !== 'legacy') this.send(errorReply(3, reason));
    this.conn.shutdown();
    this.conn.forceCloseWithDelay(1);
    this.conn.stopRead();
  }

  send(message: object): void {
    if (!this.conn.connected) return;
    if (this.kind === 'legacy') {
      this.sendLegacy(message);
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.kind === 'protobuf' ? protobufCodec.encode(message) : jsonCodec.encode(message);
    } catch (error) {
      // A reply we cannot encode is our bug, not the client's: log it and keep the connection.
      this.host.log(
        'warn',
        `${this.peer}: cannot encode reply: ${error instanceof Error ? error.message : error}`,
      );
      return;
    }
    this.conn.send(bytes);
  }

  /** One classic message into the paced queue; the queue counts toward the high-water mark. */
  private sendLegacy(message: object): void {
    const msgid = (message as { msgid?: unknown }).msgid;
    if (!legacyMaySend(msgid)) return;
    const bytes = legacyCodec.encode(message);
    if (bytes.byteLength > this.host.legacyPacing.maxWriteBytes) {
      // The service cuts every reply to fit; a bigger one is our bug, and would break the client.
      this.host.log(
        'warn',
        `${this.peer}: legacy reply of ${bytes.byteLength} bytes not sent (msgid ${msgid})`,
      );
      return;
    }
    const outbox = this.outbox!;
    outbox.enqueue(bytes);
    const pending = outbox.queuedBytes + this.conn.pendingOutputBytes();
    if (pending >= this.host.highWaterMarkBytes) this.host.dropSlowReader(this.conn, pending);
  }

  /** Bytes accepted so far, in order: those handed to the socket, then those still paced here. */
  bytesQueued(): number {
    return this.conn.sentBytes() + (this.outbox?.queuedBytes ?? 0);
  }

  bytesFlushed(): number {
    return this.conn.flushedBytes();
  }

  close(): void {
    this.host.forcedClose(this, { code: 'closed_by_server' });
    this.conn.forceClose();
  }

  /**
   * Legacy logout: resolves once everything queued so far has been taken by the kernel, the
   * connection is gone, or `kLogoutFlushMs` has passed (a client that stopped reading).
   */
  async whenFlushed(): Promise<void> {
    const outbox = this.outbox;
    const conn = this.conn;
    if (outbox === null || !conn.connected) return;
    let timer: TimerId | null = null;
    const deadline = new Promise<void>((resolve) => {
      timer = conn.loop.runAfter(kLogoutFlushMs, resolve);
    });
    try {
      const empty = outbox.whenEmpty();
      if (empty !== undefined) await Promise.race([empty, deadline]);
      if (conn.connected && conn.pendingOutputBytes() > 0) await Promise.race([this.drained(), deadline]);
    } finally {
      if (timer !== null) conn.loop.cancel(timer);
    }
  }

  /**
   * Paused above `outputPauseBytes` of pending output, until it has drained or the connection is
   * gone; a legacy session also while its paced queue is long.
   */
  whenWritable(): Promise<void> | undefined {
    const conn = this.conn;
    if (!conn.connected) return undefined;
    const paced = this.outbox?.whenRoom();
    if (paced !== undefined) return paced;
    if (conn.pendingOutputBytes() < this.host.outputPauseBytes) return undefined;
    return this.drained();
  }

  /** Resolves once pending output has drained to zero (or the connection is gone). */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.conn.setWriteCompleteCallback(this.onDrained);
    });
  }

  /** The connection went down: nothing waits for output that will never drain. */
  onDown(): void {
    this.host.inputBudget.release(this);
    this.outbox?.close();
    this.onDrained();
  }

  loginChanged(loggedIn: boolean): void {
    // A session ending because its connection went down is not an anonymous connection.
    if (this.conn.connected) this.host.loginChanged(this, loggedIn);
  }

  private readonly onDrained = (): void => {
    if (this.drainWaiters.length === 0) return;
    this.conn.setWriteCompleteCallback(null);
    for (const wake of this.drainWaiters.splice(0)) wake();
  };

  pauseInput(): void {
    this.conn.stopRead();
    // Not read, its message cannot finish: no deadline meanwhile.
    this.host.inputBudget.pause(this);
  }

  resumeInput(): void {
    this.conn.startRead();
    this.host.inputBudget.resume(this, performance.now());
  }
}
