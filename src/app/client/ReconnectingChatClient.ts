/**
 * A chat client that survives losing its server: on top of ChatClient (one connection), it
 * reconnects — to the least-loaded gateway found in ZooKeeper with `discover`, or to a fixed
 * address (Nginx) — logs in again with its `lastseq` (so it gets exactly the messages it missed)
 * and re-sends, with their cmids, the chat messages not yet acknowledged (the server stores a
 * repeated cmid once: docs/PROTOCOL.md §7). Chat sends resolve once acknowledged, across any
 * number of reconnects, or reject after `sendTimeoutMs`.
 *
 *   const c = await ReconnectingChatClient.connect({ discover: 'zk://127.0.0.1:2181' });
 *   await c.login(id, password);
 *   c.onPush((p) => …);
 *   await c.sendChat(to, 'hi');   // acknowledged once, whatever fails in between
 *
 * Only chat messages are re-sent; any other request in flight when the connection drops
 * rejects with CLOSED (register, addfriend, creategroup are not safe to repeat blindly).
 * Re-sent messages go out in the order they were first sent; a message answered errno 8 or 9
 * ("retry") is retried after a delay and may then land after later ones.
 */
import { randomBytes } from 'node:crypto';
import { Errno } from '../protocol/errno.js';
import { ChatClient, type ChatClientOptions, type CloseInfo, type SendChatOptions } from './ChatClient.js';
import { ChatOutbox, RETRY_ERRNOS } from './ChatOutbox.js';
import { type ClientCodec, loadClientCodec } from './codec.js';
import { type Deferred, deferred } from './deferred.js';
import { ChatClientError, isChatClientError } from './errors.js';
import type { GatewayLocator, GatewayLocatorOptions } from './GatewayLocator.js';
import { backoffMs, sleep } from './time.js';
import type {
  AddFriendReply,
  ChatAckReply,
  ChatPush,
  GroupReply,
  LoginReply,
  LogoutReply,
  PongReply,
  RegisterReply,
  ServerError,
  WireObject,
} from './types.js';

export interface ReconnectingChatClientOptions extends Omit<ChatClientOptions, 'host' | 'port'> {
  /**
   * `zk://HOST:PORT[,HOST:PORT…][/root]` (root default /mprpc), or a GatewayLocator: connect to
   * the least-loaded chat gateway registered there, and to another one after each loss.
   */
  discover?: string | GatewayLocator;
  /** A fixed address instead (e.g. Nginx in front of the gateways). */
  host?: string;
  port?: number;
  /** First delay between reconnect attempts, doubled per failure. Default 100 ms. */
  reconnectDelayMs?: number;
  /** Longest delay between attempts. Default 2000 ms. */
  reconnectMaxDelayMs?: number;
  /** Give up (final 'close' with an error) after failing this long. Default 120 000 ms; 0 = never. */
  reconnectTimeoutMs?: number;
  /** A chat message not acknowledged this long after it was sent rejects with TIMEOUT. Default 120 000 ms; 0 = never. */
  sendTimeoutMs?: number;
}

export interface ReconnectingChatClientStats {
  reconnects: number;
  resent: number;
  duplicates: number;
}

export interface ReconnectInfo {
  /** "host:port" now connected to. */
  address: string;
  /** The gateway's id when discovered. */
  gateway?: string;
  /** How long the client was without a connection. */
  downMs: number;
  /** Unacknowledged chat messages sent again. */
  resent: number;
}

export interface ReconnectingChatClientEvents {
  push: (push: ChatPush) => void;
  serverError: (error: ServerError) => void;
  unsolicited: (message: WireObject) => void;
  /** The connection was lost; the client is reconnecting. */
  disconnect: (info: { address: string; error: ChatClientError | null }) => void;
  /** Connected again (and logged in again, when it was). */
  reconnect: (info: ReconnectInfo) => void;
  /** Final: `close()`/`destroy()`, or it gave up (reconnect timeout, credentials refused). */
  close: (info: CloseInfo) => void;
}

type Listeners = { [K in keyof ReconnectingChatClientEvents]: ReconnectingChatClientEvents[K][] };

interface Target {
  host: string;
  port: number;
  gateway?: string;
}

/** Login answers worth retrying: already online (a dead gateway's presence not yet gone), 8, 9. */
const LOGIN_RETRY_ERRNOS: ReadonlySet<number> = new Set([Errno.ALREADY_ONLINE, ...RETRY_ERRNOS]);

/** Settled when the client is next connected (or closed for good); nobody need be waiting. */
function nextUp(): Deferred<void> {
  const up = deferred();
  up.promise.catch(() => {});
  return up;
}

