/**
 * The four business services the chat protocol is built on. ChatService (the msgid → handler
 * table) calls only these; chat-server wires the in-process implementations (the models and
 * LocalMessageService), chat-gateway wires remote ones over src/rpc (src/app/distributed). One
 * business implementation, two ways to reach it.
 *
 * Failures are StoreErrors (CONFLICT / NOT_FOUND / UNAVAILABLE) on both paths, so the caller's
 * errno mapping (errnoOf) is the same in and out of process.
 */
import type {
  FanoutJob,
  GroupDetail,
  InboxEntry,
  PresenceState,
  UserRecord,
  UserSummary,
} from '../model/types.js';
import type { ChatJob, ChatJobResult } from '../service/GroupCommitter.js';

export interface UserService {
  /** New account; CONFLICT when the name is taken. */
  create(name: string, password: string): Promise<number>;
  /** The user when id and password match, else undefined. */
  verifyPassword(id: number, password: string): Promise<UserRecord | undefined>;
  /** Who is online where: the state column and the server holding the session. */
  setState(id: number, state: PresenceState, serverId: string | null): Promise<void>;
  /**
   * Marks the users held by `serverId` offline (its crash or restart), only its incarnation
   * `epoch` when given; returns how many.
   */
  resetServer(serverId: string, epoch?: string): Promise<number>;
}

export interface FriendService {
  /** NOT_FOUND for an unknown user, CONFLICT when already friends. */
  add(userId: number, friendId: number): Promise<void>;
  list(userId: number): Promise<UserSummary[]>;
}

export interface GroupService {
  /** CONFLICT when the name is taken. */
  create(creatorId: number, groupname: string, groupdesc: string): Promise<number>;
  /** NOT_FOUND for an unknown group, CONFLICT when already a member. */
  join(groupId: number, userId: number): Promise<void>;
  listForUser(userId: number): Promise<GroupDetail[]>;
  memberIds(groupId: number): Promise<number[]>;
}

export interface InboxCursor {
  /** Highest seq in the inbox. */
  lastSeq: number;
  /** Highest seq the user has acknowledged. */
  ackedSeq: number;
}

export interface MessageService {
  /**
   * Commits a chat message (group commit, dedupe by (sender, cmid)). Never rejects: failures
   * are results. The caller, server `origin`, pushes to the recipients it holds itself right
   * after the sender's ack (as chat-server always did); a message service serving several
   * gateways routes the pushes for recipients held elsewhere (`senderName` goes into them).
   */
  submit(job: ChatJob, senderName: string, origin: string): Promise<ChatJobResult>;
  readInbox(userId: number, afterSeq: number, limit: number): Promise<InboxEntry[]>;
  cursor(userId: number): Promise<InboxCursor>;
  /** user id → highest delivered seq; cursors only move forward. */
  ackMany(acks: ReadonlyMap<number, number>): Promise<void>;
  /** Resolves once every message submitted so far is committed (or failed). */
  drain(): Promise<void>;
}

/** What a Fanout did: how many inbox entries it appended (0: appended before), or why it failed. */
export type FanoutOutcome = { ok: true; appended: number } | { ok: false; errno: number; errmsg: string };

/**
 * Between message nodes (partition-owner mode, docs/DISTRIBUTED.md "Group messages"): the owner
 * of a member partition appends a stored group message's entries for that partition's members.
 */
export interface FanoutService {
  /**
   * Appends the entries and deletes the message's `group_fanout` row of `job.part` in one
   * transaction, under the partition's fence; nothing when the row is gone (exactly once).
   * Pushes what it appended. Never rejects: failures are results (errno 9: retry).
   */
  fanout(job: FanoutJob): Promise<FanoutOutcome>;
}

/** What ChatService needs: the four services. */
export interface ChatServices {
  readonly users: UserService;
  readonly friends: FriendService;
  readonly groups: GroupService;
  readonly messages: MessageService;
}
