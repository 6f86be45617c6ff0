import { Redis } from 'ioredis';
import { holderOf } from '../model/UserModel.js';
import type { ChatSession } from '../service/ChatSession.js';
import type { Delivery, DeliveryRouter } from '../service/DeliveryRouter.js';
import type { Presence } from '../service/Presence.js';
import { type PushNotification, RedisPushPublisher } from './RedisPushPublisher.js';

export interface RedisClusterOptions {
  /** redis://host:port[/db] */
  url: string;
  /** This server's unique name; its channel, and the value of its presence keys (with the epoch). */
  serverId: string;
  /**
   * This incarnation of the server (the distributed gateway: one per ZooKeeper session). Presence
   * values are `serverId|epoch`; `serverGone(id, epoch)` releases exactly one incarnation's keys
   * and fences it, so a gateway that was cut off and comes back cannot keep claiming them.
   * Default '' (chat-server's cluster: the 15 s heartbeat sweep only).
   */
  epoch?: string;
  /** Key and channel prefix, so several clusters (or test runs) can share one Redis. Default 'chat'. */
  prefix?: string;
  /** Presence key lifetime; a crashed server's users are free again after this. Default 15 000 ms. */
  presenceTtlMs?: number;
  /** Every online user's inbox is re-checked this often, repairing lost notifications. Default 30 000 ms. */
  repairIntervalMs?: number;
  /**
   * Called on exactly one live server when another server stopped heart-beating for longer than
   * the presence TTL (killed, frozen, cut off; `epoch` undefined: every incarnation), or when
   * `serverGone` fenced one incarnation (`epoch` given): the place to mark those users offline in
   * the store (`store.users.resetServer`). A rejected promise makes a later sweep try again.
   */
  onServerGone?: (serverId: string, epoch?: string) => Promise<unknown>;
  log: (level: 'info' | 'warn', message: string) => void;
}

/**
 * Claims or keeps presence keys, the fence checked once: each key is set while it is free (gone
 * after expiry or a Redis restart), ours, or left by an earlier incarnation of this server id
 * (killed, restarted with the same --server-id), and the user recorded in this incarnation's
 * member set. Returns the users whose key another server holds, or -1 when this incarnation is
 * fenced. One user at a login, up to kRefreshChunk at the periodic refresh.
 * KEYS: fence key, member set. ARGV: value, ttl ms, "serverId|", presence key prefix, user ids...
 */
const kClaimScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local lost = {}
local kept = {}
for i = 5, #ARGV do
  local k = ARGV[4] .. ARGV[i]
  local v = redis.call('GET', k)
  if v == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2])
    kept[#kept + 1] = ARGV[i]
  elseif v == false or string.sub(v, 1, #ARGV[3]) == ARGV[3] then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    kept[#kept + 1] = ARGV[i]
  else
    lost[#lost + 1] = ARGV[i]
  end
end
if #kept > 0 then
  redis.call('SADD', KEYS[2], unpack(kept))
  redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[2]))
end
return lost`;

/** Users per refresh script run: short enough not to hold Redis up, within Lua's unpack limit. */
const kRefreshChunk = 500;

/**
 * Fences one incarnation (`serverId|epoch`) and deletes the presence keys it still holds, in one
 * step. Returns the number released, or -1 when it was fenced already (by another survivor, or
 * by itself at a clean stop): exactly one caller cleans up after it. ARGV[4] (mode): 'survivor'
 * as said; 'own' (the incarnation itself, stopping) releases even when fenced already; 'release'
 * (a server without epochs: a fence would lock its next run out) releases and sets no fence.
 * KEYS: fence key, member set. ARGV: value, presence key prefix, fence lifetime (s), mode.
 */
const kFenceScript = `
if ARGV[4] ~= 'release' then
  local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3])
  if not first and ARGV[4] ~= 'own' then return -1 end
end
local n = 0
for _, u in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local k = ARGV[2] .. u
  if redis.call('GET', k) == ARGV[1] then
    redis.call('DEL', k)
    n = n + 1
  end
