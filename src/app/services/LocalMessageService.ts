import type { ChatStore } from '../model/ChatStore.js';
import type { FanoutJob, InboxEntry } from '../model/types.js';
import { pushOf } from '../service/chatPush.js';
import type { Delivery } from '../service/DeliveryRouter.js';
import { type ChatJob, type ChatJobResult, GroupCommitter } from '../service/GroupCommitter.js';
import type {
  ChatServices,
  FanoutOutcome,
  FanoutService,
  InboxCursor,
  MessageService,
} from './ChatServices.js';

/** Routes pushes to the servers holding their recipients, except the server the message came from (null: none). */
export interface RemotePushRouter {
  route(deliveries: readonly Delivery[], exceptServer: string | null): void;
}

/** Takes a group message's fan-outs to their partitions' owners (chat-service: FanoutDriver). */
export interface FanoutDispatcher {
  /** Resolves once the fan-out's entries are appended (never rejects: failures are retried). */
  dispatch(job: FanoutJob): Promise<void>;
}

export interface LocalMessageServiceOptions {
  /**
   * Pushes for recipients on other servers (chat-service: the gateways, through Redis).
   * Default none: in chat-server, the server routes every push itself.
   */
  router?: RemotePushRouter;
  /** Told of every committed transaction: its message count and duration. Default: nobody. */
  onBatch?: (size: number, durationMs: number) => void;
  /**
   * Where a partition owner's group messages go once stored (their members' inboxes are other
   * partitions' to write). Required with MessageModelOptions.partitionOwner; unused without.
   */
  fanout?: FanoutDispatcher;
  /**
   * How long a group message's ack waits for its fan-outs, so that an acknowledged message is in
   * every member's inbox as in chat-server; past it the ack goes (the rows are stored: the
   * fan-outs still run, in order). Keep it under the gateways' call deadline. Default 3000 ms.
   */
  fanoutWaitMs?: number;
}

/**
 * The message service over the store: the GroupCommitter for writes, the message model for
 * reads and acks. Used in-process by chat-server and served over RPC by chat-service.
 */
export class LocalMessageService implements MessageService, FanoutService {
  private readonly committer: GroupCommitter;

  constructor(
    private readonly store: ChatStore,
    private readonly options: LocalMessageServiceOptions = {},
  ) {
    this.committer = new GroupCommitter(store, { onBatch: options.onBatch });
  }

  async submit(job: ChatJob, senderName: string, origin: string): Promise<ChatJobResult> {
    const result = await this.committer.submit(job);
    const router = this.options.router;
    if (router !== undefined && result.ok && result.deliveries.length > 0) {
      router.route(
        result.deliveries.map(({ userId, seq }) => ({
          userId,
          push: pushOf(job, senderName, result.mid, seq),
        })),
        origin,
      );
    }
    // Stored: the ack waits for the fan-outs (bounded), which the driver, or recovery, runs.
    const dispatcher = this.options.fanout;
    if (dispatcher !== undefined && result.ok && result.fanout !== undefined) {
      const appended: Promise<void>[] = [];
      for (const task of result.fanout) {
        const done = dispatcher.dispatch({
          mid: result.mid,
          part: task.part,
          recipients: task.recipients,
          sender: job.sender,
          senderName,
          target: job.target,
          body: job.body,
          time: job.time,
        });
        appended.push(done);
      }
      await waitAtMost(Promise.all(appended), this.options.fanoutWaitMs ?? 3000);
    }
    return result;
  }

  async fanout(job: FanoutJob): Promise<FanoutOutcome> {
    const result = await this.committer.submit({
      sender: job.sender,
      cmid: null,
      kind: 'group',
      target: job.target,
      body: job.body,
      time: job.time,
      fanout: { mid: job.mid, part: job.part, recipients: job.recipients },
    });
    if (!result.ok) return result;
    // Every member's gateway, the sender's too: it got no deliveries with its ack.
    if (result.deliveries.length > 0) {
      this.options.router?.route(
        result.deliveries.map(({ userId, seq }) => ({
          userId,
          push: pushOf({ ...job, cmid: null, kind: 'group' }, job.senderName, job.mid, seq),
        })),
        null,
      );
    }
    return { ok: true, appended: result.deliveries.length };
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
}

/** The in-process services over one store: the models themselves, and the message service. */
export function createLocalServices(
  store: ChatStore,
  options: LocalMessageServiceOptions = {},
): ChatServices {
  return {
    users: store.users,
    friends: store.friends,
    groups: store.groups,
    messages: new LocalMessageService(store, options),
  };
}

/** Resolves when `p` does, or after `ms`, whichever comes first. */
function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([p.then(() => undefined), timeout]).finally(() => clearTimeout(timer));
}
