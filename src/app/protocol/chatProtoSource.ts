// Generated from chat.proto; test/protocol/chatProto.test.ts asserts the two are identical.
// Embedded because the build copies only .ts into dist/, and the runtime must not depend on a path.
export const CHAT_PROTO_SOURCE = `// chat.proto: the protobuf form of the chat protocol (shared/spec PROTOCOL.md sections 1-2).
//
// Wire: muduo ProtobufCodec payload, int32 nameLen | typeName\\0 | message bytes | int32 adler32,
// inside the framed codec's 4-byte length. The type name says which msgid a payload is, so no
// message carries a 'msgid' field. One type per JSON msgid; the dispatch table is keyed by either:
//
//   msgid  JSON name          protobuf type
//   1      LOGIN_MSG          chat.LoginRequest
//   2      LOGIN_MSG_ACK      chat.LoginAck
//   3      LOGINOUT_MSG       chat.LogoutRequest
//   4      REG_MSG            chat.RegisterRequest
//   5      REG_MSG_ACK        chat.RegisterAck
//   6      ONE_CHAT_MSG       chat.OneChat
//   7      ADD_FRIEND_MSG     chat.AddFriendRequest
//   8      CREATE_GROUP_MSG   chat.CreateGroupRequest
//   9      ADD_GROUP_MSG      chat.AddGroupRequest
//   10     GROUP_CHAT_MSG     chat.GroupChat
//   11     ONE_CHAT_ACK       chat.OneChatAck
//   12     GROUP_CHAT_ACK     chat.GroupChatAck
//   13     ADD_FRIEND_ACK     chat.AddFriendAck
//   14     CREATE_GROUP_ACK   chat.CreateGroupAck
//   15     ADD_GROUP_ACK      chat.AddGroupAck
//   16     LOGINOUT_ACK       chat.LogoutAck
//   17     DELIVER_ACK        chat.DeliverAck
//   18     PING               chat.Ping
//   19     PONG               chat.Pong
//   20     ERROR              chat.Error
//
// Conventions:
// - Field names are the JSON keys, so a message converts to/from the JSON object by name.
// - Every scalar is proto3 'optional': presence survives the round trip exactly (errno 0 is sent,
//   an absent cmid stays absent), and the server's validator sees "missing" as missing.
// - ids, seq, mid and lastseq are int64 (JSON limits them to safe integers, 2^53 - 1).
// - 'reqid' is field 15 of every top-level message. JSON allows a string or a number; protobuf
//   carries a string, so a numeric reqid is sent in decimal.
// - chat.OneChat / chat.GroupChat serve both directions: a request fills toid|groupid, msg and
//   optionally cmid, time (id, name are what the classic client also sends, and are ignored);
//   a push fills mid, seq, id, name, toid|groupid, msg, time.
// - PING's 't' may be a number or a string in JSON: 't' carries a number, 't_text' a string.
// - state is "online"/"offline" and role "creator"/"normal", as strings, as in JSON.
syntax = "proto3";

package chat;

message Friend {
  optional int64 id = 1;
  optional string name = 2;
  optional string state = 3;
}

message GroupUser {
  optional int64 id = 1;
  optional string name = 2;
  optional string state = 3;
  optional string role = 4;
}

message Group {
  optional int64 id = 1;
  optional string groupname = 2;
  optional string groupdesc = 3;
  repeated GroupUser users = 4;
}

// 1
message LoginRequest {
  optional int64 id = 1;
  optional string password = 2;
  optional int64 lastseq = 3;
  optional string reqid = 15;
}

// 2: friends and groups are present (possibly empty) when errno is 0.
message LoginAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional int64 id = 3;
  optional string name = 4;
  repeated Friend friends = 5;
  repeated Group groups = 6;
  optional string reqid = 15;
}

// 3
message LogoutRequest {
  optional int64 id = 1;
  optional string reqid = 15;
}

// 4
message RegisterRequest {
  optional int64 id = 1;
  optional string name = 2;
  optional string password = 3;
  optional string reqid = 15;
}

// 5
message RegisterAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional int64 id = 3;
  optional string reqid = 15;
}

// 6: request (c->s) and push (s->c).
message OneChat {
  optional int64 id = 1;
  optional string name = 2;
  optional int64 toid = 3;
  optional string msg = 4;
  optional string cmid = 5;
  optional string time = 6;
  optional int64 mid = 7;
  optional int64 seq = 8;
  optional string reqid = 15;
}

// 7
message AddFriendRequest {
  optional int64 id = 1;
  optional int64 friendid = 2;
  optional string reqid = 15;
}

// 8
message CreateGroupRequest {
  optional int64 id = 1;
  optional string groupname = 2;
  optional string groupdesc = 3;
  optional string reqid = 15;
}

// 9
message AddGroupRequest {
  optional int64 id = 1;
  optional int64 groupid = 2;
  optional string reqid = 15;
}

// 10: request (c->s) and push (s->c).
message GroupChat {
  optional int64 id = 1;
  optional string name = 2;
  optional int64 groupid = 3;
  optional string msg = 4;
  optional string cmid = 5;
  optional string time = 6;
  optional int64 mid = 7;
  optional int64 seq = 8;
  optional string reqid = 15;
}

// 11
message OneChatAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional string cmid = 3;
  optional int64 mid = 4;
  optional string reqid = 15;
}

// 12
message GroupChatAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional string cmid = 3;
  optional int64 mid = 4;
  optional string reqid = 15;
}

// 13
message AddFriendAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional int64 friendid = 3;
  optional string reqid = 15;
}

// 14
message CreateGroupAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional int64 groupid = 3;
  optional string reqid = 15;
}

// 15
message AddGroupAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional int64 groupid = 3;
  optional string reqid = 15;
}

// 16
message LogoutAck {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional string reqid = 15;
}

// 17: every push with seq <= this one was received.
message DeliverAck {
  optional int64 id = 1;
  optional int64 seq = 2;
  optional string reqid = 15;
}

// 18
message Ping {
  optional int64 id = 1;
  oneof stamp {
    double t = 2;
    string t_text = 3;
  }
  optional string reqid = 15;
}

// 19: echoes the PING's t.
message Pong {
  oneof stamp {
    double t = 2;
    string t_text = 3;
  }
  optional string reqid = 15;
}

// 20
message Error {
  optional int32 errno = 1;
  optional string errmsg = 2;
  optional string reqid = 15;
}
`;
