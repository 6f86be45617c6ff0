import { Errno, Limits } from './errno.js';
import { isMsgId, isRequestMsgId, MsgId } from './msgid.js';
import { codePointsAtMost, utf8BytesAtMost } from './text.js';

/** Client correlation id; echoed in the reply (docs/PROTOCOL.md §3–4). */
export type ReqId = string | number;

/** Fields every request may carry: the classic client's own `id` (checked by the server) and `reqid`. */
interface RequestCommon {
  id?: number;
  reqid?: ReqId;
}

export interface LoginRequest {
  msgid: typeof MsgId.LOGIN_MSG;
  /** The account to log in as (required here, unlike the identity `id` of other requests). */
  id: number;
  password: string;
  lastseq?: number;
  reqid?: ReqId;
}
export interface LogoutRequest extends RequestCommon {
  msgid: typeof MsgId.LOGINOUT_MSG;
}
export interface RegisterRequest extends RequestCommon {
  msgid: typeof MsgId.REG_MSG;
  name: string;
  password: string;
}
export interface OneChatRequest extends RequestCommon {
  msgid: typeof MsgId.ONE_CHAT_MSG;
  toid: number;
  msg: string;
  cmid?: string;
  time?: string;
}
export interface AddFriendRequest extends RequestCommon {
  msgid: typeof MsgId.ADD_FRIEND_MSG;
  friendid: number;
}
export interface CreateGroupRequest extends RequestCommon {
  msgid: typeof MsgId.CREATE_GROUP_MSG;
  groupname: string;
  groupdesc: string;
}
export interface AddGroupRequest extends RequestCommon {
  msgid: typeof MsgId.ADD_GROUP_MSG;
  groupid: number;
}
export interface GroupChatRequest extends RequestCommon {
  msgid: typeof MsgId.GROUP_CHAT_MSG;
  groupid: number;
  msg: string;
  cmid?: string;
  time?: string;
}
export interface DeliverAckRequest extends RequestCommon {
  msgid: typeof MsgId.DELIVER_ACK;
  seq: number;
}
export interface PingRequest extends RequestCommon {
  msgid: typeof MsgId.PING;
  t?: number | string;
}

export type ChatRequest =
  | LoginRequest
  | LogoutRequest
  | RegisterRequest
  | OneChatRequest
  | AddFriendRequest
  | CreateGroupRequest
  | AddGroupRequest
  | GroupChatRequest
  | DeliverAckRequest
  | PingRequest;

export interface ParseOk {
  ok: true;
  req: ChatRequest;
}
/** errno is always 3 (bad request); `reqid`/`msgid` are set when they could be read, for the reply. */
export interface ParseFail {
  ok: false;
  errno: number;
  errmsg: string;
  reqid?: ReqId;
  msgid?: number;
}
export type ParseResult = ParseOk | ParseFail;

/** Thrown inside the validator only; parseRequest turns it into a ParseFail. */
class FieldError {
  constructor(readonly errmsg: string) {}
}

type Obj = Record<string, unknown>;

function isAbsent(v: unknown): v is null | undefined {
  return v === undefined || v === null;
}

function required(key: string): never {
  throw new FieldError(`field '${key}' is required`);
}

function integer(o: Obj, key: string, min: 0 | 1, need: boolean): number | undefined {
  const v = o[key];
  if (isAbsent(v)) return need ? required(key) : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new FieldError(`field '${key}' must be an integer`);
  if (v < min)
    throw new FieldError(`field '${key}' must be a ${min === 1 ? 'positive' : 'non-negative'} integer`);
  if (v > Number.MAX_SAFE_INTEGER)
    throw new FieldError(`field '${key}' must be at most ${Number.MAX_SAFE_INTEGER}`);
  return v;
}

const id = (o: Obj, key: string): number => integer(o, key, 1, true)!;
const optId = (o: Obj, key: string): number | undefined => integer(o, key, 1, false);

function text(o: Obj, key: string, maxChars: number, nonEmpty: boolean, need: boolean): string | undefined {
  const v = o[key];
  if (isAbsent(v)) return need ? required(key) : undefined;
  if (typeof v !== 'string') throw new FieldError(`field '${key}' must be a string`);
  if (nonEmpty && v.length === 0) throw new FieldError(`field '${key}' must not be empty`);
  if (!codePointsAtMost(v, maxChars))
    throw new FieldError(`field '${key}' must be at most ${maxChars} characters`);
  return v;
}

function chatText(o: Obj): string {
  const v = o.msg;
  if (isAbsent(v)) return required('msg');
  if (typeof v !== 'string') throw new FieldError(`field 'msg' must be a string`);
  if (!utf8BytesAtMost(v, Limits.MSG_MAX_BYTES)) {
    throw new FieldError(`field 'msg' must be at most ${Limits.MSG_MAX_BYTES} bytes of UTF-8`);
  }
  return v;
}

function stamp(o: Obj): number | string | undefined {
  const v = o.t;
  if (isAbsent(v)) return undefined;
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  throw new FieldError(`field 't' must be a number or a string`);
}

function common(o: Obj, req: RequestCommon, reqid: ReqId | undefined): void {
  const who = optId(o, 'id');
  if (who !== undefined) req.id = who;
  if (reqid !== undefined) req.reqid = reqid;
}

function chatExtras(o: Obj, req: OneChatRequest | GroupChatRequest): void {
  const cmid = text(o, 'cmid', Limits.CMID_MAX_CHARS, true, false);
  if (cmid !== undefined) req.cmid = cmid;
  const time = text(o, 'time', Limits.TIME_MAX_CHARS, false, false);
  if (time !== undefined) req.time = time;
}

