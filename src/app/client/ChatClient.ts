import { EventLoop } from '../../net/EventLoop.js';
import { LengthHeaderCodec } from '../../net/LengthHeaderCodec.js';
import { TcpClient } from '../../net/TcpClient.js';
import type { TcpConnection } from '../../net/TcpConnection.js';
import type { TimerId } from '../../net/TimerQueue.js';
import { MsgId } from '../protocol/msgid.js';
import { type ClientCodec, type CodecName, loadClientCodec } from './codec.js';
import { deferred } from './deferred.js';
import { ChatClientError, describeSocketError } from './errors.js';
import {
  type AddFriendReply,
  asChatPush,
  asServerError,
  type ChatAckReply,
  type ChatPush,
  type GroupReply,
  type LoginReply,
  type LogoutReply,
  normalizeAddFriend,
  normalizeChatAck,
  normalizeGroup,
  normalizeLogin,
  normalizeLogout,
  normalizePong,
  normalizeRegister,
  type PongReply,
  ProtocolViolation,
  type RegisterReply,
  type ServerError,
  type WireObject,
} from './types.js';

export interface ChatClientOptions {
  host: string;
  port: number;
  /** Wire codec: 'json' (framed JSON, default), 'protobuf', or your own ClientCodec. */
  codec?: CodecName | ClientCodec;
  /** Acknowledge pushes with coalesced DELIVER_ACKs. Default true. */
  autoAck?: boolean;
  /** Send a DELIVER_ACK at most this long after an unacknowledged push. Default 50 ms. */
  ackDelayMs?: number;
  /** …or as soon as this many pushes are unacknowledged. Default 64. */
  ackEvery?: number;
  /** Reject `connect` with TIMEOUT after this long. Default 10 000 ms; 0 = no limit. */
  connectTimeoutMs?: number;
  /** Reject a request with TIMEOUT when its reply takes longer. Default 0 = no limit. */
  requestTimeoutMs?: number;
  /** Send a PING when nothing else was sent for this long (the server drops idle framed
   * connections after 90 s). Default 0 = off. */
  keepAliveMs?: number;
  /** Pushes kept for `waitForPushes`/`takePushes` when nobody waits; older ones are dropped.
   * Default 10 000; 0 keeps none (use the 'push' event). */
  pushBufferSize?: number;
  /** Largest frame accepted from the server. Default 16 MiB. */
  maxFrameBytes?: number;
  /** Force-close a graceful `close()` the server has not completed after this long. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Reactor to use; default the process-wide EventLoop. */
  loop?: EventLoop;
}

export interface SendChatOptions {
  /** Client message id: a retried send with the same cmid is stored once (docs/PROTOCOL.md §7). */
  cmid?: string;
  /** "YYYY-MM-DD HH:MM:SS"; the server stamps its own time when absent. */
  time?: string;
}

export interface CloseInfo {
  /** Why the connection went down; null for an orderly close (either side). */
  error: ChatClientError | null;
  /** True when `close()` or `destroy()` of this client started it. */
  local: boolean;
}

export interface ChatClientStats {
  /** Frames sent and received. */
  framesOut: number;
  framesIn: number;
  /** Pushes delivered to listeners (seq > lastSeq). */
  pushes: number;
  /** Pushes ignored because their seq was ≤ lastSeq (re-sent after a reconnect). */
  duplicates: number;
  /** Pushes whose seq skipped ahead of lastSeq + 1 (counted only once lastSeq > 0). */
  gaps: number;
  /** DELIVER_ACK frames sent (automatic and manual). */
  acksSent: number;
}

export interface ChatClientEvents {
  push: (push: ChatPush) => void;
  close: (info: CloseInfo) => void;
  /** An ERROR (msgid 20) that matched no pending request. */
  serverError: (error: ServerError) => void;
  /** Any other frame that is neither a push nor the reply to a pending request. */
  unsolicited: (message: WireObject) => void;
}

type Listeners = { [K in keyof ChatClientEvents]: readonly ChatClientEvents[K][] };

