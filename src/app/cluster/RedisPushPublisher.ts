import type { Redis } from 'ioredis';
import type { Delivery } from '../service/DeliveryRouter.js';
import { serverOfPresence } from './presenceValue.js';

/** What goes on a server's channel: user id and the push for that user. */
export interface PushNotification {
  u: number;
  p: Delivery['push'];
}

export interface RedisPushPublisherOptions {
  /** Key and channel prefix shared by the cluster (see RedisCluster). */
  prefix: string;
  log: (level: 'info' | 'warn', message: string) => void;
}

/**
 * Routes pushes to the server holding each recipient: looks the recipients' presence keys up
 * (`PREFIX:presence:USER` → `serverId|epoch`) and publishes on that server's channel only
 * (`PREFIX:server:ID`), never a broadcast. Deliveries of one loop turn go out together: one
 * MGET and one PUBLISH per server. Used by RedisCluster for recipients on other servers, and
 * by the message service of the distributed deployment for every recipient.
 */
export class RedisPushPublisher {
  private queued: { d: Delivery; except: string | null }[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisPushPublisherOptions,
  ) {}

  /** Publishes each push to its recipient's server, unless that is `exceptServer` (it has them). */
  route(deliveries: readonly Delivery[], exceptServer: string | null = null): void {
    for (const d of deliveries) this.queued.push({ d, except: exceptServer });
    if (this.queued.length === 0 || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      const batch = this.queued;
      this.queued = [];
      this.scheduled = false;
      void this.publish(batch);
    });
  }

  private async publish(batch: { d: Delivery; except: string | null }[]): Promise<void> {
    const prefix = this.options.prefix;
    try {
      const servers = await this.redis.mget(batch.map(({ d }) => `${prefix}:presence:${d.userId}`));
      const byServer = new Map<string, PushNotification[]>();
      batch.forEach(({ d, except }, i) => {
        const holder = servers[i];
        if (holder === null || holder === undefined) return; // offline: the inbox has it for the next login
        const server = serverOfPresence(holder);
        if (server === except) return; // the message's own server pushed it already
        const list = byServer.get(server);
        if (list === undefined) byServer.set(server, [{ u: d.userId, p: d.push }]);
        else list.push({ u: d.userId, p: d.push });
      });
      if (byServer.size === 0) return;
      const pipeline = this.redis.pipeline();
      for (const [server, list] of byServer)
        pipeline.publish(`${prefix}:server:${server}`, JSON.stringify(list));
      await pipeline.exec();
    } catch (error) {
      // Only the notification is lost; the recipient's server repairs from the store.
      this.options.log(
        'warn',
        `redis publish failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}
