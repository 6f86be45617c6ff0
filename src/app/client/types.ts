/**
 * The client's typed view of the server's replies and pushes (docs/PROTOCOL.md §3–4).
 *
 * Replies are normalized in place when they arrive: a field the server may omit on failure
 * is filled with a neutral default (0, '', []) so that every typed field is always present.
 * On success (errno 0) the fields are checked instead, and a reply that lacks them is a
 * protocol violation. `msgid` tells which reply it was: the expected ack, or 20 (ERROR) when the
 * server answered the request with an ERROR carrying its reqid.
 */

export type OnlineState = 'online' | 'offline';
export type GroupRole = 'creator' | 'normal';

export interface Friend {
  id: number;
  name: string;
  state: OnlineState;
}

export interface GroupMember {
  id: number;
  name: string;
  state: OnlineState;
  role: GroupRole;
}

export interface Group {
  id: number;
  groupname: string;
  groupdesc: string;
  users: GroupMember[];
}

/** Fields every reply has. */
export interface ReplyBase {
  /** The reply's msgid: the ack's own id, or 20 when the server answered with ERROR. */
  msgid: number;
  errno: number;
  errmsg?: string;
}

/** REG_MSG_ACK (5). `id` is the new user's id, 0 when registration failed. */
export interface RegisterReply extends ReplyBase {
  id: number;
}

/** LOGIN_MSG_ACK (2). On failure `id` is 0, `name` '' and the lists empty. */
export interface LoginReply extends ReplyBase {
  id: number;
  name: string;
  friends: Friend[];
  groups: Group[];
}

/** ONE_CHAT_ACK (11) / GROUP_CHAT_ACK (12). `mid` is 0 when the message was not accepted. */
export interface ChatAckReply extends ReplyBase {
  cmid?: string;
  mid: number;
}

/** ADD_FRIEND_ACK (13). `friendid` is 0 when absent from the reply. */
export interface AddFriendReply extends ReplyBase {
  friendid: number;
}

/** CREATE_GROUP_ACK (14) / ADD_GROUP_ACK (15). `groupid` is 0 when absent from the reply. */
export interface GroupReply extends ReplyBase {
  groupid: number;
}

/** LOGINOUT_ACK (16). */
export type LogoutReply = ReplyBase;

/** PONG (19); `errno` is 0 for a PONG. */
export interface PongReply extends ReplyBase {
  t?: number | string;
}

/** ERROR (20) that matched no pending request (e.g. just before the server closes the connection). */
export interface ServerError {
  msgid: 20;
  errno: number;
  errmsg: string;
  reqid?: string | number;
}

import type { ChatPushView as ChatPush } from '../protocol/views.js';

/** Chat pushes (s→c 6 or 10) have exactly the protocol layer's shapes. */
export type {
  ChatPushView as ChatPush,
  GroupChatPushView as GroupChatPush,
  OneChatPushView as OneChatPush,
} from '../protocol/views.js';

/** A decoded frame, before interpretation. */
export type WireObject = Record<string, unknown>;

/** Thrown by the normalizers; the client turns it into a PROTOCOL error. */
export class ProtocolViolation extends Error {}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

function base(o: WireObject): void {
  if (!isInt(o.errno)) {
    if (o.msgid === 19) o.errno = 0;
    else throw new ProtocolViolation(`reply msgid ${String(o.msgid)} has no integer errno`);
  }
  if (o.errmsg !== undefined && typeof o.errmsg !== 'string') {
    throw new ProtocolViolation(`reply msgid ${String(o.msgid)} has a non-string errmsg`);
  }
}

/** An integer field: required when the reply succeeded, else defaulted to 0. */
function intField(o: WireObject, key: string): void {
  const v = o[key];
  if (isInt(v)) return;
  if (o.errno === 0 && o.msgid !== 20) {
    throw new ProtocolViolation(`reply msgid ${String(o.msgid)} lacks integer '${key}'`);
  }
  o[key] = 0;
}

export function normalizeRegister(o: WireObject): RegisterReply {
  base(o);
  intField(o, 'id');
  return o as unknown as RegisterReply;
}

export function normalizeLogin(o: WireObject): LoginReply {
  base(o);
  intField(o, 'id');
  const ok = o.errno === 0 && o.msgid !== 20;
  if (typeof o.name !== 'string') {
    if (ok) throw new ProtocolViolation(`login ack lacks 'name'`);
    o.name = '';
  }
  for (const key of ['friends', 'groups'] as const) {
    const v = o[key];
    if (v === undefined || v === null) o[key] = [];
    else if (!Array.isArray(v) || !v.every((e) => typeof e === 'object' && e !== null && isInt(e.id))) {
      throw new ProtocolViolation(`login ack '${key}' is not an array of objects with an id`);
    }
  }
  for (const g of o.groups as WireObject[]) {
    if (g.users === undefined || g.users === null) g.users = [];
    else if (!Array.isArray(g.users))
      throw new ProtocolViolation(`group ${String(g.id)} 'users' is not an array`);
  }
  return o as unknown as LoginReply;
}

export function normalizeChatAck(o: WireObject): ChatAckReply {
  base(o);
  intField(o, 'mid');
  if (o.cmid !== undefined && typeof o.cmid !== 'string')
    throw new ProtocolViolation(`chat ack has a non-string cmid`);
  return o as unknown as ChatAckReply;
}

export function normalizeAddFriend(o: WireObject): AddFriendReply {
  base(o);
  intField(o, 'friendid');
  return o as unknown as AddFriendReply;
}

export function normalizeGroup(o: WireObject): GroupReply {
  base(o);
  intField(o, 'groupid');
  return o as unknown as GroupReply;
}

export function normalizeLogout(o: WireObject): LogoutReply {
  base(o);
  return o as unknown as LogoutReply;
}

export function normalizePong(o: WireObject): PongReply {
  base(o);
  return o as unknown as PongReply;
}

/** Checks a pushed chat message (6 or 10) field by field; throws ProtocolViolation when malformed. */
export function asChatPush(o: WireObject): ChatPush {
  const bad = (what: string): never => {
    throw new ProtocolViolation(`push msgid ${String(o.msgid)}: ${what}`);
  };
  if (!isInt(o.seq) || o.seq < 1) bad(`'seq' must be a positive integer`);
  if (!isInt(o.mid)) bad(`'mid' must be an integer`);
  if (!isInt(o.id)) bad(`'id' must be an integer`);
  if (typeof o.name !== 'string') bad(`'name' must be a string`);
  if (typeof o.msg !== 'string') bad(`'msg' must be a string`);
  if (typeof o.time !== 'string') bad(`'time' must be a string`);
  if (o.msgid === 6 ? !isInt(o.toid) : !isInt(o.groupid)) {
    bad(`'${o.msgid === 6 ? 'toid' : 'groupid'}' must be an integer`);
  }
  return o as unknown as ChatPush;
}

/** A ServerError from an ERROR frame (fields defaulted when the server left them out). */
export function asServerError(o: WireObject): ServerError {
  const e: ServerError = {
    msgid: 20,
    errno: isInt(o.errno) ? o.errno : 9,
    errmsg: typeof o.errmsg === 'string' ? o.errmsg : '',
  };
  if (typeof o.reqid === 'string' || typeof o.reqid === 'number') e.reqid = o.reqid;
  return e;
}
