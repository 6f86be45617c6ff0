import { Errno, errmsgFor } from './errno.js';
import type { MsgId } from './msgid.js';
import type { ParseFail, ReqId } from './requests.js';
import type { ChatPushView, FriendView, GroupView } from './views.js';

/** Shapes the server sends to framed clients (docs/PROTOCOL.md §3–4). Optional keys are omitted when unset. */
export interface LoginAck {
  msgid: typeof MsgId.LOGIN_MSG_ACK;
  errno: number;
  errmsg?: string;
  id?: number;
  name?: string;
  friends?: readonly FriendView[];
  groups?: readonly GroupView[];
  reqid?: ReqId;
}
export interface RegisterAck {
  msgid: typeof MsgId.REG_MSG_ACK;
  errno: number;
  errmsg?: string;
  id?: number;
  reqid?: ReqId;
}
export interface ChatAck {
  msgid: typeof MsgId.ONE_CHAT_ACK | typeof MsgId.GROUP_CHAT_ACK;
  errno: number;
  errmsg?: string;
  cmid?: string;
  mid?: number;
  reqid?: ReqId;
}
export interface AddFriendAck {
  msgid: typeof MsgId.ADD_FRIEND_ACK;
  errno: number;
  errmsg?: string;
  friendid?: number;
  reqid?: ReqId;
}
export interface GroupAck {
  msgid: typeof MsgId.CREATE_GROUP_ACK | typeof MsgId.ADD_GROUP_ACK;
  errno: number;
  errmsg?: string;
  groupid?: number;
  reqid?: ReqId;
}
export interface LogoutAck {
  msgid: typeof MsgId.LOGINOUT_ACK;
  errno: number;
  errmsg?: string;
  reqid?: ReqId;
}
export interface Pong {
  msgid: typeof MsgId.PONG;
  t?: number | string;
  reqid?: ReqId;
}
export interface ErrorReply {
  msgid: typeof MsgId.ERROR;
  errno: number;
  errmsg: string;
  reqid?: ReqId;
}

export type ChatReply =
  | LoginAck
  | RegisterAck
  | ChatAck
  | AddFriendAck
  | GroupAck
  | LogoutAck
  | Pong
  | ErrorReply
  | ChatPushView;

export function errorReply(errno: number, errmsg: string = errmsgFor(errno), reqid?: ReqId): ErrorReply {
  const r: ErrorReply = { msgid: 20, errno, errmsg };
  if (reqid !== undefined) r.reqid = reqid;
  return r;
}

/** The ERROR reply for a request parseRequest rejected (echoes its reqid when it had a valid one). */
export function errorFromParse(f: ParseFail): ErrorReply {
  return errorReply(f.errno, f.errmsg, f.reqid);
}

/** Successful framed login ack: `friends` and `groups` are always present, possibly empty. */
export function loginAck(
  user: { id: number; name: string },
  friends: readonly FriendView[],
  groups: readonly GroupView[],
  reqid?: ReqId,
): LoginAck {
  const r: LoginAck = { msgid: 2, errno: Errno.OK, id: user.id, name: user.name, friends, groups };
  if (reqid !== undefined) r.reqid = reqid;
  return r;
}
