/**
 * Turns what happens in the chat server into log lines and metrics, in one place: connection
 * up/down (peer, codec, reason), login / logout / register (user id, never a password), every
 * error reply's cause (debug), forced closes (info), and the counters of metrics.ts.
 */
import { Errno } from '../protocol/errno.js';
import { msgIdName } from '../protocol/msgid.js';
import type { CodecKind } from '../service/ChatSession.js';
import { errnoOf } from '../service/errnoOf.js';
import type { ServiceEvents, SessionInfo } from '../service/ServiceEvents.js';
import type { Logger } from './logger.js';
import type { ChatMetrics } from './metrics.js';

/** Why a connection closed, as a metric label (few values) plus words for the log line. */
export type CloseReasonCode =
  | 'peer_closed'
  | 'socket_error'
  | 'idle_timeout'
  | 'slow_reader'
  | 'bad_input'
  | 'closed_by_server'
  | 'server_stopping'
  | 'message_deadline'
  | 'input_budget'
  | 'connection_limit'
  | 'anonymous_evicted';

export interface CloseReason {
  code: CloseReasonCode;
  detail?: string;
}

/** What the observer needs to know of a connection that went down. */
export interface ConnectionSummary {
  peer: string;
  /** null: it closed before sending a byte. */
  codec: CodecKind | null;
  userId: number | null;
  openedAt: number;
}

const LOGIN_RESULT: Readonly<Record<number, string>> = {
  [Errno.BAD_CREDENTIALS]: 'bad_credentials',
  [Errno.ALREADY_ONLINE]: 'already_online',
  [Errno.RATE_LIMITED]: 'throttled',
};

/** `inbox of user 12` → `inbox`, `msgid 6 from 1.2.3.4:5` → `msgid_6`: a label with few values. */
export function operationLabel(context: string): string {
  return context
    .replace(/ from .*$/, '')
    .replace(/ of user \d+$/, '')
    .trim()
    .replace(/\s+/g, '_');
}

export class ServerObserver implements ServiceEvents {
  constructor(
    private readonly logger: Logger,
    /** null: metrics are off (no --metrics-port); logs still flow. */
    private readonly metrics: ChatMetrics | null,
  ) {}

  // ---- connections (called by ChatServer / ChatConnection) ----

  connectionUp(peer: string, open: number): void {
    this.metrics?.connectionOpened();
    this.logger.log('info', 'connection up', { peer, open });
  }

  codecChosen(peer: string, codec: CodecKind): void {
    this.metrics?.codecChosen(codec);
    this.logger.log('debug', 'codec chosen', { peer, codec });
  }

  /** The server is closing a connection on purpose: said at info (warn for a slow reader). */
  forcedClose(peer: string, userId: number | null, reason: CloseReason, log = true): void {
    if (reason.code === 'slow_reader') this.metrics?.slowReaderCuts.inc();
    if (!log) return;
    const slow = reason.code === 'slow_reader';
    this.logger.log(slow ? 'warn' : 'info', slow ? 'disconnecting slow reader' : 'closing connection', {
      peer,
      user: userId ?? undefined,
      reason: reason.code,
      detail: reason.detail,
    });
  }

  connectionDown(connection: ConnectionSummary, reason: CloseReason): void {
    this.metrics?.connectionClosed(connection.codec ?? 'pending', reason.code);
    this.logger.log('info', 'connection down', {
      peer: connection.peer,
      codec: connection.codec ?? 'none',
      user: connection.userId ?? undefined,
      reason: reason.code,
      detail: reason.detail,
      secs: Math.round((performance.now() - connection.openedAt) / 100) / 10,
    });
  }

  /** An unexpected failure reported by the service (mostly the store's). */
  serviceError(error: unknown, context: string): void {
    if (errnoOf(error) === Errno.UNAVAILABLE)
      this.metrics?.storeErrors.inc({ operation: operationLabel(context) });
    this.logger.log('warn', `${context}: ${error instanceof Error ? error.message : String(error)}`);
  }

  // ---- ServiceEvents ----

  registered(session: SessionInfo, userId: number): void {
    this.metrics?.registrations.inc();
    this.logger.log('info', 'registered', { peer: session.transport.peer, user: userId });
  }

  loggedIn(session: SessionInfo, userId: number): void {
    this.metrics?.logins.inc({ result: 'ok' });
    this.logger.log('info', 'login', { peer: session.transport.peer, codec: session.kind, user: userId });
  }

  loginRefused(session: SessionInfo, userId: number, errno: number): void {
    this.metrics?.logins.inc({ result: LOGIN_RESULT[errno] ?? 'refused' });
    this.logger.log('info', 'login refused', { peer: session.transport.peer, user: userId, errno });
  }

  loggedOut(session: SessionInfo, userId: number, why: 'logout' | 'disconnect' | 'error'): void {
    this.logger.log('info', 'logout', { peer: session.transport.peer, user: userId, why });
  }

  errorReplied(session: SessionInfo, msgid: number, errno: number, errmsg: string): void {
    this.metrics?.errorReplies.inc({ errno: String(errno) });
    if (!this.logger.enabled('debug')) return;
    this.logger.log('debug', 'error reply', {
      peer: session.transport.peer,
      user: session.userId ?? undefined,
      msgid: msgIdName(msgid) ?? msgid,
      errno,
      errmsg,
    });
  }

  throttled(_session: SessionInfo, reason: string): void {
    this.metrics?.throttled.inc({ reason });
  }

  messageAccepted(): void {
    this.metrics?.messagesAccepted.inc();
  }

  messageAcked(waitMs: number): void {
    this.metrics?.ackLatency.observe(waitMs / 1000);
  }

  delivered(count: number): void {
    this.metrics?.messagesDelivered.inc(count);
  }

  batchCommitted(size: number, durationMs: number): void {
    const metrics = this.metrics;
    if (metrics === null) return;
    metrics.messagesCommitted.inc(size);
    metrics.commitBatchSize.observe(size);
    metrics.commitLatency.observe(durationMs / 1000);
  }
}
