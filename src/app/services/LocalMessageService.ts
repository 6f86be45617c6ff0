import type { ChatStore } from '../model/ChatStore.js';
import type { InboxEntry } from '../model/types.js';
import type { Delivery, DeliveryRouter } from '../service/DeliveryRouter.js';
import { type ChatJob, type ChatJobResult, GroupCommitter } from '../service/GroupCommitter.js';
import type { ChatServices, InboxCursor, MessageService } from './ChatServices.js';

export interface LocalMessageServiceOptions {
  /** Where pushes of committed messages go (local sessions, or the gateway holding each recipient). */
  router: DeliveryRouter;
  /** Told of every committed transaction: its message count and duration. Default: nobody. */
  onBatch?: (size: number, durationMs: number) => void;
}

/**
 * The message service over the store: the GroupCommitter for writes, the message model for
 * reads and acks. Used in-process by chat-server and served over RPC by chat-service.
 */
export class LocalMessageService implements MessageService {
  private readonly committer: GroupCommitter;
  /** Pushes of this loop turn, routed together after the turn's acks went out. */
  private pending: Delivery[] = [];
  private routeScheduled = false;

  constructor(
    private readonly store: ChatStore,
    private readonly options: LocalMessageServiceOptions,
  ) {
    this.committer = new GroupCommitter(store, { onBatch: options.onBatch });
  }

  async submit(job: ChatJob, senderName: string): Promise<ChatJobResult> {
    const result = await this.committer.submit(job);
    if (result.ok && result.deliveries.length > 0)
      this.queuePushes(job, senderName, result.mid, result.deliveries);
    return result;
  }

  readInbox(userId: number, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    return this.store.messages.readInbox(userId, afterSeq, limit);
  }

  cursor(userId: number): Promise<InboxCursor> {
    return this.store.messages.cursor(userId);
  }

  ackMany(acks: ReadonlyMap<number, number>): Promise<void> {
    return this.store.messages.ackMany(acks);
  }

  drain(): Promise<void> {
    return this.committer.drain();
  }

  private queuePushes(
    job: ChatJob,
    name: string,
    mid: number,
    deliveries: readonly { userId: number; seq: number }[],
  ): void {
    for (const { userId, seq } of deliveries) {
      this.pending.push({
        userId,
        push:
          job.kind === 'one'
            ? { msgid: 6, mid, seq, id: job.sender, name, toid: job.target, msg: job.body, time: job.time }
            : {
                msgid: 10,
                mid,
                seq,
                id: job.sender,
                name,
                groupid: job.target,
                msg: job.body,
                time: job.time,
              },
      });
    }
    if (this.routeScheduled) return;
    // After this turn: the sender's ack (written when submit resolves) goes out before the pushes,
    // and a whole group commit is routed in one call.
    this.routeScheduled = true;
    setImmediate(() => {
      const batch = this.pending;
      this.pending = [];
      this.routeScheduled = false;
      this.options.router.route(batch);
    });
  }
}

/** The in-process services over one store: the models themselves, and the message service. */
export function createLocalServices(store: ChatStore, options: LocalMessageServiceOptions): ChatServices {
  return {
    users: store.users,
    friends: store.friends,
    groups: store.groups,
    messages: new LocalMessageService(store, options),
  };
}