/** Reply msgid each request expects (besides ERROR). -1: any frame carrying the reqid. */
const ANY_REPLY = -1;

class Pending {
  timer: TimerId | null = null;

  constructor(
    readonly reqid: number,
    readonly expect: number,
    readonly settle: (reply: WireObject) => void,
    readonly fail: (error: ChatClientError) => void,
  ) {}
}

interface PushWaiter {
  n: number;
  resolve: (pushes: ChatPush[]) => void;
  reject: (error: ChatClientError) => void;
  timer: TimerId | null;
}

/** FIFO of pushes with O(1) amortized removal from the front (Array#shift is O(n)). */
class PushQueue {
  private items: ChatPush[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(p: ChatPush): void {
    this.items.push(p);
  }

  /** Removes and returns the oldest `n` (at most all). */
  take(n: number): ChatPush[] {
    const out = this.items.slice(this.head, Math.min(this.head + n, this.items.length));
    this.drop(n);
    return out;
  }

  /** Removes the oldest `n` (at most all). */
  drop(n: number): void {
    this.head = Math.min(this.head + n, this.items.length);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

const DEFAULTS = {
  autoAck: true,
  ackDelayMs: 50,
  ackEvery: 64,
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 0,
  keepAliveMs: 0,
  pushBufferSize: 10_000,
  maxFrameBytes: 16 * 1024 * 1024,
  closeTimeoutMs: 5000,
} as const;

/**
 * A client of the chat server's framed protocol (docs/PROTOCOL.md), on the net library's TcpClient
 * and LengthHeaderCodec. Requests return promises of typed replies matched by `reqid`; pushes
 * arrive as 'push' events, are tracked by seq (duplicates dropped) and acknowledged in batches.
 *
 * Create one with `await ChatClient.connect({host, port})`. No console output, ever.
 */
export class ChatClient {
  readonly host: string;
  readonly port: number;
  readonly codec: ClientCodec;
  readonly loop: EventLoop;
  readonly stats: ChatClientStats = {
    framesOut: 0,
    framesIn: 0,
    pushes: 0,
    duplicates: 0,
    gaps: 0,
    acksSent: 0,
  };

  private readonly autoAck: boolean;
  private readonly ackDelayMs: number;
  private readonly ackEvery: number;
  private readonly requestTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly pushBufferSize: number;
  private readonly closeTimeoutMs: number;

  private readonly tcp: TcpClient;
  private readonly frames: LengthHeaderCodec;
  private conn: TcpConnection | null = null;
  private state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting';
  private localClose = false;
  private failure: ChatClientError | null = null;
  private socketError: Error | null = null;
  private readonly closing = deferred<CloseInfo>();

  private nextReqid = 1;
  private readonly pending = new Map<number, Pending>();

  private lastSeqValue = 0;
  private ackedSeq = 0;
  private unacked = 0;
  private ackTimer: TimerId | null = null;

  private keepAliveTimer: TimerId | null = null;
  private closeTimer: TimerId | null = null;
  /** close() is waiting for the replies to requests already sent. */
  private draining = false;
  private sentSinceTick = false;

  private readonly pushQueue = new PushQueue();
  private readonly waiters: PushWaiter[] = [];

  private listeners: Listeners = { push: [], close: [], serverError: [], unsolicited: [] };

  private userIdValue = 0;
  private userNameValue = '';

  private constructor(options: ChatClientOptions, codec: ClientCodec) {
    this.host = options.host;
    this.port = options.port;
    this.codec = codec;
    this.loop = options.loop ?? EventLoop.default();
    this.autoAck = options.autoAck ?? DEFAULTS.autoAck;
    this.ackDelayMs = options.ackDelayMs ?? DEFAULTS.ackDelayMs;
    this.ackEvery = Math.max(1, options.ackEvery ?? DEFAULTS.ackEvery);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this.keepAliveMs = options.keepAliveMs ?? DEFAULTS.keepAliveMs;
    this.pushBufferSize = options.pushBufferSize ?? DEFAULTS.pushBufferSize;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
    this.frames = new LengthHeaderCodec(this.onFrame, {
      maxFrameSize: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      onError: (_conn, error) => {
        this.failure ??= new ChatClientError('PROTOCOL', `bad frame from server: ${error.message}`, {
          cause: error,
        });
      },
    });
    this.tcp = new TcpClient({
      host: this.host,
      port: this.port,
      name: 'ChatClient',
      loop: this.loop,
      noDelay: true,
    });
    this.tcp.setMessageCallback(this.frames.onMessage);
  }

  /** Connects; rejects with ChatClientError CONNECT (or TIMEOUT) when the server cannot be reached. */
  static async connect(options: ChatClientOptions): Promise<ChatClient> {
    const client = new ChatClient(options, await loadClientCodec(options.codec));
    return client.start(options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
  }

  private start(timeoutMs: number): Promise<ChatClient> {
    return new Promise<ChatClient>((resolve, reject) => {
      let timer: TimerId | null = null;
      const where = `${this.host}:${this.port}`;
      const settleConnect = (error: ChatClientError | null): void => {
        if (timer !== null) this.loop.cancel(timer);
        timer = null;
        if (error === null) {
          resolve(this);
          return;
        }
        this.state = 'closed';
        this.failure = error;
        this.closing.resolve({ error, local: false });
        reject(error);
      };
      this.tcp.setConnectionCallback((conn) => {
        if (conn.connected) {
          this.conn = conn;
          this.state = 'open';
          conn.setErrorCallback((_c, error) => {
            this.socketError ??= error;
          });
          if (this.keepAliveMs > 0)
            this.keepAliveTimer = this.loop.runEvery(this.keepAliveMs, this.keepAliveTick);
          settleConnect(null);
        } else {
          this.onDown();
        }
      });
      this.tcp.setConnectFailedCallback((error) => {
        settleConnect(
          new ChatClientError('CONNECT', `cannot connect to ${where}: ${describeSocketError(error)}`, {
            cause: error,
          }),
        );
      });
      if (timeoutMs > 0) {
        timer = this.loop.runAfter(timeoutMs, () => {
          timer = null;
          this.tcp.stop();
          settleConnect(
            new ChatClientError('TIMEOUT', `cannot connect to ${where}: timed out after ${timeoutMs} ms`),
          );
        });
      }
      this.tcp.connect();
    });
  }

  // ---------------------------------------------------------------- state

  /** True while the connection is up and `close()`/`destroy()` has not been called. */
  get connected(): boolean {
    return this.state === 'open';
  }

  /** Resolves once the connection is down, with why. */
  get closed(): Promise<CloseInfo> {
    return this.closing.promise;
  }

  /** Highest push seq processed since the last successful login (or the `lastseq` given to it). */
  get lastSeq(): number {
    return this.lastSeqValue;
  }

  /** Logged-in user's id, 0 when not logged in. */
  get userId(): number {
    return this.userIdValue;
  }

  get userName(): string {
    return this.userNameValue;
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Local address "ip:port" of the connection ('' when down). */
  get localAddress(): string {
    return this.conn?.localAddress.toIpPort() ?? '';
  }

  // ---------------------------------------------------------------- events

  on<K extends keyof ChatClientEvents>(event: K, listener: ChatClientEvents[K]): () => void {
    const next = [...this.listeners[event], listener];
    this.listeners = { ...this.listeners, [event]: next };
    return () => this.off(event, listener);
  }

  off<K extends keyof ChatClientEvents>(event: K, listener: ChatClientEvents[K]): void {
    const list = this.listeners[event] as readonly ChatClientEvents[K][];
    const at = list.indexOf(listener);
    if (at < 0) return;
    const next = list.slice(0, at).concat(list.slice(at + 1));
    this.listeners = { ...this.listeners, [event]: next };
  }

  /** Shorthand for `on('push', cb)`. Returns the unsubscribe function. */
  onPush(listener: (push: ChatPush) => void): () => void {
    return this.on('push', listener);
  }

  private emit<K extends keyof ChatClientEvents>(event: K, ...args: Parameters<ChatClientEvents[K]>): void {
    const list = this.listeners[event] as readonly ((...a: Parameters<ChatClientEvents[K]>) => void)[];
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(...args);
      } catch (error) {
        // A listener's bug must not corrupt the client's state; surface it as an uncaught error.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  // ---------------------------------------------------------------- requests

  register(name: string, password: string): Promise<RegisterReply> {
    return this.call({ msgid: MsgId.REG_MSG, name, password }, MsgId.REG_MSG_ACK, normalizeRegister);
  }

  /** Logs in. `lastseq`: the highest seq this user already processed; only later messages are pushed. */
  login(id: number, password: string, lastseq?: number): Promise<LoginReply> {
    const body: WireObject = { msgid: MsgId.LOGIN_MSG, id, password };
    if (lastseq !== undefined) body.lastseq = lastseq;
    return this.call(body, MsgId.LOGIN_MSG_ACK, (o) => {
      const reply = normalizeLogin(o);
      if (reply.errno === 0 && reply.msgid === MsgId.LOGIN_MSG_ACK) {
        // Synchronously, before the pushes that follow the ack in the same read are processed.
        this.resetInbox(lastseq ?? 0);
        this.userIdValue = reply.id;
        this.userNameValue = reply.name;
      }
      return reply;
    });
  }

  /** With autoAck, flushes the pending DELIVER_ACK first; then logs out. */
  logout(): Promise<LogoutReply> {
    if (this.autoAck) this.flushAck();
    return this.call({ msgid: MsgId.LOGINOUT_MSG }, MsgId.LOGINOUT_ACK, (o) => {
      const reply = normalizeLogout(o);
      if (reply.errno === 0 && reply.msgid === MsgId.LOGINOUT_ACK) {
        this.userIdValue = 0;
        this.userNameValue = '';
        this.resetInbox(0);
      }
      return reply;
    });
  }

  sendChat(toid: number, msg: string, opts?: SendChatOptions): Promise<ChatAckReply> {
    const body: WireObject = { msgid: MsgId.ONE_CHAT_MSG, toid, msg };
    if (opts?.cmid !== undefined) body.cmid = opts.cmid;
    if (opts?.time !== undefined) body.time = opts.time;
    return this.call(body, MsgId.ONE_CHAT_ACK, normalizeChatAck);
  }

  groupChat(groupid: number, msg: string, opts?: SendChatOptions): Promise<ChatAckReply> {
    const body: WireObject = { msgid: MsgId.GROUP_CHAT_MSG, groupid, msg };
    if (opts?.cmid !== undefined) body.cmid = opts.cmid;
    if (opts?.time !== undefined) body.time = opts.time;
    return this.call(body, MsgId.GROUP_CHAT_ACK, normalizeChatAck);
  }

  addFriend(friendid: number): Promise<AddFriendReply> {
    return this.call({ msgid: MsgId.ADD_FRIEND_MSG, friendid }, MsgId.ADD_FRIEND_ACK, normalizeAddFriend);
  }

  createGroup(groupname: string, groupdesc: string): Promise<GroupReply> {
    return this.call(
      { msgid: MsgId.CREATE_GROUP_MSG, groupname, groupdesc },
      MsgId.CREATE_GROUP_ACK,
      normalizeGroup,
    );
  }

  joinGroup(groupid: number): Promise<GroupReply> {
    return this.call({ msgid: MsgId.ADD_GROUP_MSG, groupid }, MsgId.ADD_GROUP_ACK, normalizeGroup);
  }

  ping(t?: number | string): Promise<PongReply> {
    const body: WireObject = { msgid: MsgId.PING };
    if (t !== undefined) body.t = t;
    return this.call(body, MsgId.PONG, normalizePong);
  }

  /**
   * Sends DELIVER_ACK now (no reply): every push with seq ≤ `seq` was received. With `autoAck`
   * the client does this itself; this is for `autoAck: false` and for tests.
   */
  deliverAck(seq: number = this.lastSeqValue): void {
    if (this.conn === null || this.state === 'closed') return;
    this.write({ msgid: MsgId.DELIVER_ACK, seq, reqid: this.nextReqid++ });
    this.stats.acksSent++;
    if (seq > this.ackedSeq) this.ackedSeq = seq;
  }

  /**
   * Sends any object (a copy, with a fresh `reqid` added) as a request and resolves with the raw
   * reply frame carrying that reqid, whatever its msgid. For protocol tests.
   */
  request(body: WireObject): Promise<WireObject> {
    return this.call({ ...body }, ANY_REPLY, (o) => o);
  }

  /** Sends one object as a frame, exactly as given (no reqid added). For protocol tests. */
  sendRaw(body: WireObject): void {
    if (this.state === 'open') this.write(body);
  }

  /** Writes bytes to the socket as they are (no framing). For protocol tests. */
  writeBytes(bytes: Uint8Array | string): void {
    if (this.state !== 'open' || this.conn === null) return;
    this.conn.send(bytes);
    this.sentSinceTick = true;
  }

  private call<T>(body: WireObject, expect: number, normalize: (o: WireObject) => T): Promise<T> {
    if (this.state !== 'open') {
      return Promise.reject(this.failure ?? new ChatClientError('CLOSED', 'connection is closed'));
    }
    const reqid = this.nextReqid++;
    body.reqid = reqid;
    return new Promise<T>((resolve, reject) => {
      const p = new Pending(
        reqid,
        expect,
        (reply) => {
          let value: T;
          try {
            value = normalize(reply);
          } catch (e) {
            reject(
              e instanceof ProtocolViolation
                ? new ChatClientError('PROTOCOL', `bad reply to msgid ${String(body.msgid)}: ${e.message}`)
                : e,
            );
            return;
          }
          resolve(value);
        },
        reject,
      );
      if (this.requestTimeoutMs > 0) {
        p.timer = this.loop.runAfter(this.requestTimeoutMs, () => {
          p.timer = null;
          if (this.pending.get(reqid) !== p) return;
          this.pending.delete(reqid);
          if (this.draining && this.pending.size === 0) this.finishClose();
          reject(
            new ChatClientError(
              'TIMEOUT',
              `no reply to msgid ${String(body.msgid)} (reqid ${reqid}) within ${this.requestTimeoutMs} ms`,
            ),
          );
        });
      }
      this.pending.set(reqid, p);
      try {
        this.write(body);
      } catch (e) {
        // The codec cannot encode this body (e.g. a msgid protobuf has no type for).
        this.pending.delete(reqid);
        if (p.timer !== null) this.loop.cancel(p.timer);
        reject(e);
      }
    });
  }

  private write(body: WireObject): void {
    const codec = this.codec;
    const frame =
      codec.encodeFrame !== undefined
        ? codec.encodeFrame(body)
        : LengthHeaderCodec.encode(codec.encode(body));
    this.conn!.send(frame);
    this.stats.framesOut++;
    this.sentSinceTick = true;
  }

  // ---------------------------------------------------------------- incoming

  private readonly onFrame = (conn: TcpConnection, frame: globalThis.Buffer): void => {
    let obj: WireObject;
    try {
      obj = this.codec.decode(frame);
    } catch (e) {
      this.protocolFailure(
        conn,
        `undecodable frame from server: ${e instanceof Error ? e.message : String(e)}`,
        e,
      );
      return;
    }
    this.stats.framesIn++;
    const msgid = obj.msgid;
    if ((msgid === MsgId.ONE_CHAT_MSG || msgid === MsgId.GROUP_CHAT_MSG) && obj.reqid === undefined) {
      let push: ChatPush;
      try {
        push = asChatPush(obj);
      } catch (e) {
        this.protocolFailure(conn, (e as Error).message, e);
        return;
      }
      this.onPushMessage(push);
      return;
    }
    const p = this.match(obj);
    if (p !== undefined) {
      this.pending.delete(p.reqid);
      if (p.timer !== null) this.loop.cancel(p.timer);
      if (p.expect !== ANY_REPLY && msgid !== p.expect && msgid !== MsgId.ERROR) {
        if (this.draining && this.pending.size === 0) this.finishClose();
        p.fail(
          new ChatClientError(
            'PROTOCOL',
            `reply to reqid ${p.reqid} has msgid ${String(msgid)}, expected ${p.expect}`,
          ),
        );
        return;
      }
      p.settle(obj);
      if (this.draining && this.pending.size === 0) this.finishClose();
      return;
    }
    if (msgid === MsgId.ERROR) this.emit('serverError', asServerError(obj));
    else this.emit('unsolicited', obj);
  };

  /** The pending request a reply answers: by reqid, else (no reqid) the oldest one expecting its msgid. */
  private match(obj: WireObject): Pending | undefined {
    const r = obj.reqid;
    if (r !== undefined && r !== null) {
      const key =
        typeof r === 'number' ? r : typeof r === 'string' && /^\d+$/.test(r) ? Number(r) : Number.NaN;
      return this.pending.get(key);
    }
    const msgid = obj.msgid;
    if (typeof msgid !== 'number' || msgid === MsgId.ERROR) return undefined;
    for (const p of this.pending.values()) if (p.expect === msgid) return p;
    return undefined;
  }

  private onPushMessage(push: ChatPush): void {
    const seq = push.seq;
    if (seq <= this.lastSeqValue) {
      this.stats.duplicates++;
      return;
    }
    if (this.lastSeqValue > 0 && seq !== this.lastSeqValue + 1) this.stats.gaps++;
    this.lastSeqValue = seq;
    this.stats.pushes++;
    if (this.autoAck) {
      if (++this.unacked >= this.ackEvery) this.flushAck();
      else if (this.ackTimer === null) this.ackTimer = this.loop.runAfter(this.ackDelayMs, this.onAckTimer);
    }
    if (this.waiters.length > 0 || this.pushBufferSize > 0) {
      this.pushQueue.push(push);
      if (this.waiters.length > 0) this.serveWaiters();
      else if (this.pushQueue.length > this.pushBufferSize) this.pushQueue.drop(1);
    }
    this.emit('push', push);
  }

  private readonly onAckTimer = (): void => {
    this.ackTimer = null;
    this.flushAck();
  };

  /** Sends the coalesced DELIVER_ACK for everything processed so far, if anything is unacknowledged. */
  flushAck(): void {
    if (this.ackTimer !== null) {
      this.loop.cancel(this.ackTimer);
      this.ackTimer = null;
    }
    this.unacked = 0;
    if (this.lastSeqValue > this.ackedSeq) this.deliverAck(this.lastSeqValue);
  }

  private resetInbox(lastseq: number): void {
    if (this.ackTimer !== null) {
      this.loop.cancel(this.ackTimer);
      this.ackTimer = null;
    }
    this.unacked = 0;
    this.lastSeqValue = lastseq;
    this.ackedSeq = lastseq;
  }

  private readonly keepAliveTick = (): void => {
    if (this.state !== 'open') return;
    if (!this.sentSinceTick) this.ping().catch(() => {});
    this.sentSinceTick = false;
  };

  // ---------------------------------------------------------------- pushes for tests

  /**
   * Resolves with the next `n` pushes (oldest first), counting pushes already buffered and not
   * yet taken. Rejects with TIMEOUT after `timeoutMs` (the pushes stay buffered) or CLOSED.
   */
  waitForPushes(n: number, timeoutMs = 5000): Promise<ChatPush[]> {
    if (this.waiters.length === 0 && this.pushQueue.length >= n) {
      return Promise.resolve(this.pushQueue.take(n));
    }
    if (this.state === 'closed' || this.state === 'closing') {
      const have = this.pushQueue.length;
      return Promise.reject(
        this.failure ??
          new ChatClientError('CLOSED', `connection closed with ${have} of ${n} pushes received`),
      );
    }
    return new Promise<ChatPush[]>((resolve, reject) => {
      const w: PushWaiter = { n, resolve, reject, timer: null };
      if (timeoutMs > 0) {
        w.timer = this.loop.runAfter(timeoutMs, () => {
          w.timer = null;
          const at = this.waiters.indexOf(w);
          if (at < 0) return;
          this.waiters.splice(at, 1);
          reject(
            new ChatClientError(
              'TIMEOUT',
              `waited ${timeoutMs} ms for ${n} pushes, ${Math.min(this.pushQueue.length, n)} arrived`,
            ),
          );
          this.serveWaiters();
        });
      }
      this.waiters.push(w);
    });
  }

  /** Removes and returns every buffered push. */
  takePushes(): ChatPush[] {
    return this.pushQueue.take(this.pushQueue.length);
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0 && this.pushQueue.length >= this.waiters[0]!.n) {
      const w = this.waiters.shift()!;
      if (w.timer !== null) this.loop.cancel(w.timer);
      w.resolve(this.pushQueue.take(w.n));
    }
  }

  // ---------------------------------------------------------------- closing

  /**
   * Graceful close: new requests are refused (CLOSED) at once; the replies to requests already
   * sent are awaited; then the pending DELIVER_ACK is sent (with autoAck), the connection is
   * half-closed after the output is flushed, and the promise resolves when the server has closed
   * its side. Whatever is left after `closeTimeoutMs` is force-closed.
   */
  close(): Promise<CloseInfo> {
    if (this.state === 'open') {
      this.state = 'closing';
      this.localClose = true;
      this.stopKeepAlive();
      if (this.closeTimeoutMs > 0) {
        this.closeTimer = this.loop.runAfter(this.closeTimeoutMs, () => {
          this.closeTimer = null;
          this.conn?.forceClose();
        });
      }
      if (this.pending.size === 0) this.finishClose();
      else this.draining = true;
    } else if (this.state === 'connecting') {
      this.destroy();
    }
    return this.closing.promise;
  }

  private finishClose(): void {
    this.draining = false;
    if (this.autoAck) this.flushAck();
    this.tcp.disconnect();
  }

  /** Closes at once, discarding unsent output; pending requests reject with CLOSED. */
  destroy(): void {
    if (this.state === 'closed') return;
    this.localClose = true;
    if (this.conn !== null) {
      this.state = 'closing';
      this.stopKeepAlive();
      this.conn.forceClose();
    } else {
      this.tcp.stop();
      this.onDown();
    }
  }

  private protocolFailure(conn: TcpConnection, message: string, cause: unknown): void {
    this.failure ??= new ChatClientError('PROTOCOL', message, { cause });
    conn.forceClose();
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer !== null) {
      this.loop.cancel(this.keepAliveTimer);
      this.keepAliveTimer = null;
    }
  }

  private onDown(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.conn = null;
    this.stopKeepAlive();
    for (const t of [this.ackTimer, this.closeTimer]) if (t !== null) this.loop.cancel(t);
    this.ackTimer = null;
    this.closeTimer = null;
    let error = this.failure;
    if (error === null && this.socketError !== null) {
      error = new ChatClientError('CLOSED', `connection lost: ${describeSocketError(this.socketError)}`, {
        cause: this.socketError,
      });
    }
    this.failure = error;
    const requestError =
      error ??
      new ChatClientError('CLOSED', `connection to ${this.host}:${this.port} closed before the reply`);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer !== null) this.loop.cancel(p.timer);
      p.fail(requestError);
    }
    const waiters = this.waiters.splice(0);
    for (const w of waiters) {
      if (w.timer !== null) this.loop.cancel(w.timer);
      w.reject(
        error ??
          new ChatClientError(
            'CLOSED',
            `connection closed with ${this.pushQueue.length} of ${w.n} pushes received`,
          ),
      );
    }
    const info: CloseInfo = { error, local: this.localClose };
    this.closing.resolve(info);
    this.emit('close', info);
  }
}
