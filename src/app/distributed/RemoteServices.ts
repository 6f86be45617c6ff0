/**
 * The business services as seen from chat-gateway: the same TypeScript interfaces as in
 * process, each method one native RPC through a shared RpcChannel (many calls in flight per
 * connection, least-loaded provider, deadlines; retries where the .proto marks the method
 * idempotent, and for chat submits that carry a cmid, which the message service deduplicates).
 */

import { type CallOptions, createStub, type RpcChannel, type Stub } from '../../rpc/index.js';
import type { GroupDetail, InboxEntry, PresenceState, UserRecord, UserSummary } from '../model/types.js';
import { toPresence } from '../model/UserModel.js';
import { Errno } from '../protocol/errno.js';
import type { ChatJob, ChatJobResult } from '../service/GroupCommitter.js';
import type {
  ChatServices,
  FriendService,
  GroupService,
  InboxCursor,
  MessageService,
  UserService,
} from '../services/ChatServices.js';
import { partitionKey, partitionOf } from '../store/partitions.js';
import { checkReply, errorOfCall, type ReplyStatus } from './errors.js';
import { chatServiceDefinition } from './serviceProto.js';
import type {
  FriendServiceRpc,
  GroupServiceRpc,
  MessageServiceRpc,
  UserServiceRpc,
  WireUserSummary,
} from './wireTypes.js';

export interface RemoteServicesOptions {
  /** Deadline of each service call, retries included. Default 5000 ms. */
  callTimeoutMs?: number;
}

/** One call: a failed call becomes StoreError UNAVAILABLE, a failed reply its own StoreError. */
async function call<R extends ReplyStatus>(pending: Promise<R>): Promise<R> {
  let reply: R;
  try {
    reply = await pending;
  } catch (error) {
    throw errorOfCall(error);
  }
  return checkReply(reply);
}

const summary = (u: WireUserSummary): UserSummary => ({ id: u.id, name: u.name, state: toPresence(u.state) });

class RemoteUserService implements UserService {
  constructor(
    private readonly stub: Stub<UserServiceRpc>,
    private readonly opts: CallOptions,
  ) {}

  async create(name: string, password: string): Promise<number> {
    return (await call(this.stub.Register({ name, password }, this.opts))).id;
  }

  async verifyPassword(id: number, password: string): Promise<UserRecord | undefined> {
    const r = await call(this.stub.Login({ id, password }, this.opts));
    // The hash stays in the user service: the gateway needs only who logged in.
    return r.found ? { id: r.id, name: r.name, passwordHash: '', state: toPresence(r.state) } : undefined;
  }

  async setState(id: number, state: PresenceState, serverId: string | null): Promise<void> {
    await call(this.stub.SetState({ id, state, server_id: serverId ?? '' }, this.opts));
  }

  async resetServer(serverId: string, epoch?: string): Promise<number> {
    const request = { server_id: serverId, epoch: epoch ?? '', one_epoch: epoch !== undefined };
    return (await call(this.stub.ResetServer(request, this.opts))).count;
  }
}

class RemoteFriendService implements FriendService {
  constructor(
    private readonly stub: Stub<FriendServiceRpc>,
    private readonly opts: CallOptions,
  ) {}

  async add(userId: number, friendId: number): Promise<void> {
    await call(this.stub.Add({ user_id: userId, friend_id: friendId }, this.opts));
  }

  async list(userId: number): Promise<UserSummary[]> {
    return (await call(this.stub.List({ user_id: userId }, this.opts))).friends.map(summary);
  }
}

class RemoteGroupService implements GroupService {
  constructor(
    private readonly stub: Stub<GroupServiceRpc>,
    private readonly opts: CallOptions,
  ) {}

  async create(creatorId: number, groupname: string, groupdesc: string): Promise<number> {
    const r = await call(this.stub.Create({ creator_id: creatorId, groupname, groupdesc }, this.opts));
    return r.group_id;
  }

  async join(groupId: number, userId: number): Promise<void> {
    await call(this.stub.Join({ group_id: groupId, user_id: userId }, this.opts));
  }

