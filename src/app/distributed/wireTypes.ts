/** The messages of chat_services.proto as TypeScript (protobufjs keepCase: field names as written). */
import type { MethodTypes } from '../../rpc/index.js';
import type { ReplyStatus } from './errors.js';

export interface RegisterRequest {
  name: string;
  password: string;
}
export interface RegisterReply extends ReplyStatus {
  id: number;
}
export interface LoginRequest {
  id: number;
  password: string;
}
export interface LoginReply extends ReplyStatus {
  found: boolean;
  id: number;
  name: string;
  state: string;
}
export interface SetStateRequest {
  id: number;
  state: string;
  server_id: string;
}
export interface ResetServerRequest {
  server_id: string;
  epoch: string;
  one_epoch: boolean;
}
export interface ResetServerReply extends ReplyStatus {
  count: number;
}
export interface WireUserSummary {
  id: number;
  name: string;
  state: string;
}
export interface FriendPair {
  user_id: number;
  friend_id: number;
}
export interface UserIdRequest {
  user_id: number;
}
export interface FriendListReply extends ReplyStatus {
  friends: WireUserSummary[];
}
export interface CreateGroupRequest {
  creator_id: number;
  groupname: string;
  groupdesc: string;
}
export interface CreateGroupReply extends ReplyStatus {
  group_id: number;
}
export interface JoinGroupRequest {
  group_id: number;
  user_id: number;
}
export interface WireGroupDetail {
  id: number;
  groupname: string;
  groupdesc: string;
  users: (WireUserSummary & { role: string })[];
}
export interface GroupListReply extends ReplyStatus {
  groups: WireGroupDetail[];
}
export interface GroupIdRequest {
  group_id: number;
}
export interface MemberIdsReply extends ReplyStatus {
  ids: number[];
}
export interface SubmitRequest {
  sender: number;
  sender_name: string;
  origin: string;
  has_cmid: boolean;
  cmid: string;
  kind: string;
  target: number;
  body: string;
  time: string;
}
export interface WireDelivery {
  user_id: number;
  seq: number;
}
export interface SubmitReply extends ReplyStatus {
  mid: number;
  duplicate: boolean;
  deliveries: WireDelivery[];
}
export interface ReadInboxRequest {
  user_id: number;
  after_seq: number;
  limit: number;
}
export interface WireInboxEntry {
  seq: number;
  mid: number;
  sender: number;
  sender_name: string;
  kind: string;
  target: number;
  body: string;
  time: string;
}
export interface ReadInboxReply extends ReplyStatus {
  entries: WireInboxEntry[];
}
export interface CursorReply extends ReplyStatus {
  last_seq: number;
  acked_seq: number;
}
export interface AckManyRequest {
  acks: WireDelivery[];
}

export interface FanoutRequest {
  mid: number;
  part: number;
  recipients: number[];
  sender: number;
  sender_name: string;
  target: number;
  body: string;
  time: string;
}
export interface FanoutReply extends ReplyStatus {
  appended: number;
}

export interface UserServiceRpc {
  Register: MethodTypes<RegisterRequest, RegisterReply>;
  Login: MethodTypes<LoginRequest, LoginReply>;
  SetState: MethodTypes<SetStateRequest, ReplyStatus>;
  ResetServer: MethodTypes<ResetServerRequest, ResetServerReply>;
}
export interface FriendServiceRpc {
  Add: MethodTypes<FriendPair, ReplyStatus>;
  List: MethodTypes<UserIdRequest, FriendListReply>;
}
export interface GroupServiceRpc {
  Create: MethodTypes<CreateGroupRequest, CreateGroupReply>;
  Join: MethodTypes<JoinGroupRequest, ReplyStatus>;
  ListForUser: MethodTypes<UserIdRequest, GroupListReply>;
  MemberIds: MethodTypes<GroupIdRequest, MemberIdsReply>;
}
export interface MessageServiceRpc {
  Submit: MethodTypes<SubmitRequest, SubmitReply>;
  ReadInbox: MethodTypes<ReadInboxRequest, ReadInboxReply>;
  Cursor: MethodTypes<UserIdRequest, CursorReply>;
  AckMany: MethodTypes<AckManyRequest, ReplyStatus>;
  Fanout: MethodTypes<FanoutRequest, FanoutReply>;
}
