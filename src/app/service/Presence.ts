import type { ChatSession } from './ChatSession.js';

/**
 * Who is online, and where. The single-node implementation keeps it in memory; the cluster
 * one (Redis) also answers for users on other servers.
 */
export interface Presence {
  /** Claims `userId` for `session`; false when the account is online anywhere already. */
  claim(userId: number, session: ChatSession): Promise<boolean>;
  release(userId: number, session: ChatSession): Promise<void>;
  /** The session of `userId` on this server, if any. */
  local(userId: number): ChatSession | undefined;
  /**
   * What the store records as the holder of a login made now, when it is more than the server id:
   * the cluster's `serverId|epoch`, so that cleaning up after one incarnation spares the next.
   */
  readonly holder?: string;
}

export class LocalPresence implements Presence {
  private readonly sessions = new Map<number, ChatSession>();

  async claim(userId: number, session: ChatSession): Promise<boolean> {
    return this.claimNow(userId, session);
  }

  /** Synchronous claim: no await between the check and the set, so two logins cannot both win. */
  claimNow(userId: number, session: ChatSession): boolean {
    if (this.sessions.has(userId)) return false;
    this.sessions.set(userId, session);
    return true;
  }

  async release(userId: number, session: ChatSession): Promise<void> {
    if (this.sessions.get(userId) === session) this.sessions.delete(userId);
  }

  local(userId: number): ChatSession | undefined {
    return this.sessions.get(userId);
  }
}