function build(o: Obj, msgid: MsgId, reqid: ReqId | undefined): ChatRequest | undefined {
  switch (msgid) {
    case MsgId.LOGIN_MSG: {
      const req: LoginRequest = {
        msgid,
        id: id(o, 'id'),
        password: text(o, 'password', Limits.PASSWORD_MAX_CHARS, false, true)!,
      };
      const lastseq = integer(o, 'lastseq', 0, false);
      if (lastseq !== undefined) req.lastseq = lastseq;
      if (reqid !== undefined) req.reqid = reqid;
      return req;
    }
    case MsgId.LOGINOUT_MSG: {
      const req: LogoutRequest = { msgid };
      common(o, req, reqid);
      return req;
    }
    case MsgId.REG_MSG: {
      const req: RegisterRequest = {
        msgid,
        name: text(o, 'name', Limits.NAME_MAX_CHARS, true, true)!,
        password: text(o, 'password', Limits.PASSWORD_MAX_CHARS, true, true)!,
      };
      common(o, req, reqid);
      return req;
    }
    case MsgId.ONE_CHAT_MSG: {
      const req: OneChatRequest = { msgid, toid: id(o, 'toid'), msg: chatText(o) };
      chatExtras(o, req);
      common(o, req, reqid);
      return req;
    }
    case MsgId.ADD_FRIEND_MSG: {
      const req: AddFriendRequest = { msgid, friendid: id(o, 'friendid') };
      common(o, req, reqid);
      return req;
    }
    case MsgId.CREATE_GROUP_MSG: {
      const req: CreateGroupRequest = {
        msgid,
        groupname: text(o, 'groupname', Limits.GROUPNAME_MAX_CHARS, true, true)!,
        groupdesc: text(o, 'groupdesc', Limits.GROUPDESC_MAX_CHARS, false, true)!,
      };
      common(o, req, reqid);
      return req;
    }
    case MsgId.ADD_GROUP_MSG: {
      const req: AddGroupRequest = { msgid, groupid: id(o, 'groupid') };
      common(o, req, reqid);
      return req;
    }
    case MsgId.GROUP_CHAT_MSG: {
      const req: GroupChatRequest = { msgid, groupid: id(o, 'groupid'), msg: chatText(o) };
      chatExtras(o, req);
      common(o, req, reqid);
      return req;
    }
    case MsgId.DELIVER_ACK: {
      const req: DeliverAckRequest = { msgid, seq: integer(o, 'seq', 0, true)! };
      common(o, req, reqid);
      return req;
    }
    case MsgId.PING: {
      const req: PingRequest = { msgid };
      const t = stamp(o);
      if (t !== undefined) req.t = t;
      common(o, req, reqid);
      return req;
    }
    default:
      return undefined; // a reply id (2, 5, 11–16, 19, 20): not something a client may send
  }
}

function fail(errmsg: string, reqid: ReqId | undefined, msgid: unknown): ParseFail {
  const r: ParseFail = { ok: false, errno: Errno.BAD_REQUEST, errmsg };
  if (reqid !== undefined) r.reqid = reqid;
  if (typeof msgid === 'number' && Number.isSafeInteger(msgid)) r.msgid = msgid;
  return r;
}

/**
 * Validates one decoded message (from any codec) into a typed request. Never throws.
 *
 * Decisions beyond docs/PROTOCOL.md:
 * - `null` counts as absent for every field (many JSON encoders write null for "unset").
 * - `reqid` must be a string or a finite number; any other type is errno 3 (and is not echoed).
 * - Unknown extra fields are ignored (the classic client sends `name` with chat messages).
 * - ids are safe positive integers; `lastseq`/`seq` are safe non-negative integers.
 * - `name`, `password` (register), `groupname`, `cmid` must be non-empty; login `password`,
 *   `groupdesc`, `msg` and `time` may be empty. Lengths count code points (`msg`: UTF-8 bytes).
 * - `t` (PING) is a finite number or a string.
 */
export function parseRequest(obj: unknown): ParseResult {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return fail('request must be a JSON object', undefined, undefined);
  }
  let reqid: ReqId | undefined;
  let msgid: unknown;
  try {
    const o = obj as Obj;
    msgid = o.msgid;
    const r = o.reqid;
    if (typeof r === 'string' || (typeof r === 'number' && Number.isFinite(r))) reqid = r;
    else if (!isAbsent(r)) return fail(`field 'reqid' must be a string or a number`, undefined, msgid);
    if (isAbsent(msgid)) return fail(`field 'msgid' is required`, reqid, undefined);
    if (typeof msgid !== 'number' || !Number.isInteger(msgid)) {
      return fail(`field 'msgid' must be an integer`, reqid, undefined);
    }
    if (!isMsgId(msgid)) return fail(`unknown msgid ${msgid}`, reqid, msgid);
    if (!isRequestMsgId(msgid)) return fail(`msgid ${msgid} is not a request`, reqid, msgid);
    const req = build(o, msgid, reqid);
    return req === undefined ? fail(`msgid ${msgid} is not a request`, reqid, msgid) : { ok: true, req };
  } catch (e) {
    if (e instanceof FieldError) return fail(e.errmsg, reqid, msgid);
    // Exotic inputs (throwing getters, proxies) must not take the connection's handler down.
    return fail('malformed request', reqid, msgid);
  }
}
