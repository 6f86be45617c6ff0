// Public surface of the socket-free chat protocol layer (docs/PROTOCOL.md §1–6).
export { adler32 } from './adler32.js';
export {
  ChatProtobufCodec,
  type ChatProtoTypeName,
  chatMuduoCodec,
  chatProtoRoot,
  MSGID_BY_PROTO_TYPE,
  PROTO_TYPE_BY_MSGID,
} from './chatProtobuf.js';
export { CHAT_PROTO_SOURCE } from './chatProtoSource.js';
export {
  type ChatCodec,
  type CodecKind,
  codecFor,
  detectCodec,
  jsonCodec,
  type LegacyCodec,
  legacyCodec,
  type PayloadCodec,
  payloadCodecFor,
  payloadKind,
  protobufCodec,
} from './codecs.js';
export { ERRMSG, Errno, errmsgFor, isErrno, Limits } from './errno.js';
export { isProtocolError, ProtocolError, type ProtocolErrorCode } from './errors.js';
export { FRAME_HEADER_BYTES, frame, readUint32BE, writeUint32BE } from './framing.js';
export { decodeJsonBytes, encodeJsonBytes, type JsonLayout } from './jsonBytes.js';
export { LegacyFrameSplitter } from './LegacyFrameSplitter.js';
export { LegacyStreamDecoder } from './legacyCodec.js';
export {
  type LegacyChatMessage,
  type LegacyErrorAck,
  type LegacyLoginAckOk,
  type LegacyRegAckOk,
  legacyChatMessage,
  legacyFriend,
  legacyGroup,
  legacyLoginAck,
  legacyLoginAckError,
  legacyMaySend,
  legacyRegAck,
  legacyRegAckError,
} from './legacyReplies.js';
export {
  ALL_MSG_IDS,
  allowedBeforeLogin,
  isMsgId,
  isRequestMsgId,
  MsgId,
  type MsgIdName,
  msgIdName,
  REQUEST_MSG_IDS,
  type RequestMsgId,
} from './msgid.js';
export {
  type DecodedProtobuf,
  decodeMuduoPayload,
  encodeMuduoPayload,
  MUDUO_MIN_PAYLOAD,
  type MuduoPayload,
  ProtobufCodec,
} from './ProtobufCodec.js';
export {
  type AddFriendAck,
  type ChatAck,
  type ChatReply,
  type ErrorReply,
  errorFromParse,
  errorReply,
  type GroupAck,
  type LoginAck,
  type LogoutAck,
  loginAck,
  type Pong,
  type RegisterAck,
} from './replies.js';
export {
  type AddFriendRequest,
  type AddGroupRequest,
  type ChatRequest,
  type CreateGroupRequest,
  type DeliverAckRequest,
  type GroupChatRequest,
  type LoginRequest,
  type LogoutRequest,
  type OneChatRequest,
  type ParseFail,
  type ParseOk,
  type ParseResult,
  type PingRequest,
  parseRequest,
  type RegisterRequest,
  type ReqId,
} from './requests.js';
export { codePointsAtMost, utf8BytesAtMost } from './text.js';
export type {
  ChatPushView,
  FriendView,
  GroupChatPushView,
  GroupRole,
  GroupUserView,
  GroupView,
  OneChatPushView,
  OnlineState,
} from './views.js';
