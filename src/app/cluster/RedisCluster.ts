import { Redis } from 'ioredis';
import type { ChatPushView } from '../protocol/views.js';
import type { ChatSession } from '../service/ChatSession.js';
import type { Delivery, DeliveryRouter } from '../service/DeliveryRouter.js';
import type { Presence } from '../service/Presence.js';

export interface RedisClusterOptions {
  /** redis://host:port[/db] */
  url: string;
  /** This server's unique name; its channel and the value of its presence keys. */
  serverId: string;
  /** Key and channel prefix, so several clusters (or test runs) can share one Redis. Default 'chat'. */
  prefix?: string;
  /** Presence key lifetime; a crashed server's users are free again after this. Default 15 000 ms. */
  presenceTtlMs?: number;
  /** Every online user's inbox is re-checked this often, repairing lost notifications. Default 30 000 ms. */
  repairIntervalMs?: number;
  log: (level: 'info' | 'warn', message: string) => void;
}

/** Refreshes a presence key only while it is ours (or gone, after a Redis restart). */
const kRefreshScript = `
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** Deletes a presence key only if it is still ours. */
const kReleaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface Notification {
  u: number;
  p: ChatPushView;
}

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

  constructor(private readonly options: RedisClusterOptions) {
    this.prefix = options.prefix ?? 'chat';
    this.ttlMs = options.presenceTtlMs ?? 15_000;
    this.channel = `${this.prefix}:server:${options.serverId}`;
    const common = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(n * 200, 2000),
    };
    this.commands = new Redis(options.url, common);
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: true });
    this.commands.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (_channel: string, message: string) => this.onNotification(message));
    this.subscriber.on('ready', () => {
      if (this.subscribedOnce) {
        options.log('info', 'redis subscription restored; re-reading inboxes of online users');
        this.repairAll();
      }
    });
  }

  async start(): Promise<void> {
    await this.commands.connect();
    await this.subscriber.connect();
    await this.subscriber.subscribe(this.channel);
    this.subscribedOnce = true;
    this.timers.push(setInterval(() => void this.refresh(), Math.max(1000, this.ttlMs / 3)));
    this.timers.push(setInterval(() => this.repairAll(), this.options.repairIntervalMs ?? 30_000));
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const mine = [...this.sessions.keys()];
    this.sessions.clear();
    try {
      await Promise.all(
        mine.map((u) => this.commands.eval(kReleaseScript, 1, this.key(u), this.options.serverId)),
      );
    } catch {
      // Redis gone: the keys expire on their own.
    }
    this.subscriber.disconnect();
    this.commands.disconnect();
  }

  private key(userId: number): string {
    return `${this.prefix}:presence:${userId}`;
  }

  // ---- Presence ----

  async claim(userId: number, session: ChatSession): Promise<boolean> {
    if (this.sessions.has(userId)) return false;
    const ok = await this.commands.set(this.key(userId), this.options.serverId, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK' || this.sessions.has(userId)) return false;
    this.sessions.set(userId, session);
    return true;
  }

  async release(userId: number, session: ChatSession): Promise<void> {
    if (this.sessions.get(userId) !== session) return;
    this.sessions.delete(userId);
    try {
      await this.commands.eval(kReleaseScript, 1, this.key(userId), this.options.serverId);
    } catch (error) {
      this.options.log('warn', `presence release of ${userId} failed (it will expire): ${describe(error)}`);
    }
  }

  local(userId: number): ChatSession | undefined {
    return this.sessions.get(userId);
  }

  localCount(): number {
    return this.sessions.size;
  }

  // ---- DeliveryRouter ----

  route(deliveries: readonly Delivery[]): void {
    const remote: Delivery[] = [];
    for (const d of deliveries) {
      const session = this.sessions.get(d.userId);
      if (session !== undefined) session.offerPush(d.push);
      else remote.push(d);
    }
    if (remote.length > 0) void this.publish(remote);
  }

  private async publish(remote: Delivery[]): Promise<void> {
    try {
      const servers = await this.commands.mget(remote.map((d) => this.key(d.userId)));
      const byServer = new Map<string, Notification[]>();
      remote.forEach((d, i) => {
        const server = servers[i];
        if (server === null || server === undefined) return; // offline: the inbox has it for the next login
        const list = byServer.get(server);
        if (list === undefined) byServer.set(server, [{ u: d.userId, p: d.push }]);
        else list.push({ u: d.userId, p: d.push });
      });
      const pipeline = this.commands.pipeline();
      for (const [server, list] of byServer)
        pipeline.publish(`${this.prefix}:server:${server}`, JSON.stringify(list));
      await pipeline.exec();
    } catch (error) {
      // Only the notification is lost; the recipient's server repairs from the store.
      this.options.log('warn', `redis publish failed: ${describe(error)}`);
    }
  }

  private onNotification(message: string): void {
    let list: Notification[];
    try {
      list = JSON.parse(message) as Notification[];
    } catch {
      return;
    }
    if (!Array.isArray(list)) return;
    for (const n of list) {
      if (typeof n?.u === 'number' && typeof n.p?.seq === 'number') this.sessions.get(n.u)?.offerPush(n.p);
    }
  }

  // ---- upkeep ----

  private async refresh(): Promise<void> {
    const entries = [...this.sessions];
    if (entries.length === 0) return;
    try {
      const pipeline = this.commands.pipeline();
      for (const [userId] of entries) {
        pipeline.eval(kRefreshScript, 1, this.key(userId), this.options.serverId, this.ttlMs);
      }
      const results = (await pipeline.exec()) ?? [];
      results.forEach(([error, kept], i) => {
        const [userId, session] = entries[i]!;
        if (error === null && kept === 0 && this.sessions.get(userId) === session) {
          // Someone logged in elsewhere while our key was gone: theirs wins, this one is stale.
          this.options.log('warn', `user ${userId} is online on another server; closing the local session`);
          session.transport.close();
        }
      });
    } catch (error) {
      this.options.log('warn', `presence refresh failed: ${describe(error)}`);
    }
  }

  private repairAll(): void {
    for (const session of this.sessions.values()) void session.inbox?.catchUp();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