  async listForUser(userId: number): Promise<GroupDetail[]> {
    const r = await call(this.stub.ListForUser({ user_id: userId }, this.opts));
    return r.groups.map((g) => ({
      id: g.id,
      groupname: g.groupname,
      groupdesc: g.groupdesc,
      users: g.users.map((u) => ({ ...summary(u), role: u.role === 'creator' ? 'creator' : 'normal' })),
    }));
  }

  async memberIds(groupId: number): Promise<number[]> {
    return (await call(this.stub.MemberIds({ group_id: groupId }, this.opts))).ids;
  }
}

class RemoteMessageService implements MessageService {
  /** Submits in flight from this gateway: drain() waits for them (a graceful stop). */
  private readonly inFlight = new Set<Promise<ChatJobResult>>();

  constructor(
    private readonly stub: Stub<MessageServiceRpc>,
    private readonly opts: CallOptions,
  ) {}

  submit(job: ChatJob, senderName: string, origin: string): Promise<ChatJobResult> {
    const pending = this.submitOnce(job, senderName, origin);
    this.inFlight.add(pending);
    void pending.finally(() => this.inFlight.delete(pending));
    return pending;
  }

  private async submitOnce(job: ChatJob, senderName: string, origin: string): Promise<ChatJobResult> {
    const request = {
      sender: job.sender,
      sender_name: senderName,
      origin,
      has_cmid: job.cmid !== null,
      cmid: job.cmid ?? '',
      kind: job.kind,
      target: job.target,
      body: job.body,
      time: job.time,
    };
    try {
      // Retrying is safe exactly when the message service can recognise the repeat: by its cmid.
      // A conversation's messages go to the node owning its inbox partition (rendezvous hashing
      // of the partition over the live nodes): one writer per inbox, and one sender's messages
      // to one recipient or group commit in the order it sent them, as in chat-server.
      const r = await this.stub.Submit(request, {
        ...this.opts,
        idempotent: job.cmid !== null,
        affinity: partitionKey(partitionOf(job.target)),
      });
      if (r.errno !== 0) return { ok: false, errno: r.errno, errmsg: r.errmsg };
      return {
        ok: true,
        mid: r.mid,
        duplicate: r.duplicate,
        deliveries: r.deliveries.map((d) => ({ userId: d.user_id, seq: d.seq })),
      };
    } catch (error) {
      return { ok: false, errno: Errno.UNAVAILABLE, errmsg: errorOfCall(error).message };
    }
  }

  async readInbox(userId: number, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    const r = await call(this.stub.ReadInbox({ user_id: userId, after_seq: afterSeq, limit }, this.opts));
    return r.entries.map((e) => ({
      seq: e.seq,
      mid: e.mid,
      sender: e.sender,
      senderName: e.sender_name,
      kind: e.kind === 'group' ? 'group' : 'one',
      target: e.target,
      body: e.body,
      time: e.time,
    }));
  }

  async cursor(userId: number): Promise<InboxCursor> {
    const r = await call(this.stub.Cursor({ user_id: userId }, this.opts));
    return { lastSeq: r.last_seq, ackedSeq: r.acked_seq };
  }

  async ackMany(acks: ReadonlyMap<number, number>): Promise<void> {
    const list = [...acks].map(([userId, seq]) => ({ user_id: userId, seq }));
    await call(this.stub.AckMany({ acks: list }, this.opts));
  }

  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }
}

/** The four services over `channel` (which finds providers in ZooKeeper or at fixed addresses). */
export function createRemoteServices(channel: RpcChannel, options: RemoteServicesOptions = {}): ChatServices {
  const opts: CallOptions = { timeoutMs: options.callTimeoutMs ?? 5000 };
  return {
    users: new RemoteUserService(createStub<UserServiceRpc>(channel, chatServiceDefinition('user')), opts),
    friends: new RemoteFriendService(
      createStub<FriendServiceRpc>(channel, chatServiceDefinition('friend')),
      opts,
    ),
    groups: new RemoteGroupService(
      createStub<GroupServiceRpc>(channel, chatServiceDefinition('group')),
      opts,
    ),
    messages: new RemoteMessageService(
      createStub<MessageServiceRpc>(channel, chatServiceDefinition('message')),
      opts,
    ),
  };
}
