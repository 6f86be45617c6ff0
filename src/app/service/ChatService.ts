import { Dispatcher } from '../../net/index.js';
import { Errno, errmsgFor } from '../protocol/errno.js';
import { fitLegacyChatMessage, fitLegacyLoginAck, kClassicRecvBytes } from '../protocol/legacyFit.js';
import { legacyLoginAckError, legacyRegAck, legacyRegAckError } from '../protocol/legacyReplies.js';
import { allowedBeforeLogin, MsgId } from '../protocol/msgid.js';
import { errorReply, loginAck } from '../protocol/replies.js';
import {
  type AddFriendRequest,
  type AddGroupRequest,
  type ChatRequest,
  type CreateGroupRequest,
  type DeliverAckRequest,
  type GroupChatRequest,
  type LoginRequest,
  type OneChatRequest,
  type PingRequest,
  parseRequest,
  type RegisterRequest,
  type ReqId,
} from '../protocol/requests.js';
import type { ChatPushView } from '../protocol/views.js';
import type { ChatServices } from '../services/ChatServices.js';
import { AckWriter } from './AckWriter.js';
import { AuthThrottle, type AuthThrottleOptions } from './AuthThrottle.js';
import { ChatSession, type SessionTransport } from './ChatSession.js';
import { pushOf } from './chatPush.js';
import { formatChatTime } from './clock.js';
import type { DeliveryRouter } from './DeliveryRouter.js';
import { errnoOf } from './errnoOf.js';
import type { ChatJob } from './GroupCommitter.js';
import { InboxStream, pushFromEntry } from './InboxStream.js';
import type { Presence } from './Presence.js';
import { RateLimiter } from './RateLimiter.js';
import { NO_SERVICE_EVENTS, type ServiceEvents } from './ServiceEvents.js';

export interface ChatServiceOptions {
  /** Identifies this server's sessions in the store (crash recovery marks them offline). */
  serverId: string;
  /** Chat messages per second one session may send (burst: twice that). Default 2000. */
  messagesPerSecond?: number;
  /** How long delivery acks are coalesced before being written. Default 50 ms. */
  ackFlushMs?: number;
  /**
   * Largest reply to a classic session, `\0` included: login acks and pushes are cut to fit
   * (docs/DECISIONS.md "Pacing"). Default 1024, the classic client's `recv` buffer.
   */
  legacyWriteBytes?: number;
  /** Reports unexpected failures (logging). Default: ignore. */
  onError?: (error: unknown, context: string) => void;
  /** Logins, errors, message flow: for logs and metrics. Default: none. */
  events?: ServiceEvents;
  /** Failed-login and registration limits (AuthThrottle's defaults). */
  authThrottle?: AuthThrottleOptions;
  /** Reports throttled logins and registrations (logging). Default: ignore. */
  onThrottled?: (event: 'login throttled' | 'registration throttled', peer: string, detail: string) => void;
}

/** Which reply id carries the errors of each request id (docs/PROTOCOL.md §3–4); others use ERROR (20). */
const kAckFor: Readonly<Record<number, number>> = { 1: 2, 3: 16, 4: 5, 6: 11, 7: 13, 8: 14, 9: 15, 10: 12 };

/** Unread messages read for a classic LOGIN_MSG_ACK (far more than fit the default 1,024 bytes). */
const kLegacyOfflinePage = 64;

type Handler = (session: ChatSession, req: ChatRequest) => Promise<void> | undefined;

/**
 * The business layer: decoded request → msgid → handler (the classic table), over the models.
 * It knows nothing of sockets or codecs beyond the session's codec kind, which decides the
 * classic reply shapes.
 */
export class ChatService {
  private readonly table: Dispatcher<number, [ChatSession, ChatRequest], Promise<void> | undefined>;
  private readonly sessions = new Set<ChatSession>();
  private readonly messagesPerSecond: number;
  private readonly ackFlushMs: number;
  private readonly legacyWriteBytes: number;
  private readonly acks: AckWriter;
  private readonly reportError: (error: unknown, context: string) => void;
  private readonly auth: AuthThrottle;
  private router: DeliveryRouter | null = null;
  private readonly events: ServiceEvents;

