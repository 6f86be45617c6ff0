/**
 * The caller's side of one persistent native connection to a provider: many calls in flight,
 * matched by call id. Calls made before the connection is up, or beyond `maxInFlight`, or while
 * the socket holds more than `maxPendingOutputBytes`, wait here in FIFO order.
 *
 * The connection does not settle calls itself: it reports every outcome to its owner (the
 * channel), which owns deadlines, retries and the promises.
 */
import type { Buffer as NetBuffer } from '../../net/Buffer.js';
import type { EventLoop } from '../../net/EventLoop.js';
import { TcpClient } from '../../net/TcpClient.js';
import type { TcpConnection } from '../../net/TcpConnection.js';
import type { TimerId } from '../../net/TimerQueue.js';
import { RpcError } from '../errors.js';
import { Outbox } from '../Outbox.js';
import { FrameReader } from '../wire/FrameReader.js';
import {
  decodeMeta,
  FrameKind,
  newMeta,
  PREFACE,
  PREFACE_LENGTH,
  type RpcMeta,
  WireStatus,
  writeRequestFrame,
} from '../wire/nativeFrame.js';
import { codeOfStatus } from '../wire/status.js';
import { CallState, type PendingCall } from './PendingCall.js';
import { unencodable } from './RpcCaller.js';

export interface ConnectionOwner {
  callSucceeded(call: PendingCall, response: object): void;
  callFailed(call: PendingCall, error: RpcError): void;
  /** The connection is up, draining (GOAWAY) or closed; `error` tells why it closed. */
  connectionChanged(conn: NativeConnection, error: RpcError | null): void;
}

export interface NativeConnectionOptions {
  loop: EventLoop;
  maxInFlight: number;
  maxPendingOutputBytes: number;
  maxFrameBytes: number;
  connectTimeoutMs: number;
}

export type NativeConnectionState = 'connecting' | 'ready' | 'draining' | 'closed';

export class NativeConnection {
  private stateValue: NativeConnectionState = 'connecting';
  private readonly client: TcpClient;
  private conn: TcpConnection | null = null;
  private out: Outbox | null = null;
  private readonly inFlight = new Map<number, PendingCall>();
  private waiting: PendingCall[] = [];
  private waitingHead = 0;
  private nextCallId = 1;
  private prefaceSeen = false;
  private connectTimer: TimerId | null = null;
  private readonly meta: RpcMeta = newMeta();
  private readonly reader = new FrameReader();

  constructor(
    readonly key: string,
    host: string,
    port: number,
    private readonly owner: ConnectionOwner,
    private readonly options: NativeConnectionOptions,
  ) {
    this.client = new TcpClient({ host, port, loop: options.loop, name: `rpc-${key}`, noDelay: true });
    this.client.setConnectionCallback(this.onConnection);
    this.client.setMessageCallback(this.onMessage);
    this.client.setWriteCompleteCallback(this.onWriteComplete);
    this.client.setConnectFailedCallback((error) => {
      this.close(
        new RpcError('UNAVAILABLE', `cannot connect to ${key}: ${error.message}`, {
          cause: error,
          mayHaveExecuted: false,
        }),
      );
    });
    this.connectTimer = options.loop.runAfter(options.connectTimeoutMs, () => {
      this.connectTimer = null;
      if (this.stateValue === 'connecting') {
        this.close(
          new RpcError('UNAVAILABLE', `connect to ${key} timed out after ${options.connectTimeoutMs} ms`, {
            mayHaveExecuted: false,
          }),
        );
      }
    });
    this.client.connect();
  }

  get state(): NativeConnectionState {
    return this.stateValue;
  }

  /** Calls assigned here and not settled: in flight plus waiting (the balancer's "outstanding"). */
  get outstanding(): number {
    return this.inFlight.size + (this.waiting.length - this.waitingHead);
  }

  /** True while new calls may be given to this connection. */
  get usable(): boolean {
    return this.stateValue === 'connecting' || this.stateValue === 'ready';
  }

