import protobuf from 'protobufjs';
import { CHAT_PROTO_SOURCE } from './chatProtoSource.js';
import type { PayloadCodec } from './codecs.js';
import { ProtocolError } from './errors.js';
import { MsgId } from './msgid.js';
import { ProtobufCodec } from './ProtobufCodec.js';

/** msgid ⇄ protobuf type name (the table at the top of chat.proto; a test keeps them equal). */
export const PROTO_TYPE_BY_MSGID = {
  1: 'chat.LoginRequest',
  2: 'chat.LoginAck',
  3: 'chat.LogoutRequest',
  4: 'chat.RegisterRequest',
  5: 'chat.RegisterAck',
  6: 'chat.OneChat',
  7: 'chat.AddFriendRequest',
  8: 'chat.CreateGroupRequest',
  9: 'chat.AddGroupRequest',
  10: 'chat.GroupChat',
  11: 'chat.OneChatAck',
  12: 'chat.GroupChatAck',
  13: 'chat.AddFriendAck',
  14: 'chat.CreateGroupAck',
  15: 'chat.AddGroupAck',
  16: 'chat.LogoutAck',
  17: 'chat.DeliverAck',
  18: 'chat.Ping',
  19: 'chat.Pong',
  20: 'chat.Error',
} as const satisfies Record<MsgId, string>;

export type ChatProtoTypeName = (typeof PROTO_TYPE_BY_MSGID)[MsgId];

export const MSGID_BY_PROTO_TYPE: ReadonlyMap<string, MsgId> = new Map(
  Object.entries(PROTO_TYPE_BY_MSGID).map(([id, name]) => [name, Number(id) as MsgId]),
);

let root: protobuf.Root | undefined;
let codec: ProtobufCodec | undefined;

/** chat.proto parsed once, on first use. Field names keep their case (they are the JSON keys). */
export function chatProtoRoot(): protobuf.Root {
  root ??= protobuf.parse(CHAT_PROTO_SOURCE, { keepCase: true }).root;
  return root;
}

/** Generic muduo codec limited to the 20 top-level chat types. */
export function chatMuduoCodec(): ProtobufCodec {
  codec ??= new ProtobufCodec(chatProtoRoot(), Object.values(PROTO_TYPE_BY_MSGID));
  return codec;
}

type Obj = Record<string, unknown>;

const hasStamp = (msgid: number): boolean => msgid === MsgId.PING || msgid === MsgId.PONG;

/** JSON shape → protobuf shape. Copies only when a field must change (rare: numeric reqid, text t). */
function toProtoShape(msgid: number, obj: Obj): Obj {
  const numericReqid = typeof obj.reqid === 'number';
  const textStamp = hasStamp(msgid) && typeof obj.t === 'string';
  if (!numericReqid && !textStamp) return obj;
  const out: Obj = { ...obj };
  if (numericReqid) out.reqid = String(obj.reqid);
  if (textStamp) {
    out.t_text = obj.t;
    out.t = undefined; // encode() and verify() skip undefined fields
  }
  return out;
}

const CONVERSION: protobuf.IConversionOptions = { longs: Number };

/** Decoded message → the JSON object the JSON codec would have produced. */
function toJsonShape(msgid: MsgId, type: protobuf.Type, message: protobuf.Message): Obj {
  const o = type.toObject(message, CONVERSION) as Obj;
  o.msgid = msgid;
  if (hasStamp(msgid) && typeof o.t_text === 'string') {
    o.t = o.t_text;
    delete o.t_text;
  } else if (msgid === MsgId.LOGIN_MSG_ACK) {
    // proto3 repeated fields have no presence: restore the JSON rule (present when errno is 0).
    if (o.errno === 0) {
      o.friends ??= [];
      o.groups ??= [];
    }
    if (Array.isArray(o.groups)) for (const g of o.groups as Obj[]) g.users ??= [];
  }
  return o;
}

function msgidOf(obj: object): MsgId {
  const msgid = (obj as Obj).msgid;
  if (typeof msgid !== 'number' || !Object.hasOwn(PROTO_TYPE_BY_MSGID, msgid)) {
    throw new ProtocolError('UNENCODABLE', `no protobuf type for msgid ${String(msgid)}`);
  }
  return msgid as MsgId;
}

/**
 * The chat protocol over muduo-layout protobuf: the same JSON-shaped objects in and out as the
 * JSON codec, so one dispatch table by msgid serves every codec. The `msgid` picks the type.
 */
export class ChatProtobufCodec implements PayloadCodec {
  readonly kind = 'protobuf' as const;

  decodePayload(payload: Uint8Array): Obj {
    const { typeName, type, message } = chatMuduoCodec().decode(payload);
    return toJsonShape(MSGID_BY_PROTO_TYPE.get(typeName)!, type, message);
  }

  encodePayload(obj: object): Uint8Array {
    const msgid = msgidOf(obj);
    return chatMuduoCodec().encode(PROTO_TYPE_BY_MSGID[msgid], toProtoShape(msgid, obj as Obj), false);
  }

  encode(obj: object): Uint8Array {
    const msgid = msgidOf(obj);
    return chatMuduoCodec().encode(PROTO_TYPE_BY_MSGID[msgid], toProtoShape(msgid, obj as Obj), true);
  }
}
