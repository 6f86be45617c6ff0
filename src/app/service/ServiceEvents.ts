/**
 * What the chat service reports as it works, for the layer above to turn into log lines and
 * metrics (src/app/server/ServerObserver.ts). The service calls these as one-liners and knows
 * nothing of loggers or Prometheus. Implementations must be cheap and must not throw.
 */
import type { ChatSession } from './ChatSession.js';

/** Who a session is, as far as events need it (a ChatSession is one). */
export type SessionInfo = Pick<ChatSession, 'transport' | 'kind' | 'userId'>;

export interface ServiceEvents {
  registered(session: SessionInfo, userId: number): void;
  loggedIn(session: SessionInfo, userId: number): void;
  /** A LOGIN refused: `errno` 1 (credentials), 2 (online elsewhere), or another. */
  loginRefused(session: SessionInfo, userId: number, errno: number): void;
  /**
   * The session's user went offline: `logout` asked for it, `disconnect` when the connection
   * went, `error` when the login could not be completed (the store failed).
   */
  loggedOut(session: SessionInfo, userId: number, why: 'logout' | 'disconnect' | 'error'): void;
  /** A reply with a non-zero errno; `errmsg` is what the client is told. */
  errorReplied(session: SessionInfo, msgid: number, errno: number, errmsg: string): void;
  /** A request refused with errno 8 (`reason` names the limit). */
  throttled(session: SessionInfo, reason: string): void;
  /** A chat message passed validation and the rate limit and went to the committer. */
  messageAccepted(): void;
  /** It is stored and its ACK (errno 0; none for a classic client) sent, `waitMs` after it was accepted. */
  messageAcked(waitMs: number): void;
  /** `count` more inbox entries count as delivered (acknowledged, or written to a classic client). */
  delivered(count: number): void;
  /** One group-commit transaction stored `size` messages in `durationMs`. */
  batchCommitted(size: number, durationMs: number): void;
}

const ignore = (): void => {};

/** Reports nothing: the default, and what tests that do not watch events get. */
export const NO_SERVICE_EVENTS: ServiceEvents = {
  registered: ignore,
  loggedIn: ignore,
  loginRefused: ignore,
  loggedOut: ignore,
  errorReplied: ignore,
  throttled: ignore,
  messageAccepted: ignore,
  messageAcked: ignore,
  delivered: ignore,
  batchCommitted: ignore,
};
