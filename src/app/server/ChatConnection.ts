import type { Buffer, LengthHeaderCodec, TcpConnection, TimerId } from '../../net/index.js';
import { jsonCodec, legacyCodec, protobufCodec } from '../protocol/codecs.js';
import { LegacyFrameSplitter } from '../protocol/LegacyFrameSplitter.js';
import { legacyMaySend } from '../protocol/legacyReplies.js';
import { errorReply } from '../protocol/replies.js';
import type { ChatSession, CodecKind, SessionTransport } from '../service/ChatSession.js';
import type { CloseReason } from './ServerObserver.js';

/** What a connection asks of its server. */
export interface ConnectionHost {
  readonly maxMessageBytes: number;
  /** Splits framed connections' streams (shared by all of them); frames go to `onFrame`. */
  readonly framing: LengthHeaderCodec;
  /** Pending output at which bulk sends (inbox catch-up) wait for the client to read. */
  readonly outputPauseBytes: number;
  openSession(transport: SessionTransport): ChatSession;
  log(level: 'debug' | 'info' | 'warn', message: string): void;
  /** For logs and metrics: the connection's codec is now known. */
  codecChosen(peer: string, codec: CodecKind): void;
  /** Records why the server closes this connection (logged at info) before it closes it. */
  forcedClose(chat: ChatConnection, reason: CloseReason): void;
}

const kBrace = 0x7b;

/**
 * One client connection of the chat server: picks the codec from the first byte (docs/PROTOCOL.md
 * §1), turns bytes into messages for its ChatSession and replies into bytes. Bad input gets an
 * ERROR where the codec can carry one, then this connection — and only it — is closed.
 */
export class ChatConnection implements SessionTransport {
  kind: CodecKind = 'json';
  session: ChatSession | null = null;
  /** Last time the client sent anything (ms, monotonic), for the idle timeout. */
  lastActive = performance.now();
  idleTimer: TimerId | null = null;
  /** When it was accepted (ms, monotonic), for the connection-down log line. */
  readonly openedAt = performance.now();
  /** Why the server closed it; null when the peer did (or it has not closed). */
  closeReason: CloseReason | null = null;
  private splitter: LegacyFrameSplitter | null = null;
  private decided = false;
  private sawFrame = false;
  /** Resolves the pending `whenWritable` promise. */
  private drained: (() => void) | null = null;

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

  /** The connection's message callback. */
  onBytes(buffer: Buffer, receiveTime: number): void {
    this.lastActive = performance.now();
    if (!this.decided) {
      if (buffer.readableBytes() === 0) return;
      this.decided = true;
      if (buffer.peekInt8() === kBrace) {
        this.kind = 'legacy';
        this.splitter = new LegacyFrameSplitter(this.host.maxMessageBytes);
        // A classic client never acks: a push counts as delivered once its bytes left (bytesFlushed).
        this.conn.trackFlushedBytes();
        this.host.codecChosen(this.peer, 'legacy');
      }
      this.session = this.host.openSession(this);
    }
    if (this.splitter !== null) this.onLegacyBytes(buffer);
    else this.host.framing.onMessage(this.conn, buffer, receiveTime);
  }

  private onLegacyBytes(buffer: Buffer): void {
    const splitter = this.splitter!;
    try {
      splitter.push(buffer.peek());
      // The splitter may hold views of these bytes until drained; it is drained below.
      for (let message = splitter.next(); message !== undefined; message = splitter.next()) {
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
      if (!legacyMaySend((message as { msgid?: unknown }).msgid)) return;
      const bytes = legacyCodec.encode(message);
      this.conn.send(bytes);
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

  bytesQueued(): number {
    return this.conn.sentBytes();
  }

  bytesFlushed(): number {
    return this.conn.flushedBytes();
  }

  close(): void {
    this.host.forcedClose(this, { code: 'closed_by_server' });
    this.conn.forceClose();
  }

  /** Paused above `outputPauseBytes` of pending output, until it has drained or the connection is gone. */
  whenWritable(): Promise<void> | undefined {
    const conn = this.conn;
    if (!conn.connected || conn.pendingOutputBytes() < this.host.outputPauseBytes) return undefined;
    return new Promise((resolve) => {
      this.drained = resolve;
      conn.setWriteCompleteCallback(this.onDrained);
    });
  }

  /** The connection went down: nothing waits for output that will never drain. */
  onDown(): void {
    this.onDrained();
  }

  private readonly onDrained = (): void => {
    const wake = this.drained;
    if (wake === null) return;
    this.drained = null;
    this.conn.setWriteCompleteCallback(null);
    wake();
  };

  pauseInput(): void {
    this.conn.stopRead();
  }

  resumeInput(): void {
    this.conn.startRead();
  }
}
