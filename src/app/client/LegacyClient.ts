import type { Buffer as NetBuffer } from '../../net/Buffer.js';
import { EventLoop } from '../../net/EventLoop.js';
import { TcpClient } from '../../net/TcpClient.js';
import type { TcpConnection } from '../../net/TcpConnection.js';
import type { TimerId } from '../../net/TimerQueue.js';
import { deferred } from './deferred.js';
import { ChatClientError, describeSocketError } from './errors.js';
import { classicTime, sleep } from './time.js';
import type { WireObject } from './types.js';

export interface LegacyClientOptions {
  host: string;
  port: number;
  /** Default 10 000 ms; 0 = no limit. */
  connectTimeoutMs?: number;
  /** Largest message accepted from the server (without its `\0`). Default 16 MiB. */
  maxMessageBytes?: number;
  loop?: EventLoop;
}

/** A message from the server, as parsed JSON. */
export type LegacyMessage = WireObject;

interface Waiter {
  match: (m: LegacyMessage) => boolean;
  resolve: (m: LegacyMessage) => void;
  reject: (e: ChatClientError) => void;
  timer: TimerId | null;
}

const NUL = 0;

/**
 * A client that speaks exactly the classic C++ client's bytes: JSON text + `\0` in both
 * directions, and the classic request shapes (`{"msgid":1,"id":13,"password":"123"}`,
 * `{"msgid":6,"id":13,"name":"zhang","toid":15,"msg":"hi","time":"…"}`, …).
 *
 * Incoming messages are queued in arrival order; `next()` / `waitFor()` take them out (a
 * message no waiter wants stays queued). For legacy-codec tests it can also write arbitrary
 * bytes in arbitrary splits (`writeRaw`, `writeChunks`, `LegacyClient.split`).
 */