end
redis.call('DEL', KEYS[2])
return n`;

/** A fence outlives any cut-off incarnation: it gets a new epoch with its next ZooKeeper session. */
const kFenceSeconds = 24 * 3600;

/**
 * Heartbeat and sweep, atomically: stamps this server in the `servers` sorted set with Redis's
 * clock, then removes and returns the servers whose stamp is older than ARGV[2] ms. Only the
 * caller that removed a dead server gets it back, so exactly one server cleans up after it.
 */
const kHeartbeatScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
for _, id in ipairs(dead) do redis.call('ZREM', KEYS[1], id) end
return dead`;

/** Deletes a presence key only if it is still ours. KEYS: presence key, member set. ARGV: value, user. */
const kReleaseScript = `
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Presence and routing for many chat servers sharing one store, over Redis:
 * - presence: `PREFIX:presence:USER` = server id, with expiry, refreshed while the user is on;
 * - routing: a committed message is published on the channel of the server holding the
 *   recipient (`PREFIX:server:ID`), never broadcast.
 * Redis is a notification path only: the store holds every message, and inbox streams repair
 * whatever a lost notification, a Redis restart or a resubscription missed.
 */
export class RedisCluster implements Presence, DeliveryRouter {
  private readonly commands: Redis;
  private readonly subscriber: Redis;
  private readonly sessions = new Map<number, ChatSession>();
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly channel: string;
  private timers: NodeJS.Timeout[] = [];
  private subscribedOnce = false;
  private epochValue: string;
  /** retire() ran: our own fence is expected, not news. */
  private retired = false;
  /** Deliveries for other servers go to their channels. */
  private readonly publisher: RedisPushPublisher;

  constructor(private readonly options: RedisClusterOptions) {
    this.prefix = options.prefix ?? 'chat';
    this.ttlMs = options.presenceTtlMs ?? 15_000;
    this.channel = `${this.prefix}:server:${options.serverId}`;
    this.epochValue = options.epoch ?? '';
    const common = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(n * 200, 2000),
    };
    this.commands = new Redis(options.url, common);
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: true });
    this.publisher = new RedisPushPublisher(this.commands, { prefix: this.prefix, log: options.log });
    this.commands.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (_channel: string, message: string) => this.onNotification(message));
    // After a reconnect (a Redis restart loses every key; a broken connection loses the
    // notifications sent meanwhile): put our presence keys back first, so publishers find our
    // users again, then re-read every local inbox from the store. A message committed before
    // the re-read is pushed by it; one committed after is routed here by its publisher.
    this.subscriber.on('ready', () => {
      if (this.subscribedOnce) void this.resync('redis subscription restored');
    });
    this.commands.on('ready', () => {
      if (this.subscribedOnce) void this.resync('redis connection restored');
    });
  }

  /** Both connections to Redis are up (for the `chat_redis_up` metric). */
  get connected(): boolean {
    return this.commands.status === 'ready' && this.subscriber.status === 'ready';
  }

  async start(): Promise<void> {
    await this.commands.connect();
    await this.subscriber.connect();
    await this.subscriber.subscribe(this.channel);
    this.subscribedOnce = true;
    await this.refresh();
    this.timers.push(setInterval(() => void this.refresh(), Math.max(1000, this.ttlMs / 3)));
    this.timers.push(setInterval(() => this.repair(), this.options.repairIntervalMs ?? 30_000));
    for (const timer of this.timers) timer.unref();
  }

  /** The current incarnation (see `epoch`); written in the gateway's registry record. */
  get epoch(): string {
    return this.epochValue;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.sessions.clear();
    try {
      // Fenced by ourselves: our keys go now, and the survivors that see us leave the registry
      // have nothing to clean up (our users were logged out by the server's stop). Without an
      // epoch (chat-server) the next run has the same value: release only.
      await Promise.all([
        this.fence(this.options.serverId, this.epochValue, this.epochValue === '' ? 'release' : 'own'),
        this.commands.zrem(this.serversKey, this.options.serverId),
      ]);
    } catch {
      // Redis gone: the keys expire on their own.
    }
    this.subscriber.disconnect();
    this.commands.disconnect();
  }

  /** Presence keys are this and the user id. */
  private get presencePrefix(): string {
    return `${this.prefix}:presence:`;
  }

  private key(userId: number): string {
    return `${this.presencePrefix}${userId}`;
  }

  private get value(): string {
    return holderOf(this.options.serverId, this.epochValue);
  }

  /** The store's holder of logins made now (Presence.holder): this incarnation, as in Redis. */
  get holder(): string {
    return this.value;
  }

  private membersKey(value: string): string {
    return `${this.prefix}:members:${value}`;
  }

  private fenceKey(value: string): string {
    return `${this.prefix}:fenced:${value}`;
  }

  /** kClaimScript's keys and arguments before the user ids: this incarnation's, now. */
  private claimArgs(): (string | number)[] {
    const value = this.value;
    return [
      this.fenceKey(value),
      this.membersKey(value),
      value,
      this.ttlMs,
      `${this.options.serverId}|`,
      this.presencePrefix,
    ];
  }

  /** Fences one incarnation and deletes its keys; the number released, -1 if fenced already. */
  private async fence(
    serverId: string,
    epoch: string,
    mode: 'survivor' | 'own' | 'release' = 'survivor',
  ): Promise<number> {
    const value = `${serverId}|${epoch}`;
    const released = await this.commands.eval(
      kFenceScript,
      2,
      this.fenceKey(value),
      this.membersKey(value),
      value,
      this.presencePrefix,
      kFenceSeconds,
      mode,
    );
    return Number(released);
  }

  /**
   * A clean stop begins: fence this incarnation first, so that the survivors that see it leave the
   * registry do not clean up after it (mark its still-connected users offline); it logs its users
   * out itself and releases what is left in `stop()`. Claims fail from now on.
   */
  async retire(): Promise<void> {
    this.retired = true;
    if (this.epochValue === '') return; // nobody fences an incarnation without an epoch
    const value = this.value;
    try {
      await this.commands.set(this.fenceKey(value), '1', 'EX', kFenceSeconds, 'NX');
    } catch (error) {
      this.options.log('warn', `cannot fence ${value} before stopping: ${describe(error)}`);
    }
  }

  /**
   * Another server's incarnation is gone (its registry node left ZooKeeper: it died, stopped, or
   * lost its session), or an earlier one of ours (our session expired). Its users are free at
   * once; the one caller that fenced it also runs `onServerGone` for that incarnation only, so a
   * newer one under the same id keeps its users. Safe to call from every survivor.
   */
  async serverGone(serverId: string, epoch: string): Promise<void> {
    if (serverId === this.options.serverId && epoch === this.epochValue) return;
    let released: number;
    try {
      released = await this.fence(serverId, epoch);
    } catch (error) {
      this.options.log('warn', `cannot release the users of ${serverId}: ${describe(error)}`);
      return;
    }
    if (released < 0) return;
    this.options.log('warn', `server ${serverId}|${epoch} is gone; ${released} of its users are free`);
    await this.options.onServerGone?.(serverId, epoch).catch((error: unknown) => {
      this.options.log('warn', `cleanup after server ${serverId}|${epoch} failed: ${describe(error)}`);
    });
  }

  /**
   * This incarnation is over (its ZooKeeper session expired, or Redis says it was fenced): every
   * local session is closed — its users log in again, through us or another gateway — and later
   * claims use `nextEpoch`.
   */
  dropAll(why: string, nextEpoch?: string): void {
    if (nextEpoch !== undefined) this.epochValue = nextEpoch;
    if (this.sessions.size > 0) this.options.log('warn', `${why}; closing ${this.sessions.size} sessions`);
    // Forgotten now: this incarnation holds nobody any more (its keys are released by whoever
    // fenced it, or taken over by our next epoch), and their pushes must not be offered here.
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const session of sessions) session.transport.close();
  }

  private onFenced(): void {
    if (this.retired) return;
    this.dropAll(`this server (${this.value}) was fenced: another server released its users`);
  }

  /** Sorted set of live servers, scored by their last heartbeat (Redis time, ms). */
  private get serversKey(): string {
    return `${this.prefix}:servers`;
  }

  // ---- Presence ----

  async claim(userId: number, session: ChatSession): Promise<boolean> {
    if (this.sessions.has(userId)) return false;
    // Free, or held under our own id by no local session: a key left by this server's previous
    // run (killed, restarted with the same --server-id) does not lock its users out for a TTL.
    const lost = await this.commands.eval(kClaimScript, 2, ...this.claimArgs(), userId);
    if (lost === -1) this.onFenced();
    if (!Array.isArray(lost) || lost.length > 0 || this.sessions.has(userId)) return false;
    this.sessions.set(userId, session);
    return true;
  }

  async release(userId: number, session: ChatSession): Promise<void> {
    if (this.sessions.get(userId) !== session) return;
    this.sessions.delete(userId);
    try {
      const value = this.value;
      await this.commands.eval(kReleaseScript, 2, this.key(userId), this.membersKey(value), value, userId);
    } catch (error) {
      this.options.log('warn', `presence release of ${userId} failed (it will expire): ${describe(error)}`);
    }
  }

  local(userId: number): ChatSession | undefined {
    return this.sessions.get(userId);
  }

  // ---- DeliveryRouter ----

  route(deliveries: readonly Delivery[]): void {
    const remote: Delivery[] = [];
    for (const d of deliveries) {
      const session = this.sessions.get(d.userId);
      if (session !== undefined) session.offerPush(d.push);
      else remote.push(d);
    }
    if (remote.length > 0) this.publisher.route(remote);
  }

  private onNotification(message: string): void {
    let list: PushNotification[];
    try {
      list = JSON.parse(message) as PushNotification[];
    } catch {
      return;
    }
    if (!Array.isArray(list)) return;
    for (const n of list) {
      if (typeof n?.u === 'number' && typeof n.p?.seq === 'number') this.sessions.get(n.u)?.offerPush(n.p);
    }
  }

  // ---- upkeep ----

  private async resync(why: string): Promise<void> {
    this.options.log('info', `${why}; restoring presence and re-reading inboxes of online users`);
    await this.refresh();
    this.repair();
  }

  /** Heartbeat (and the sweep of dead servers), then our presence keys. */
  private async refresh(): Promise<void> {
    await this.heartbeat();
    const entries = [...this.sessions];
    if (entries.length === 0) return;
    const fixed = this.claimArgs();
    try {
      const pipeline = this.commands.pipeline();
      for (let i = 0; i < entries.length; i += kRefreshChunk) {
        const ids = entries.slice(i, i + kRefreshChunk).map(([userId]) => userId);
        pipeline.eval(kClaimScript, 2, ...fixed, ...ids);
      }
      const results = (await pipeline.exec()) ?? [];
      if (results.some(([error, lost]) => error === null && lost === -1)) {
        this.onFenced();
        return;
      }
      const refreshed = new Map(entries);
      for (const [error, lost] of results) {
        if (error !== null) throw error;
        for (const id of lost as string[]) {
          const userId = Number(id);
          const session = this.sessions.get(userId);
          // Not a session that logged in (again) while the refresh ran.
          if (session === undefined || refreshed.get(userId) !== session) continue;
          // Someone logged in elsewhere while our key was gone: theirs wins, this one is stale.
          this.options.log('warn', `user ${userId} is online on another server; closing the local session`);
          session.transport.close();
        }
      }
    } catch (error) {
      this.options.log('warn', `presence refresh failed: ${describe(error)}`);
    }
  }

  private async heartbeat(): Promise<void> {
    let dead: string[];
    try {
      dead = (await this.commands.eval(
        kHeartbeatScript,
        1,
        this.serversKey,
        this.options.serverId,
        this.ttlMs,
      )) as string[];
    } catch (error) {
      this.options.log('warn', `heartbeat failed: ${describe(error)}`);
      return;
    }
    for (const id of dead) {
      this.options.log('warn', `server ${id} stopped heart-beating; its users are offline now`);
      const onGone = this.options.onServerGone;
      if (onGone === undefined) continue;
      onGone(id).catch((error: unknown) => {
        this.options.log('warn', `cleanup after server ${id} failed (will retry): ${describe(error)}`);
        // Back in the set as long dead (NX: unless it came back meanwhile): the next sweep retries.
        this.commands.zadd(this.serversKey, 'NX', 0, id).catch(() => {});
      });
    }
  }

  /**
   * Re-reads every local user's inbox from the store and pushes what they have not been sent:
   * after a lost notification path, or when a node that committed messages died before
   * announcing them.
   */
  repair(): void {
    for (const session of this.sessions.values()) void session.inbox?.catchUp();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
