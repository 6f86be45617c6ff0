import type { ChatPushView } from '../protocol/views.js';
import type { Presence } from './Presence.js';

export interface Delivery {
  userId: number;
  push: ChatPushView;
}

/**
 * Where committed messages go next. Delivery is a hint: a recipient that misses one repairs
 * the gap from the store (InboxStream), so routing may drop without losing messages.
 */
export interface DeliveryRouter {
  route(deliveries: readonly Delivery[]): void;
}

/** Single node: every online recipient is a local session (or nobody). */
export class LocalDeliveryRouter implements DeliveryRouter {
  constructor(private readonly presence: Presence) {}

  route(deliveries: readonly Delivery[]): void {
    for (const d of deliveries) this.presence.local(d.userId)?.offerPush(d.push);
  }
}