export class LegacyClient {
  readonly loop: EventLoop;
  private readonly tcp: TcpClient;
  private readonly maxMessageBytes: number;
  private conn: TcpConnection | null = null;
  private open = false;
  private localClose = false;
  private failure: ChatClientError | null = null;
  private readonly queue: LegacyMessage[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly closing = deferred<{ error: ChatClientError | null; local: boolean }>();
  private receivedCount = 0;
  private listeners: readonly ((m: LegacyMessage) => void)[] = [];

  /** The logged-in user as the server reported it; used to fill the classic `id`/`name` fields. */
  userId = 0;
  userName = '';

  private constructor(options: LegacyClientOptions) {
    this.loop = options.loop ?? EventLoop.default();
    this.maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
    this.tcp = new TcpClient({
      host: options.host,
      port: options.port,
      name: 'LegacyClient',
      loop: this.loop,
      noDelay: true,
    });
    this.tcp.setMessageCallback(this.onBytes);
  }

  static connect(options: LegacyClientOptions): Promise<LegacyClient> {
    const client = new LegacyClient(options);
    const where = `${options.host}:${options.port}`;
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      let timer: TimerId | null = null;
      const fail = (error: ChatClientError): void => {
        if (timer !== null) client.loop.cancel(timer);
        client.failure = error;
        client.closing.resolve({ error, local: false });
        reject(error);
      };
      client.tcp.setConnectionCallback((conn) => {
        if (conn.connected) {
          if (timer !== null) client.loop.cancel(timer);
          client.conn = conn;
          client.open = true;
          conn.setErrorCallback((_c, error) => {
            client.failure ??= new ChatClientError(
              'CLOSED',
              `connection lost: ${describeSocketError(error)}`,
              {
                cause: error,
              },
            );
          });
          resolve(client);
        } else {
          client.onDown();
        }
      });
      client.tcp.setConnectFailedCallback((error) => {
        fail(
          new ChatClientError('CONNECT', `cannot connect to ${where}: ${describeSocketError(error)}`, {
            cause: error,
          }),
        );
      });
      if (timeoutMs > 0) {
        timer = client.loop.runAfter(timeoutMs, () => {
          timer = null;
          client.tcp.stop();
          fail(new ChatClientError('TIMEOUT', `cannot connect to ${where}: timed out after ${timeoutMs} ms`));
        });
      }
      client.tcp.connect();
    });
  }

  /** The classic wire bytes of one message: JSON text followed by one `\0`. */
  static encode(obj: object): globalThis.Buffer {
    const text = JSON.stringify(obj);
    const n = globalThis.Buffer.byteLength(text, 'utf8');
    const out = globalThis.Buffer.allocUnsafe(n + 1);
    out.write(text, 0, 'utf8');
    out[n] = NUL;
    return out;
  }

  /** Cuts `bytes` at the given offsets (ascending, each within 0..length): `split(b, [3, 10])` → 3 pieces. */
  static split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    let from = 0;
    for (const at of cuts) {
      if (at < from || at > bytes.length)
        throw new RangeError(`bad cut ${at} (previous ${from}, length ${bytes.length})`);
      out.push(bytes.subarray(from, at));
      from = at;
    }
    out.push(bytes.subarray(from));
    return out;
  }

  get connected(): boolean {
    return this.open;
  }

  /** Resolves once the connection is down. */
  get closed(): Promise<{ error: ChatClientError | null; local: boolean }> {
    return this.closing.promise;
  }

  /** Messages received so far (taken or not). */
  get received(): number {
    return this.receivedCount;
  }

  /** Messages received and not yet taken by next()/waitFor()/take(). */
  get queued(): readonly LegacyMessage[] {
    return this.queue;
  }

  /** Called for every message as it arrives (it is queued as well). Returns the unsubscribe function. */
  onMessage(listener: (m: LegacyMessage) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  // ---------------------------------------------------------------- writing

  /** Sends one message: JSON + `\0`, one write. */
  send(obj: object): void {
    this.writeRaw(LegacyClient.encode(obj));
  }

  /** Writes bytes exactly as given, in one write. */
  writeRaw(bytes: Uint8Array | string): void {
    if (!this.open || this.conn === null) {
      throw this.failure ?? new ChatClientError('CLOSED', 'connection is closed');
    }
    this.conn.send(bytes);
  }

  /**
   * Writes each chunk separately, waiting `gapMs` between writes so that the server most
   * likely reads them separately too (Nagle is off).
   */
  async writeChunks(chunks: readonly (Uint8Array | string)[], gapMs = 5): Promise<void> {
    for (let i = 0; i < chunks.length; i++) {
      if (i > 0 && gapMs > 0) await sleep(gapMs);
      this.writeRaw(chunks[i]!);
    }
  }

  // ---------------------------------------------------------------- reading

  /** The next queued message; waits up to `timeoutMs` for one. */
  next(timeoutMs = 5000): Promise<LegacyMessage> {
    return this.waitFor(() => true, timeoutMs);
  }

  /** Takes the first queued (or future) message matching `match`; others stay queued. */
  waitFor(match: (m: LegacyMessage) => boolean, timeoutMs = 5000): Promise<LegacyMessage> {
    const at = this.queue.findIndex(match);
    if (at >= 0) return Promise.resolve(this.queue.splice(at, 1)[0]!);
    if (!this.open)
      return Promise.reject(this.failure ?? new ChatClientError('CLOSED', 'connection is closed'));
    return new Promise((resolve, reject) => {
      const w: Waiter = { match, resolve, reject, timer: null };
      if (timeoutMs > 0) {
        w.timer = this.loop.runAfter(timeoutMs, () => {
          w.timer = null;
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new ChatClientError('TIMEOUT', `no matching message within ${timeoutMs} ms`));
        });
      }
      this.waiters.push(w);
    });
  }

  /** The next message with this msgid. */
  waitForMsgid(msgid: number, timeoutMs = 5000): Promise<LegacyMessage> {
    return this.waitFor((m) => m.msgid === msgid, timeoutMs);
  }

  /** Removes and returns every queued message. */
  take(): LegacyMessage[] {
    return this.queue.splice(0);
  }

  private readonly onBytes = (conn: TcpConnection, buffer: NetBuffer): void => {
    for (;;) {
      const nul = buffer.findByte(NUL);
      if (nul < 0) {
        if (buffer.readableBytes() > this.maxMessageBytes) {
          this.protocolFailure(conn, `message from server exceeds ${this.maxMessageBytes} bytes`);
        }
        return;
      }
      const text = buffer.retrieveAsString(nul);
      buffer.retrieve(1);
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch {
        this.protocolFailure(conn, `server sent a message that is not JSON: ${text.slice(0, 80)}`);
        return;
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
        this.protocolFailure(conn, `server sent JSON that is not an object: ${text.slice(0, 80)}`);
        return;
      }
      this.deliver(obj as LegacyMessage);
      if (conn.disconnected) return;
    }
  };

  private deliver(m: LegacyMessage): void {
    this.receivedCount++;
    for (const l of this.listeners) l(m);
    const at = this.waiters.findIndex((w) => w.match(m));
    if (at < 0) {
      this.queue.push(m);
      return;
    }
    const w = this.waiters.splice(at, 1)[0]!;
    if (w.timer !== null) this.loop.cancel(w.timer);
    w.resolve(m);
  }

  private protocolFailure(conn: TcpConnection, message: string): void {
    this.failure ??= new ChatClientError('PROTOCOL', message);
    conn.inputBuffer.retrieveAll();
    conn.forceClose();
  }

  private onDown(): void {
    if (!this.open && this.conn === null) return;
    this.open = false;
    this.conn = null;
    for (const w of this.waiters.splice(0)) {
      if (w.timer !== null) this.loop.cancel(w.timer);
      w.reject(
        this.failure ?? new ChatClientError('CLOSED', 'connection closed before a matching message arrived'),
      );
    }
    this.closing.resolve({ error: this.failure, local: this.localClose });
  }

  // ---------------------------------------------------------------- the classic requests

  /** `{"msgid":1,"id":…,"password":…}` → the LOGIN_MSG_ACK (msgid 2). Remembers id and name on success. */
  async login(id: number, password: string, timeoutMs = 5000): Promise<LegacyMessage> {
    this.send({ msgid: 1, id, password });
    const ack = await this.waitForMsgid(2, timeoutMs);
    if (ack.errno === 0) {
      this.userId = typeof ack.id === 'number' ? ack.id : id;
      this.userName = typeof ack.name === 'string' ? ack.name : '';
    }
    return ack;
  }

  /** `{"msgid":4,"name":…,"password":…}` → the REG_MSG_ACK (msgid 5). */
  register(name: string, password: string, timeoutMs = 5000): Promise<LegacyMessage> {
    this.send({ msgid: 4, name, password });
    return this.waitForMsgid(5, timeoutMs);
  }

  /** `{"msgid":6,"id":…,"name":…,"toid":…,"msg":…,"time":…}`; the classic protocol has no reply. */
  chat(toid: number, msg: string, time: string = classicTime()): void {
    this.send({ msgid: 6, id: this.userId, name: this.userName, toid, msg, time });
  }

  /** `{"msgid":7,"id":…,"friendid":…}`; no reply. */
  addFriend(friendid: number): void {
    this.send({ msgid: 7, id: this.userId, friendid });
  }

  /** `{"msgid":8,"id":…,"groupname":…,"groupdesc":…}`; no reply. */
  createGroup(groupname: string, groupdesc: string): void {
    this.send({ msgid: 8, id: this.userId, groupname, groupdesc });
  }

  /** `{"msgid":9,"id":…,"groupid":…}`; no reply. */
  addGroup(groupid: number): void {
    this.send({ msgid: 9, id: this.userId, groupid });
  }

  /** `{"msgid":10,"id":…,"name":…,"groupid":…,"msg":…,"time":…}`; no reply. */
  groupChat(groupid: number, msg: string, time: string = classicTime()): void {
    this.send({ msgid: 10, id: this.userId, name: this.userName, groupid, msg, time });
  }

  /** `{"msgid":3,"id":…}`; no reply to a classic client. */
  loginout(): void {
    this.send({ msgid: 3, id: this.userId });
    this.userId = 0;
    this.userName = '';
  }

  // ---------------------------------------------------------------- closing

  /** Half-closes after the output is flushed; resolves when the server has closed too. */
  close(): Promise<{ error: ChatClientError | null; local: boolean }> {
    if (this.open) {
      this.localClose = true;
      this.tcp.disconnect();
    }
    return this.closing.promise;
  }

  destroy(): void {
    this.localClose = true;
    if (this.conn !== null) this.conn.forceClose();
    else this.tcp.stop();
  }
}
