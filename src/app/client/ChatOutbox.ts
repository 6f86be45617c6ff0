/**
 * The chat messages a ReconnectingChatClient has sent and not yet had acknowledged, each with
 * its cmid, in the order first sent. A message is sent on the connection of the moment; when
 * that connection is lost it waits for the next one (`sendAll` after the login), and a "retry"
 * answer (errno 8, 9) or a request timeout sends it again after a delay — always with the same
 * cmid, which the server stores once.
 */
import { Errno } from '../protocol/errno.js';
import type { ChatClient, SendChatOptions } from './ChatClient.js';
import { type Deferred, deferred } from './deferred.js';
import { ChatClientError, isChatClientError } from './errors.js';
import type { ChatAckReply } from './types.js';

export interface ChatOutboxOptions {
  /** The logged-in connection to send on now, or null while there is none. */
  connection: () => ChatClient | null;
  /** A message not acknowledged this long after it was first sent rejects with TIMEOUT; 0 = never. */
  sendTimeoutMs: number;
  /** Delay before the n-th retry of one message (n from 0). */
  retryDelayMs: (n: number) => number;
}

/** errno answers that mean "not done, try again": rate limited, server unavailable. */
export const RETRY_ERRNOS: ReadonlySet<number> = new Set([Errno.RATE_LIMITED, Errno.UNAVAILABLE]);

interface Outgoing {
  cmid: string;
  kind: 'one' | 'group';
  to: number;
  msg: string;
  time?: string;
  /** The connection it was last sent on, while no answer has come back on it. */
  inFlight: ChatClient | null;
  /** Settled with its first ack that is not "retry", or the reason it never came. */
  ack: Deferred<ChatAckReply>;
  timer: NodeJS.Timeout | null;
  retries: number;
}

export class ChatOutbox {
  private readonly waiting = new Map<string, Outgoing>();

  constructor(private readonly options: ChatOutboxOptions) {}

  /** Messages not yet acknowledged. */
  get size(): number {
    return this.waiting.size;
  }

  /**
   * Queues a message and sends it if a connection is up. Resolves with its first ack that is not
   * "retry" (errno 0, or a refusal such as 5 "not a friend"). The same cmid while it is still
   * waiting returns the same promise.
   */
  add(
    kind: 'one' | 'group',
    to: number,
    msg: string,
    cmid: string,
    opts?: SendChatOptions,
  ): Promise<ChatAckReply> {
    const pending = this.waiting.get(cmid);
    if (pending !== undefined) return pending.ack.promise;
    const m: Outgoing = { cmid, kind, to, msg, inFlight: null, ack: deferred(), timer: null, retries: 0 };
    if (opts?.time !== undefined) m.time = opts.time;
    const timeoutMs = this.options.sendTimeoutMs;
    if (timeoutMs > 0) {
      m.timer = setTimeout(() => {
        if (this.waiting.get(cmid) !== m) return;
        this.waiting.delete(cmid);
        m.ack.reject(
          new ChatClientError('TIMEOUT', `message ${cmid} not acknowledged within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      m.timer.unref();
    }
    this.waiting.set(cmid, m);
    this.send(m);
    return m.ack.promise;
  }

  /** A new connection is logged in: sends every message not in flight, in order. Returns how many. */
  sendAll(): number {
    const idle = [...this.waiting.values()].filter((m) => m.inFlight === null);
    for (const m of idle) this.send(m);
    return idle.length;
  }

  /** `client` is gone: what was in flight on it waits for the next connection. */
  lost(client: ChatClient): void {
    for (const m of this.waiting.values()) if (m.inFlight === client) m.inFlight = null;
  }

  /** Rejects every waiting message (the client is closing). */
  rejectAll(error: ChatClientError): void {
    for (const m of this.waiting.values()) {
      if (m.timer !== null) clearTimeout(m.timer);
      m.ack.reject(error);
    }
    this.waiting.clear();
  }

  private send(m: Outgoing): void {
    const client = this.options.connection();
    if (client === null || this.waiting.get(m.cmid) !== m) return;
    m.inFlight = client;
    const opts: SendChatOptions = { cmid: m.cmid };
    if (m.time !== undefined) opts.time = m.time;
    const sent = m.kind === 'one' ? client.sendChat(m.to, m.msg, opts) : client.groupChat(m.to, m.msg, opts);
    sent.then(
      (ack) => {
        if (m.inFlight !== client) return;
        m.inFlight = null;
        if (RETRY_ERRNOS.has(ack.errno)) this.retryLater(m);
        else this.settle(m, () => m.ack.resolve(ack));
      },
      (error: unknown) => {
        if (m.inFlight !== client) return;
        m.inFlight = null;
        // CLOSED: lost with the connection, sent again after the next login. TIMEOUT on a live
        // connection: sent again after the retry delay. Anything else is not a transport failure (e.g. the codec
        // cannot encode it): repeating would not help.
        if (!isChatClientError(error)) {
          this.settle(m, () =>
            m.ack.reject(new ChatClientError('PROTOCOL', String(error), { cause: error })),
          );
        } else if (error.code === 'TIMEOUT') {
          this.retryLater(m);
        }
      },
    );
  }

  private settle(m: Outgoing, done: () => void): void {
    this.waiting.delete(m.cmid);
    if (m.timer !== null) clearTimeout(m.timer);
    done();
  }

  private retryLater(m: Outgoing): void {
    setTimeout(
      () => {
        if (m.inFlight === null) this.send(m);
      },
      this.options.retryDelayMs(m.retries++),
    ).unref();
  }
}
