/**
 * The in-process services served over src/rpc: each handler calls the same class chat-server
 * calls, and turns a business failure into the reply's errno (errors.ts). A handler never
 * throws for a business failure, so an RPC HANDLER_ERROR always means a bug or a lost store.
 */

import type { ServiceImpl } from '../../rpc/index.js';
import type { MessageKind } from '../model/types.js';
import { toPresence } from '../model/UserModel.js';
import { Errno } from '../protocol/errno.js';
import type {
  FanoutService,
  FriendService,
  GroupService,
  MessageService,
  UserService,
} from '../services/ChatServices.js';
import { OK_STATUS, type ReplyStatus, statusOf } from './errors.js';
import type {
  FriendListReply,
  FriendServiceRpc,
  GroupListReply,
  GroupServiceRpc,
  LoginReply,
  MemberIdsReply,
  MessageServiceRpc,
  ReadInboxReply,
  UserServiceRpc,
} from './wireTypes.js';

/** Runs `body`; a failure becomes `{ errno, errmsg }` merged into `empty`. */
async function answer<R extends ReplyStatus>(empty: R, body: () => Promise<Partial<R>>): Promise<R> {
  try {
    return { ...empty, ...(await body()) };
  } catch (error) {
    return { ...empty, ...statusOf(error) };
  }
}

export function userProvider(users: UserService): ServiceImpl<UserServiceRpc> {
  return {
    Register: (r) =>
      answer({ ...OK_STATUS, id: 0 }, async () => ({ id: await users.create(r.name, r.password) })),
    Login: (r) =>
      answer<LoginReply>({ ...OK_STATUS, found: false, id: 0, name: '', state: '' }, async () => {
        const user = await users.verifyPassword(r.id, r.password);
        return user === undefined ? {} : { found: true, id: user.id, name: user.name, state: user.state };
      }),
    SetState: (r) =>
      answer({ ...OK_STATUS }, async () => {
        await users.setState(r.id, toPresence(r.state), r.server_id === '' ? null : r.server_id);
        return {};
      }),
    ResetServer: (r) =>
      answer({ ...OK_STATUS, count: 0 }, async () => ({
        count: await users.resetServer(r.server_id, r.one_epoch ? r.epoch : undefined),
      })),
  };
}

export function friendProvider(friends: FriendService): ServiceImpl<FriendServiceRpc> {
  return {
    Add: (r) =>
      answer({ ...OK_STATUS }, async () => {
        await friends.add(r.user_id, r.friend_id);
        return {};
      }),
    List: (r) =>
      answer<FriendListReply>({ ...OK_STATUS, friends: [] }, async () => ({
        friends: await friends.list(r.user_id),
      })),
  };
}

export function groupProvider(groups: GroupService): ServiceImpl<GroupServiceRpc> {
  return {
    Create: (r) =>
      answer({ ...OK_STATUS, group_id: 0 }, async () => ({
        group_id: await groups.create(r.creator_id, r.groupname, r.groupdesc),
      })),
    Join: (r) =>
      answer({ ...OK_STATUS }, async () => {
        await groups.join(r.group_id, r.user_id);
        return {};
      }),
    ListForUser: (r) =>
      answer<GroupListReply>({ ...OK_STATUS, groups: [] }, async () => ({
        groups: await groups.listForUser(r.user_id),
      })),
    MemberIds: (r) =>
      answer<MemberIdsReply>({ ...OK_STATUS, ids: [] }, async () => ({
        ids: await groups.memberIds(r.group_id),
      })),
  };
}

/** `fanout`: a partition owner's group fan-outs (chat-service); without it Fanout answers errno 9. */
export function messageProvider(
  messages: MessageService,
  fanout?: FanoutService,
): ServiceImpl<MessageServiceRpc> {
  return {
    Fanout: async (r) => {
      if (fanout === undefined)
        return { errno: Errno.UNAVAILABLE, errmsg: 'this node does not fan out', appended: 0 };
      const outcome = await fanout.fanout({
        mid: r.mid,
        part: r.part,
        recipients: r.recipients,
        sender: r.sender,
        senderName: r.sender_name,
        target: r.target,
        body: r.body,
        time: r.time,
      });
      if (!outcome.ok) return { errno: outcome.errno, errmsg: outcome.errmsg, appended: 0 };
      return { ...OK_STATUS, appended: outcome.appended };
    },
    Submit: async (r) => {
      const result = await messages.submit(
        {
          sender: r.sender,
          cmid: r.has_cmid ? r.cmid : null,
          kind: (r.kind === 'group' ? 'group' : 'one') satisfies MessageKind,
          target: r.target,
          body: r.body,
          time: r.time,
        },
        r.sender_name,
        r.origin,
      );
      if (!result.ok)
        return { errno: result.errno, errmsg: result.errmsg, mid: 0, duplicate: false, deliveries: [] };
      return {
        ...OK_STATUS,
        mid: result.mid,
        duplicate: result.duplicate,
        deliveries: result.deliveries.map((d) => ({ user_id: d.userId, seq: d.seq })),
      };
    },
    ReadInbox: (r) =>
      answer<ReadInboxReply>({ ...OK_STATUS, entries: [] }, async () => ({
        entries: (await messages.readInbox(r.user_id, r.after_seq, r.limit)).map((e) => ({
          seq: e.seq,
          mid: e.mid,
          sender: e.sender,
          sender_name: e.senderName,
          kind: e.kind,
          target: e.target,
          body: e.body,
          time: e.time,
        })),
      })),
    Cursor: (r) =>
      answer({ ...OK_STATUS, last_seq: 0, acked_seq: 0 }, async () => {
        const c = await messages.cursor(r.user_id);
        return { last_seq: c.lastSeq, acked_seq: c.ackedSeq };
      }),
    AckMany: (r) =>
      answer({ ...OK_STATUS }, async () => {
        await messages.ackMany(new Map(r.acks.map((a) => [a.user_id, a.seq])));
        return {};
      }),
  };
}