  constructor(
    /** The business services, in this process (chat-server) or over RPC (chat-gateway). */
    private readonly store: ChatServices,
    private readonly presence: Presence,
    private readonly options: ChatServiceOptions,
  ) {
    this.events = options.events ?? NO_SERVICE_EVENTS;
    this.messagesPerSecond = options.messagesPerSecond ?? 2000;
    this.ackFlushMs = options.ackFlushMs ?? 50;
    this.legacyWriteBytes = options.legacyWriteBytes ?? kClassicRecvBytes;
    this.reportError = options.onError ?? (() => {});
    this.auth = new AuthThrottle(options.authThrottle);
    this.acks = new AckWriter(store.messages, this.ackFlushMs, (error) =>
      this.reportError(error, 'delivery acks'),
    );
    this.table = new Dispatcher<number, [ChatSession, ChatRequest], Promise<void> | undefined>(
      (msgid, session, req) =>
        this.replyError(session, msgid, Errno.BAD_REQUEST, `unknown msgid ${msgid}`, req.reqid),
    );
    const on = <R extends ChatRequest>(
      msgid: R['msgid'],
      handler: (s: ChatSession, r: R) => Promise<void> | undefined,
    ) => this.table.register(msgid, handler as Handler);
    on<LoginRequest>(MsgId.LOGIN_MSG, (s, r) => this.login(s, r));
    on(MsgId.LOGINOUT_MSG, (s, r) => this.logout(s, r.reqid));
    on<RegisterRequest>(MsgId.REG_MSG, (s, r) => this.register(s, r));
    on<OneChatRequest>(MsgId.ONE_CHAT_MSG, (s, r) => this.chat(s, r, 'one', r.toid));
    on<GroupChatRequest>(MsgId.GROUP_CHAT_MSG, (s, r) => this.chat(s, r, 'group', r.groupid));
    on<AddFriendRequest>(MsgId.ADD_FRIEND_MSG, (s, r) => this.addFriend(s, r));
    on<CreateGroupRequest>(MsgId.CREATE_GROUP_MSG, (s, r) => this.createGroup(s, r));
    on<AddGroupRequest>(MsgId.ADD_GROUP_MSG, (s, r) => this.joinGroup(s, r));
    on<DeliverAckRequest>(MsgId.DELIVER_ACK, (s, r) => this.deliverAck(s, r));
    on<PingRequest>(MsgId.PING, (s, r) => this.ping(s, r));
  }

  /**
   * Where this server routes committed messages right after the sender's ack: local sessions,
   * or the cluster. (In the distributed server the message service publishes to the other
   * gateways; this router reaches the recipients on this one.) Set before serving.
   */
  setRouter(router: DeliveryRouter): void {
    this.router = router;
  }

  openSession(transport: SessionTransport): ChatSession {
    const limiter = new RateLimiter(this.messagesPerSecond, this.messagesPerSecond * 2);
    const session = new ChatSession(transport, this.handleMessage, limiter);
    this.sessions.add(session);
    return session;
  }