export class ReconnectingChatClient {
  private client: ChatClient | null = null;
  private target: Target | null = null;
  private state: 'connecting' | 'open' | 'closed' = 'connecting';
  private up = nextUp();
  private downSince = 0;
  private credentials: { id: number; password: string } | null = null;
  private lastSeqValue = 0;
  private readonly outbox: ChatOutbox;
  private readonly cmidPrefix = randomBytes(6).toString('hex');
  private nextCmid = 1;
  private listeners: Listeners = {
    push: [],
    serverError: [],
    unsolicited: [],
    disconnect: [],
    reconnect: [],
    close: [],
  };
  private readonly closing = deferred<CloseInfo>();
  private reconnects = 0;
  private resent = 0;
  /** Duplicate pushes the connections before the current one dropped. */
  private pastDuplicates = 0;
  private readonly reconnectDelayMs: number;
  private readonly reconnectMaxDelayMs: number;
  private readonly reconnectTimeoutMs: number;

  private constructor(
    private readonly options: ReconnectingChatClientOptions,
    private readonly codec: ClientCodec,
    private readonly locator: GatewayLocator | null,
  ) {
    this.reconnectDelayMs = options.reconnectDelayMs ?? 100;
    this.reconnectMaxDelayMs = options.reconnectMaxDelayMs ?? 2000;
    this.reconnectTimeoutMs = options.reconnectTimeoutMs ?? 120_000;
    this.outbox = new ChatOutbox({
      connection: () => (this.state === 'open' ? this.client : null),
      sendTimeoutMs: options.sendTimeoutMs ?? 120_000,
      retryDelayMs: (n) => backoffMs(n, this.reconnectDelayMs, this.reconnectMaxDelayMs),
    });
  }

  /**
   * Connects (to a discovered gateway or the fixed address); rejects with CONNECT when nothing
   * could be reached within `connectTimeoutMs` (default 10 000 ms).
   */
  static async connect(options: ReconnectingChatClientOptions): Promise<ReconnectingChatClient> {
    let locator: GatewayLocator | null = null;
    if (options.discover !== undefined) {
      const discovery = await import('./GatewayLocator.js');
      try {
        locator =
          typeof options.discover === 'string'
            ? discovery.sharedLocator(options.discover)
            : options.discover.retain();
      } catch (error) {
        throw new ChatClientError('CONNECT', (error as Error).message, { cause: error });
      }
    } else if (options.host === undefined || options.port === undefined) {
      throw new ChatClientError('CONNECT', 'ReconnectingChatClient needs discover, or host and port');
    }
    const client = new ReconnectingChatClient(options, await loadClientCodec(options.codec), locator);
    try {
      await client.establish(options.connectTimeoutMs ?? 10_000);
    } catch (error) {
      client.state = 'closed';
      await locator?.release();
      throw error;
    }
    return client;
  }

  /**
   * A locator to pass as `discover` to several clients (with options of its own); clients given
   * the same `zk://` string already share one. Call its `release()` when done with it.
   */
  static async createLocator(url: string, options?: GatewayLocatorOptions): Promise<GatewayLocator> {
    const { GatewayLocator: Locator } = await import('./GatewayLocator.js');
    return new Locator(url, options).retain();
  }

  // ---------------------------------------------------------------- state

  /**
   * Reconnects done, chat messages re-sent, and pushes received again and dropped (seq already
   * processed: 0 unless a login asked for less than it had, or the server repeated itself).
   */
  get stats(): ReconnectingChatClientStats {
    const duplicates = this.pastDuplicates + (this.client?.stats.duplicates ?? 0);
    return { reconnects: this.reconnects, resent: this.resent, duplicates };
  }

  /** Connected now (false while reconnecting). */
  get connected(): boolean {
    return this.state === 'open' && this.client?.connected === true;
  }

  /** Resolves once the client is closed for good, with why. */
  get closed(): Promise<CloseInfo> {
    return this.closing.promise;
  }

  /** "host:port" of the current (or last) server. */
  get address(): string {
    return this.target === null ? '' : `${this.target.host}:${this.target.port}`;
  }

  /** The current gateway's id (discovery only). */
  get gateway(): string | undefined {
    return this.target?.gateway;
  }

  /** Highest push seq received; the next login asks for what follows it. */
  get lastSeq(): number {
    return this.lastSeqValue;
  }

  get userId(): number {
    return this.credentials?.id ?? 0;
  }

  /** Chat messages sent and not yet acknowledged. */
  get unacknowledged(): number {
    return this.outbox.size;
  }