  /** Sends `call` now or queues it; `now` is the current performance.now(). */
  send(call: PendingCall, now: number): void {
    if (this.stateValue === 'ready' && this.canWrite()) {
      this.write(call, now);
    } else if (call.snapshot()) {
      this.waiting.push(call);
    } else {
      this.owner.callFailed(call, call.lastError!);
    }
  }

  /** The call settled elsewhere (deadline): forget it; a late response is then ignored. */
  forget(call: PendingCall): void {
    if (call.callId !== 0 && this.inFlight.get(call.callId) === call) {
      this.inFlight.delete(call.callId);
      call.callId = 0;
      this.afterSettle();
    }
    // A waiting call is skipped when its turn comes (it is Done by then).
  }

  /** Fails everything and closes; idempotent. */
  close(error: RpcError): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    if (this.connectTimer !== null) {
      this.options.loop.cancel(this.connectTimer);
      this.connectTimer = null;
    }
    this.client.stop();
    const conn = this.conn;
    this.conn = null;
    conn?.forceClose();
    const inFlight = [...this.inFlight.values()];
    this.inFlight.clear();
    const waiting = this.takeWaiting();
    // The owner learns first, so that retries do not pick this connection again.
    this.owner.connectionChanged(this, error);
    for (const call of inFlight) {
      call.callId = 0;
      this.owner.callFailed(call, error);
    }
    const notSent = error.mayHaveExecuted
      ? new RpcError('UNAVAILABLE', error.message, { cause: error, mayHaveExecuted: false })
      : error;
    for (const call of waiting) this.owner.callFailed(call, notSent);
  }

  /** Stop taking calls; close once the ones in flight are answered. */
  drain(reason: string): void {
    if (this.stateValue !== 'ready' && this.stateValue !== 'connecting') return;
    this.stateValue = 'draining';
    this.owner.connectionChanged(this, null);
    const waiting = this.takeWaiting();
    const error = new RpcError('UNAVAILABLE', `provider ${this.key} is draining: ${reason}`, {
      mayHaveExecuted: false,
    });
    for (const call of waiting) this.owner.callFailed(call, error);
    if (this.inFlight.size === 0) this.close(error);
  }

  private takeWaiting(): PendingCall[] {
    const out: PendingCall[] = [];
    for (let i = this.waitingHead; i < this.waiting.length; i++) {
      const call = this.waiting[i]!;
      if (call.state !== CallState.Done) out.push(call);
    }
    this.waiting = [];
    this.waitingHead = 0;
    return out;
  }

  private canWrite(): boolean {
    return (
      this.inFlight.size < this.options.maxInFlight &&
      this.conn!.pendingOutputBytes() <= this.options.maxPendingOutputBytes
    );
  }

  private write(call: PendingCall, now: number): void {
    let id = this.nextCallId;
    this.nextCallId = id === 0xffffffff ? 1 : id + 1;
    // After 2^32 calls ids wrap; skip one still in flight (practically never).
    while (this.inFlight.has(id)) id = this.nextCallId++;
    const method = call.method;
    try {
      writeRequestFrame(
        this.out!,
        id,
        method.namePrefix,
        call.wireTimeoutMs(now),
        call.body ?? { type: method.requestType, message: call.request },
      );
    } catch (cause) {
      // Only an unverified request can fail here; nothing was committed to the output.
      this.owner.callFailed(call, unencodable(method, cause));
      return;
    }
    call.callId = id;
    call.state = CallState.Sent;
    this.inFlight.set(id, call);
  }

  private pumpWaiting(): void {
    const now = performance.now();
    while (this.waitingHead < this.waiting.length && this.stateValue === 'ready' && this.canWrite()) {
      const call = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead++] = undefined as unknown as PendingCall;
      if (call.state !== CallState.Done) this.write(call, now);
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    }
  }

  private afterSettle(): void {
    if (this.waitingHead < this.waiting.length) this.pumpWaiting();
    else if (this.stateValue === 'draining' && this.inFlight.size === 0) {
      this.close(new RpcError('UNAVAILABLE', `provider ${this.key} drained`, { mayHaveExecuted: false }));
    }
  }

  private readonly onConnection = (conn: TcpConnection): void => {
    if (conn.connected) {
      if (this.stateValue !== 'connecting') {
        conn.forceClose();
        return;
      }
      if (this.connectTimer !== null) {
        this.options.loop.cancel(this.connectTimer);
        this.connectTimer = null;
      }
      this.conn = conn;
      this.out = new Outbox(this.options.loop, conn);
      conn.send(PREFACE);
      this.stateValue = 'ready';
      this.owner.connectionChanged(this, null);
      this.pumpWaiting();
    } else if (this.conn === conn) {
      this.conn = null;
      this.close(new RpcError('UNAVAILABLE', `connection to ${this.key} lost`));
    }
  };

  private readonly onWriteComplete = (): void => {
    if (this.waitingHead < this.waiting.length) this.pumpWaiting();
  };

  private readonly onMessage = (conn: TcpConnection, input: NetBuffer): void => {
    if (!this.prefaceSeen) {
      if (input.readableBytes() < PREFACE_LENGTH) return;
      if (!input.peek(PREFACE_LENGTH).equals(PREFACE)) {
        this.close(
          new RpcError('PROTOCOL_ERROR', `${this.key} does not speak the native protocol (bad preface)`),
        );
        return;
      }
      input.retrieve(PREFACE_LENGTH);
      this.prefaceSeen = true;
    }
    const readable = input.readableBytes();
    if (readable < 4) return;
    const view = input.peek();
    const max = this.options.maxFrameBytes;
    let total = 0;
    while (readable - total >= 4) {
      const len = view.readUInt32BE(total);
      if (len < 2 || len > max) {
        this.close(new RpcError('PROTOCOL_ERROR', `${this.key} sent a frame of ${len} bytes`));
        return;
      }
      if (total + 4 + len > readable) break;
      total += 4 + len;
    }
    if (total === 0) return;
    // Decoded in place: FrameReader copies `bytes` fields out of the reused input buffer.
    let p = 0;
    while (p < total && this.conn === conn) {
      const end = p + 4 + view.readUInt32BE(p);
      this.handleFrame(view, p + 4, end);
      p = end;
    }
    input.retrieve(total);
  };

  private handleFrame(chunk: globalThis.Buffer, start: number, end: number): void {
    const metaEnd = start + 2 + chunk.readUInt16BE(start);
    const meta = this.meta;
    try {
      if (metaEnd > end) throw new RpcError('PROTOCOL_ERROR', 'header longer than its frame');
      decodeMeta(chunk, start + 2, metaEnd, meta);
    } catch (error) {
      this.close(error instanceof RpcError ? error : new RpcError('PROTOCOL_ERROR', String(error)));
      return;
    }
    if (meta.kind === FrameKind.GOAWAY) {
      if (meta.status === WireStatus.BAD_REQUEST) {
        this.close(new RpcError('PROTOCOL_ERROR', `${this.key}: ${meta.error}`));
      } else {
        this.drain(meta.error || 'provider is shutting down');
      }
      return;
    }
    if (meta.kind !== FrameKind.RESPONSE) return;
    const call = this.inFlight.get(meta.callId);
    if (call === undefined) return; // answered after its deadline: nobody waits for it
    this.inFlight.delete(meta.callId);
    call.callId = 0;
    if (meta.status !== WireStatus.OK) {
      const code = codeOfStatus(meta.status);
      // UNAVAILABLE from a provider means it refused the call before running it.
      const mayHaveExecuted = code !== 'UNAVAILABLE' && code !== 'RESOURCE_EXHAUSTED';
      this.owner.callFailed(call, new RpcError(code, meta.error || code, { mayHaveExecuted }));
    } else {
      let response: object;
      try {
        this.reader.reset(chunk, metaEnd, end);
        response = call.method.responseType.decode(this.reader, end - metaEnd);
      } catch (error) {
        this.owner.callFailed(
          call,
          new RpcError('BAD_RESPONSE', `cannot decode ${call.method.responseType.name}: ${String(error)}`),
        );
        this.afterSettle();
        return;
      }
      this.owner.callSucceeded(call, response);
    }
    this.afterSettle();
  }
}
