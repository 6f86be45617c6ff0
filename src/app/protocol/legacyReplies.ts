import { Errno, errmsgFor } from './errno.js';
import { isMsgId, MsgId } from './msgid.js';
import type { ChatPushView, FriendView, GroupView } from './views.js';

/**
 * The classic C++ client only knows these ids; it must never be sent anything else
 * (no acks 11–16, no PONG, no ERROR). The server checks this before every legacy write.
 */
const LEGACY_SENDABLE_MASK =
  (1 << MsgId.LOGIN_MSG_ACK) |
  (1 << MsgId.REG_MSG_ACK) |
  (1 << MsgId.ONE_CHAT_MSG) |
  (1 << MsgId.GROUP_CHAT_MSG);

export function legacyMaySend(msgid: unknown): boolean {
  return isMsgId(msgid) && (LEGACY_SENDABLE_MASK & (1 << msgid)) !== 0;
}

/** A chat message in exactly the fields the classic client wrote (and reads back). */
export type LegacyChatMessage =
  | { msgid: 6; id: number; name: string; toid: number; msg: string; time: string }
  | { msgid: 10; id: number; name: string; groupid: number; msg: string; time: string };

export interface LegacyLoginAckOk {
  msgid: typeof MsgId.LOGIN_MSG_ACK;
  errno: 0;
  id: number;
  name: string;
  offlinemsg?: string[];
  friends?: string[];
  groups?: string[];
}
export interface LegacyErrorAck {
  msgid: typeof MsgId.LOGIN_MSG_ACK | typeof MsgId.REG_MSG_ACK;
  errno: number;
  errmsg: string;
}
export interface LegacyRegAckOk {
  msgid: typeof MsgId.REG_MSG_ACK;
  errno: 0;
  id: number;
}

/** Live push or offline entry for a classic client: the classic fields only (no mid/seq). */
export function legacyChatMessage(v: ChatPushView): LegacyChatMessage {
  return v.msgid === 6
    ? { msgid: 6, id: v.id, name: v.name, toid: v.toid, msg: v.msg, time: v.time }
    : { msgid: 10, id: v.id, name: v.name, groupid: v.groupid, msg: v.msg, time: v.time };
}

export function legacyFriend(f: FriendView): string {
  return JSON.stringify({ id: f.id, name: f.name, state: f.state });
}

/** A group as the classic client parses it; `users` is always present (the client reads it unconditionally). */
export function legacyGroup(g: GroupView): string {
  const users = new Array<string>(g.users.length);
  for (let i = 0; i < g.users.length; i++) {
    const u = g.users[i]!;
    users[i] = JSON.stringify({ id: u.id, name: u.name, state: u.state, role: u.role });
  }
  return JSON.stringify({ id: g.id, groupname: g.groupname, groupdesc: g.groupdesc, users });
}

/** Successful LOGIN_MSG_ACK for a classic client; `offlinemsg`, `friends`, `groups` only when non-empty. */
export function legacyLoginAck(
  user: { id: number; name: string },
  friends: readonly FriendView[],
  groups: readonly GroupView[],
  offline: readonly ChatPushView[],
): LegacyLoginAckOk {
  const r: LegacyLoginAckOk = { msgid: 2, errno: Errno.OK, id: user.id, name: user.name };
  if (offline.length > 0) r.offlinemsg = offline.map((m) => JSON.stringify(legacyChatMessage(m)));
  if (friends.length > 0) r.friends = friends.map(legacyFriend);
  if (groups.length > 0) r.groups = groups.map(legacyGroup);
  return r;
}

export function legacyLoginAckError(errno: number, errmsg: string = errmsgFor(errno)): LegacyErrorAck {
  return { msgid: 2, errno, errmsg };
}

export function legacyRegAck(id: number): LegacyRegAckOk {
  return { msgid: 5, errno: Errno.OK, id };
}

export function legacyRegAckError(errno: number, errmsg: string = errmsgFor(errno)): LegacyErrorAck {
  return { msgid: 5, errno, errmsg };
}