  // ---------------------------------------------------------------- events

  on<K extends keyof ReconnectingChatClientEvents>(
    event: K,
    listener: ReconnectingChatClientEvents[K],
  ): () => void {
    this.listeners = { ...this.listeners, [event]: [...this.listeners[event], listener] };
    return () => {
      this.listeners = {
        ...this.listeners,
        [event]: (this.listeners[event] as ReconnectingChatClientEvents[K][]).filter((l) => l !== listener),
      };
    };
  }

  onPush(listener: (push: ChatPush) => void): () => void {
    return this.on('push', listener);
  }

  private emit<K extends keyof ReconnectingChatClientEvents>(
    event: K,
    ...args: Parameters<ReconnectingChatClientEvents[K]>
  ): void {
    for (const listener of this.listeners[event] as ((
      ...a: Parameters<ReconnectingChatClientEvents[K]>
    ) => void)[]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  // ---------------------------------------------------------------- requests

  /** Logs in; remembered, so that every reconnect logs in again (with the lastseq reached). */
  async login(id: number, password: string, lastseq?: number): Promise<LoginReply> {
    const client = await this.current();
    const reply = await client.login(id, password, lastseq ?? 0);
    if (reply.errno === 0) {
      this.credentials = { id, password };
      // The connection restarted its seq tracking at `lastseq` on the ack, before the pushes
      // behind it, and has processed those already: its count is the one to carry on from.
      this.lastSeqValue = client.lastSeq;
    }
    return reply;
  }

  async logout(): Promise<LogoutReply> {
    const client = await this.current();
    const reply = await client.logout();
    if (reply.errno === 0) {
      this.credentials = null;
      this.lastSeqValue = 0;
    }
    return reply;
  }

  async register(name: string, password: string): Promise<RegisterReply> {
    return (await this.current()).register(name, password);
  }

  async addFriend(friendid: number): Promise<AddFriendReply> {
    return (await this.current()).addFriend(friendid);
  }

  async createGroup(groupname: string, groupdesc: string): Promise<GroupReply> {
    return (await this.current()).createGroup(groupname, groupdesc);
  }

  async joinGroup(groupid: number): Promise<GroupReply> {
    return (await this.current()).joinGroup(groupid);
  }

  async ping(t?: number | string): Promise<PongReply> {
    return (await this.current()).ping(t);
  }

  /** One-to-one chat; a cmid is made up when none is given. Resolves with the first ack that is not "retry". */
  sendChat(toid: number, msg: string, opts?: SendChatOptions): Promise<ChatAckReply> {
    return this.enqueue('one', toid, msg, opts);
  }

  groupChat(groupid: number, msg: string, opts?: SendChatOptions): Promise<ChatAckReply> {
    return this.enqueue('group', groupid, msg, opts);
  }

  private enqueue(
    kind: 'one' | 'group',
    to: number,
    msg: string,
    opts?: SendChatOptions,
  ): Promise<ChatAckReply> {
    if (this.state === 'closed') return Promise.reject(new ChatClientError('CLOSED', 'client is closed'));
    return this.outbox.add(kind, to, msg, opts?.cmid ?? `${this.cmidPrefix}-${this.nextCmid++}`, opts);
  }

  /** The open connection, waiting through a reconnect. */
  private async current(): Promise<ChatClient> {
    for (;;) {
      if (this.state === 'closed') throw new ChatClientError('CLOSED', 'client is closed');
      if (this.state === 'open' && this.client !== null) return this.client;
      await this.up.promise;
    }
  }

  // ---------------------------------------------------------------- connecting

  private nextTarget(timeoutMs: number): Promise<Target> | Target {
    if (this.locator === null) return { host: this.options.host!, port: this.options.port! };
    return this.locator.waitPick(timeoutMs).then((g) => ({ host: g.host, port: g.port, gateway: g.id }));
  }

  /**
   * Connects (and logs in again when it was logged in), retrying with backoff until
   * `timeoutMs`; then re-sends the unacknowledged messages.
   */
  private async establish(timeoutMs: number): Promise<void> {
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
    let failures = 0;
    let last = 'no attempt';
    for (;;) {
      if (this.state === 'closed') return;
      const left = Math.max(1, deadline - Date.now());
      let target: Target | null = null;
      let client: ChatClient | null = null;
      try {
        target = await this.nextTarget(Math.min(left, 5000));
        client = await this.open(target, left);
        if (client !== null) {
          this.attach(client, target);
          return;
        }
        last = 'login refused';
      } catch (error) {
        if (error instanceof FatalLogin) {
          await this.finish(error.error);
          throw error.error;
        }
        last = error instanceof Error ? error.message : String(error);
        if (target?.gateway !== undefined) this.locator?.avoid(target.gateway);
      }
      if (Date.now() >= deadline) {
        throw new ChatClientError('CONNECT', `no connection within ${timeoutMs} ms: ${last}`);
      }
      const delay = backoffMs(failures++, this.reconnectDelayMs, this.reconnectMaxDelayMs);
      await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    }
  }

  /** One attempt: the connection, logged in again if needed; null when the login must be retried. */
  private async open(target: Target, leftMs: number): Promise<ChatClient | null> {
    const { discover: _d, host: _h, port: _p, ...base } = this.options;
    const client = await ChatClient.connect({
      ...base,
      codec: this.codec,
      host: target.host,
      port: target.port,
      pushBufferSize: 0,
      connectTimeoutMs: Math.min(this.options.connectTimeoutMs ?? 5000, leftMs),
    });
    // Before the login: the pushes right after its ack must not be missed.
    client.onPush(this.receive);
    const credentials = this.credentials;
    if (credentials === null || this.state === 'closed') return client;
    let reply: LoginReply;
    try {
      reply = await client.login(credentials.id, credentials.password, this.lastSeqValue);
    } catch (error) {
      client.destroy();
      throw error;
    }
    if (reply.errno === 0) return client;
    client.destroy();
    if (!LOGIN_RETRY_ERRNOS.has(reply.errno)) {
      throw new FatalLogin(
        new ChatClientError(
          'CLOSED',
          `login again refused: errno ${reply.errno} ${reply.errmsg ?? ''}`.trim(),
        ),
      );
    }
    return null;
  }

  private attach(client: ChatClient, target: Target): void {
    if (this.state === 'closed') {
      client.destroy();
      return;
    }
    const first = this.target === null;
    this.client = client;
    this.target = target;
    this.state = 'open';
    client.on('serverError', (e) => this.emit('serverError', e));
    client.on('unsolicited', (o) => this.emit('unsolicited', o));
    void client.closed.then((info) => {
      this.pastDuplicates += client.stats.duplicates;
      this.onLost(client, info);
    });
    const resent = this.outbox.sendAll();
    this.up.resolve();
    if (!first) {
      this.reconnects++;
      this.resent += resent;
      const info: ReconnectInfo = { address: this.address, downMs: Date.now() - this.downSince, resent };
      if (target.gateway !== undefined) info.gateway = target.gateway;
      this.emit('reconnect', info);
    }
  }

  /** The connection passes on each seq once (ChatClient drops what it processed already). */
  private readonly receive = (push: ChatPush): void => {
    this.lastSeqValue = push.seq;
    this.emit('push', push);
  };

  private onLost(client: ChatClient, info: CloseInfo): void {
    if (this.client !== client || this.state === 'closed') return;
    this.client = null;
    this.state = 'connecting';
    this.downSince = Date.now();
    this.up = nextUp();
    if (this.target?.gateway !== undefined) this.locator?.avoid(this.target.gateway);
    this.outbox.lost(client);
    this.emit('disconnect', { address: this.address, error: info.error });
    this.establish(this.reconnectTimeoutMs).catch((error: unknown) =>
      this.finish(isChatClientError(error) ? error : new ChatClientError('CONNECT', String(error))),
    );
  }

  // ---------------------------------------------------------------- closing

  /** Closes the connection gracefully; unacknowledged messages reject with CLOSED. */
  async close(): Promise<CloseInfo> {
    if (this.state !== 'closed') {
      const client = this.client;
      await this.finish(null, async () => {
        await client?.close();
      });
    }
    return this.closing.promise;
  }

  /** Closes at once. */
  destroy(): void {
    const client = this.client;
    void this.finish(null, async () => client?.destroy());
  }

  private async finish(error: ChatClientError | null, closeConnection?: () => Promise<void>): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const client = this.client;
    this.client = null;
    this.outbox.rejectAll(
      error ?? new ChatClientError('CLOSED', 'client closed before the message was acknowledged'),
    );
    this.up.reject(error ?? new ChatClientError('CLOSED', 'client is closed'));
    if (closeConnection !== undefined) await closeConnection();
    else client?.destroy();
    await this.locator?.release();
    const info: CloseInfo = { error, local: error === null };
    this.closing.resolve(info);
    this.emit('close', info);
  }
}

/** A login the server refuses for good (wrong password): stop reconnecting. */
class FatalLogin extends Error {
  constructor(readonly error: ChatClientError) {
    super(error.message);
  }
}