  /** The connection is gone: the user goes offline; queued chat messages still commit. */
  async closeSession(session: ChatSession): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session);
    await this.endLogin(session);
  }

  /** Waits for every accepted chat message to be committed and every ack to be written. */
  async flush(): Promise<void> {
    await this.store.messages.drain();
    await this.acks.flush();
  }

  /** Decoded message from a connection (any codec) → validation → the msgid table. */
  private readonly handleMessage = (session: ChatSession, message: unknown): Promise<void> | undefined => {
    const parsed = parseRequest(message);
    if (!parsed.ok) {
      return this.replyError(session, parsed.msgid ?? 0, parsed.errno, parsed.errmsg, parsed.reqid);
    }
    const req = parsed.req;
    if (!session.loggedIn && !allowedBeforeLogin(req.msgid)) {
      return this.replyError(
        session,
        req.msgid,
        Errno.NOT_LOGGED_IN,
        errmsgFor(Errno.NOT_LOGGED_IN),
        req.reqid,
      );
    }
    if (
      req.msgid !== MsgId.LOGIN_MSG &&
      session.loggedIn &&
      req.id !== undefined &&
      req.id !== session.userId
    ) {
      return this.replyError(
        session,
        req.msgid,
        Errno.FORBIDDEN,
        'id does not match the logged-in user',
        req.reqid,
      );
    }
    try {
      const pending = this.table.dispatch(req.msgid, session, req);
      return pending?.catch((error: unknown) => this.failed(session, req, error));
    } catch (error) {
      this.failed(session, req, error);
      return undefined;
    }
  };

  private failed(session: ChatSession, req: ChatRequest, error: unknown): void {
    this.reportError(error, `msgid ${req.msgid} from ${session.transport.peer}`);
    this.replyError(session, req.msgid, errnoOf(error), errmsgFor(errnoOf(error)), req.reqid);
  }

  private replyError(
    session: ChatSession,
    msgid: number,
    errno: number,
    errmsg: string,
    reqid?: ReqId,
  ): undefined {
    const ackId = kAckFor[msgid];
    this.events.errorReplied(session, msgid, errno, errmsg);
    if (session.kind === 'legacy') {
      // The classic client understands only its two acks; anything else it must not see.
      if (ackId === MsgId.LOGIN_MSG_ACK) session.send(legacyLoginAckError(errno, errmsg));
      else if (ackId === MsgId.REG_MSG_ACK) session.send(legacyRegAckError(errno, errmsg));
      return undefined;
    }
    const reply: Record<string, unknown> =
      ackId === undefined ? { ...errorReply(errno, errmsg) } : { msgid: ackId, errno, errmsg };
    if (reqid !== undefined) reply.reqid = reqid;
    session.send(reply);
    return undefined;
  }

  private reply(session: ChatSession, reply: Record<string, unknown>, reqid: ReqId | undefined): void {
    if (reqid !== undefined) reply.reqid = reqid;
    session.send(reply);
  }

  // ---- handlers ----

  private async register(session: ChatSession, req: RegisterRequest): Promise<void> {
    const wait = this.auth.takeRegistration(session.transport.address ?? '');
    if (wait > 0) {
      const errmsg = `too many registrations from this address; retry in ${seconds(wait)} s`;
      this.options.onThrottled?.('registration throttled', session.transport.peer, errmsg);
      this.events.throttled(session, 'registration');
      this.replyError(session, MsgId.REG_MSG, Errno.RATE_LIMITED, errmsg, req.reqid);
      return;
    }
    let id: number;
    try {
      id = await this.store.users.create(req.name, req.password);
    } catch (error) {
      const errno = errnoOf(error);
      if (errno === Errno.UNAVAILABLE) this.reportError(error, 'register');
      const errmsg = errno === Errno.CONFLICT ? 'name already taken' : errmsgFor(errno);
      this.replyError(session, MsgId.REG_MSG, errno, errmsg, req.reqid);
      return;
    }
    this.events.registered(session, id);
    if (session.kind === 'legacy') session.send(legacyRegAck(id));
    else this.reply(session, { msgid: MsgId.REG_MSG_ACK, errno: 0, id }, req.reqid);
  }

  private async login(session: ChatSession, req: LoginRequest): Promise<void> {
    if (session.loggedIn) {
      const errno = req.id === session.userId ? Errno.ALREADY_ONLINE : Errno.BAD_REQUEST;
      const errmsg = errno === Errno.ALREADY_ONLINE ? errmsgFor(errno) : 'log out first';
      this.events.loginRefused(session, req.id, errno);
      this.replyError(session, MsgId.LOGIN_MSG, errno, errmsg, req.reqid);
      return;
    }
    const address = session.transport.address ?? '';
    const wait = this.auth.loginWait(req.id, address);
    if (wait > 0) {
      // Refused before the password is checked: it tells a guesser nothing and costs no scrypt.
      const errmsg = `too many failed logins; retry in ${seconds(wait)} s`;
      this.options.onThrottled?.('login throttled', session.transport.peer, `account ${req.id}: ${errmsg}`);
      this.events.throttled(session, 'login');
      this.replyError(session, MsgId.LOGIN_MSG, Errno.RATE_LIMITED, errmsg, req.reqid);
      return;
    }
    const user = await this.store.users.verifyPassword(req.id, req.password);
    if (user === undefined) this.auth.loginFailed(req.id, address);
    else this.auth.loginSucceeded(req.id, address);
    if (session.closed) return;
    if (user === undefined) {
      this.events.loginRefused(session, req.id, Errno.BAD_CREDENTIALS);
      this.replyError(
        session,
        MsgId.LOGIN_MSG,
        Errno.BAD_CREDENTIALS,
        errmsgFor(Errno.BAD_CREDENTIALS),
        req.reqid,
      );
      return;
    }
    if (!(await this.presence.claim(user.id, session))) {
      this.events.loginRefused(session, req.id, Errno.ALREADY_ONLINE);
      this.replyError(
        session,
        MsgId.LOGIN_MSG,
        Errno.ALREADY_ONLINE,
        errmsgFor(Errno.ALREADY_ONLINE),
        req.reqid,
      );
      return;
    }
    if (session.closed) {
      // The connection went away while the claim was in flight (a cluster presence waits for
      // Redis): closeSession saw no user to release, so release the claim here or the account
      // stays "online" on a dead session.
      await this.presence.release(user.id, session);
      return;
    }
    session.userId = user.id;
    session.userName = user.name;
    session.holder = this.presence.holder ?? this.options.serverId;
    this.events.loggedIn(session, user.id);
    try {
      await this.store.users.setState(user.id, 'online', session.holder);
      const [friends, groups, cursor] = await Promise.all([
        this.store.friends.list(user.id),
        this.store.groups.listForUser(user.id),
        this.store.messages.cursor(user.id),
      ]);
      if (session.closed) return;
      const sink = (push: ChatPushView): void => this.sendPush(session, push);
      const onInboxError = (error: unknown): void => this.inboxFailed(session, error);
      const backpressure = (): Promise<void> | undefined => session.transport.whenWritable?.();
      if (session.kind === 'legacy') {
        // The classic client reads the ack with one recv: it carries the unread messages that fit,
        // the rest follow as ordinary (paced) pushes, in seq order.
        const unread = await this.store.messages.readInbox(user.id, cursor.ackedSeq, kLegacyOfflinePage);
        const offline = unread.map(pushFromEntry);
        session.deliveryBaseline = cursor.ackedSeq;
        const fitted = fitLegacyLoginAck(user, friends, groups, offline, this.legacyWriteBytes);
        session.send(fitted.ack);
        const carried = fitted.offlineCount;
        const last = carried > 0 ? offline[carried - 1]!.seq : cursor.ackedSeq;
        if (carried > 0) this.noteWritten(session, last);
        session.inbox = new InboxStream(user.id, last, this.store.messages, sink, onInboxError, backpressure);
      } else {
        this.reply(session, { ...loginAck(user, friends, groups) }, req.reqid);
        const from = Math.min(Math.max(req.lastseq ?? 0, cursor.ackedSeq), cursor.lastSeq);
        session.deliveryBaseline = from;
        session.inbox = new InboxStream(user.id, from, this.store.messages, sink, onInboxError, backpressure);
      }
      await session.inbox.catchUp();
    } catch (error) {
      await this.endLogin(session, 'error');
      throw error;
    }
  }

  private async logout(session: ChatSession, reqid: ReqId | undefined): Promise<void> {
    await session.inflightChats;
    await this.endLogin(session, 'logout');
    if (session.kind !== 'legacy') this.reply(session, { msgid: MsgId.LOGINOUT_ACK, errno: 0 }, reqid);
  }

  private chat(
    session: ChatSession,
    req: OneChatRequest | GroupChatRequest,
    kind: 'one' | 'group',
    target: number,
  ): undefined {
    const ackId = kind === 'one' ? MsgId.ONE_CHAT_ACK : MsgId.GROUP_CHAT_ACK;
    if (!session.rateLimiter.take()) {
      this.events.throttled(session, 'chat_rate');
      return this.replyError(session, req.msgid, Errno.RATE_LIMITED, 'slow down', req.reqid);
    }
    const acceptedAt = performance.now();
    this.events.messageAccepted();
    const job: ChatJob = {
      sender: session.userId!,
      cmid: req.cmid ?? null,
      kind,
      target,
      body: req.msg,
      time: req.time ?? formatChatTime(),
    };
    const senderName = session.userName;
    // The message service commits; recipients held by other servers are its to reach.
    const done = this.store.messages.submit(job, senderName, this.options.serverId).then((result) => {
      if (!result.ok) {
        if (result.errno === Errno.UNAVAILABLE) this.reportError(new Error(result.errmsg), 'commit');
        this.replyError(session, req.msgid, result.errno, result.errmsg, req.reqid);
        return;
      }
      if (session.kind !== 'legacy') {
        const ack: Record<string, unknown> = { msgid: ackId, errno: 0, mid: result.mid };
        if (req.cmid !== undefined) ack.cmid = req.cmid;
        this.reply(session, ack, req.reqid);
      }
      this.events.messageAcked(performance.now() - acceptedAt);
      if (result.deliveries.length > 0) this.route(job, senderName, result.mid, result.deliveries);
    });
    session.inflightChats = done;
    return undefined;
  }

  private route(
    job: ChatJob,
    name: string,
    mid: number,
    deliveries: { userId: number; seq: number }[],
  ): void {
    const router = this.router;
    if (router === null) return;
    router.route(deliveries.map(({ userId, seq }) => ({ userId, push: pushOf(job, name, mid, seq) })));
  }

  private async addFriend(session: ChatSession, req: AddFriendRequest): Promise<void> {
    if (req.friendid === session.userId) {
      this.replyError(session, req.msgid, Errno.BAD_REQUEST, 'cannot add yourself as a friend', req.reqid);
      return;
    }
    try {
      await this.store.friends.add(session.userId!, req.friendid);
    } catch (error) {
      this.replyModelError(session, req.msgid, error, req.reqid, 'no such user', 'already friends');
      return;
    }
    this.reply(session, { msgid: MsgId.ADD_FRIEND_ACK, errno: 0, friendid: req.friendid }, req.reqid);
  }

  private async createGroup(session: ChatSession, req: CreateGroupRequest): Promise<void> {
    let groupid: number;
    try {
      groupid = await this.store.groups.create(session.userId!, req.groupname, req.groupdesc);
    } catch (error) {
      this.replyModelError(session, req.msgid, error, req.reqid, 'no such user', 'group name taken');
      return;
    }
    this.reply(session, { msgid: MsgId.CREATE_GROUP_ACK, errno: 0, groupid }, req.reqid);
  }

  private async joinGroup(session: ChatSession, req: AddGroupRequest): Promise<void> {
    try {
      await this.store.groups.join(req.groupid, session.userId!);
    } catch (error) {
      this.replyModelError(session, req.msgid, error, req.reqid, 'no such group', 'already a member');
      return;
    }
    this.reply(session, { msgid: MsgId.ADD_GROUP_ACK, errno: 0, groupid: req.groupid }, req.reqid);
  }

  private deliverAck(session: ChatSession, req: DeliverAckRequest): undefined {
    this.noteDelivered(session, req.seq);
    return undefined;
  }

  private ping(session: ChatSession, req: PingRequest): undefined {
    if (session.kind === 'legacy') return undefined;
    const pong: Record<string, unknown> = { msgid: MsgId.PONG };
    if (req.t !== undefined) pong.t = req.t;
    this.reply(session, pong, req.reqid);
    return undefined;
  }

  private replyModelError(
    session: ChatSession,
    msgid: number,
    error: unknown,
    reqid: ReqId | undefined,
    notFound: string,
    conflict: string,
  ): void {
    const errno = errnoOf(error);
    if (errno === Errno.UNAVAILABLE) this.reportError(error, `msgid ${msgid}`);
    const errmsg =
      errno === Errno.NOT_FOUND ? notFound : errno === Errno.CONFLICT ? conflict : errmsgFor(errno);
    this.replyError(session, msgid, errno, errmsg, reqid);
  }

  // ---- delivery ----

  private sendPush(session: ChatSession, push: ChatPushView): void {
    session.send(session.kind === 'legacy' ? fitLegacyChatMessage(push, this.legacyWriteBytes) : push);
    // A classic client never acks: a push counts as delivered once written to its socket.
    if (session.kind === 'legacy') this.noteWritten(session, push.seq);
  }

  private inboxFailed(session: ChatSession, error: unknown): void {
    this.reportError(error, `inbox of user ${session.userId}`);
    // The client cannot be told about a gap it does not know of: drop the connection so it
    // logs in again with its lastseq and gets the rest.
    session.transport.close();
  }

  /**
   * A classic client never acks: what was sent to it counts as delivered once the kernel has
   * taken all of its bytes. Output still queued when the connection is cut (the paced queue, or
   * pending in the socket) is discarded, so those messages stay unacknowledged for the next login.
   */
  private noteWritten(session: ChatSession, seq: number): void {
    const transport = session.transport;
    if (transport.bytesQueued === undefined) {
      this.noteDelivered(session, seq);
      return;
    }
    session.unflushed.push({ seq, end: transport.bytesQueued() });
    this.promoteFlushed(session);
    if (session.unflushed.length > 0 && !session.flushCheckArmed) {
      session.flushCheckArmed = true;
      const check = (): void => {
        this.promoteFlushed(session);
        if (session.unflushed.length > 0 && !session.closed) setTimeout(check, this.ackFlushMs).unref();
        else session.flushCheckArmed = false;
      };
      setTimeout(check, this.ackFlushMs).unref();
    }
  }

  /** Every unflushed seq whose bytes the kernel has taken counts as delivered. */
  private promoteFlushed(session: ChatSession): void {
    const flushed = session.transport.bytesFlushed?.();
    const pending = session.unflushed;
    if (flushed === undefined || pending.length === 0) return;
    let n = 0;
    while (n < pending.length && pending[n]!.end <= flushed) n++;
    if (n === 0) return;
    const seq = pending[n - 1]!.seq;
    pending.splice(0, n);
    this.noteDelivered(session, seq);
  }

  /** Acks are coalesced across sessions by the AckWriter (one store write per `ackFlushMs`). */
  private noteDelivered(session: ChatSession, seq: number): void {
    if (seq <= session.deliveredSeq || session.userId === null) return;
    // Seqs are gap-free, so the advance past what was already known delivered is a count.
    const known = Math.max(session.deliveredSeq, session.deliveryBaseline);
    if (seq > known) this.events.delivered(seq - known);
    session.deliveredSeq = seq;
    this.acks.note(session.userId, seq);
  }

  /**
   * Ends the login. At a logout the pushes already sent are given time to reach the kernel, so
   * that a classic session's paced pushes count as delivered, not sent twice.
   */
  private async endLogin(
    session: ChatSession,
    why: 'logout' | 'disconnect' | 'error' = 'disconnect',
  ): Promise<void> {
    const userId = session.userId;
    if (userId === null) return;
    session.inbox?.close();
    if (why === 'logout' && session.unflushed.length > 0) {
      await session.transport.whenFlushed?.();
      // The connection closed meanwhile: closeSession has ended this login.
      if (session.userId !== userId) return;
    }
    this.events.loggedOut(session, userId, why);
    this.promoteFlushed(session);
    session.unflushed = [];
    await this.acks.flush();
    session.inbox = null;
    session.userId = null;
    session.deliveredSeq = 0;
    await this.presence.release(userId, session);
    if (this.presence.local(userId) === undefined) {
      try {
        await this.store.users.setState(userId, 'offline', session.holder);
      } catch (error) {
        this.reportError(error, `offline state of user ${userId}`);
      }
    }
  }
}

/** A wait as whole seconds for a retry hint, at least 1. */
function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
