import type { AppendOptions } from '../model/MessageModel.js';
import type { AppendResult, FanoutRef, FanoutTask, NewMessage } from '../model/types.js';
import { Errno } from '../protocol/errno.js';
import { errnoOf } from './errnoOf.js';

/** A chat message waiting for its transaction. Recipients are resolved before it queues. */
export type ChatJob = Omit<NewMessage, 'recipients' | 'fanout'> & {
  /** The fan-out of a group message stored before (NewMessage.fanout): its recipients are given. */
  fanout?: FanoutRef & FanoutTask;
};

export type ChatJobResult =
  | {
      ok: true;
      mid: number;
      duplicate: boolean;
      deliveries: AppendResult['deliveries'];
      /** A group message of a partition owner: the fan-outs its members' inboxes wait for. */
      fanout?: FanoutTask[];
    }
  | { ok: false; errno: number; errmsg: string };

/** An idempotency key reused for another message: refused, as payment APIs do (docs/DECISIONS.md). */
const kCmidReused: ChatJobResult = {
  ok: false,
  errno: Errno.CONFLICT,
  errmsg: 'cmid already used for a different message',
};

/** What the committer needs from the data layer. */
export interface CommitterModels {
  users: { findById(id: number): Promise<unknown | undefined> };
  groups: { memberIds(groupId: number): Promise<number[]> };
  messages: {
    append(batch: () => readonly NewMessage[], options: AppendOptions): Promise<AppendResult[]>;
  };
}

export interface GroupCommitterOptions {
  /** Largest number of messages in one transaction. Default 512. */
  maxBatch?: number;
  /**
   * Transactions under way at once (see GroupCommitter). Default 3: one committing, one written
   * behind it, one taking its batch (bench/chat's load: 3 beat 2 on SQLite and 4 on MySQL).
   */
  depth?: number;
  /** Told of every committed transaction: its message count and duration. Default: nobody. */
  onBatch?: (size: number, durationMs: number) => void;
}

interface Pending {
  job: ChatJob;
  resolve: (result: ChatJobResult) => void;
}

interface Ready {
  pending: Pending;
  row: NewMessage;
}

/**
 * Group commit: chat messages that arrive while a transaction is running are stored together by
 * the next one, so durability costs a few round trips per batch instead of per message.
 *
 * Jobs have their recipients resolved (in arrival order), then wait in `ready`. Up to `depth`
 * transactions are under way: the next one starts as soon as the previous one is ordered (holds
 * its locks), and takes its batch from `ready` only when its own turn has come, inside the
 * transaction. So while one batch commits (its fsync), the next is already written behind it,
 * and every recipient's inbox order is still the arrival order.
 */
export class GroupCommitter {
  private incoming: Pending[] = [];
  private resolving = false;
  private ready: Ready[] = [];
  private readyHead = 0;
  /** Appends started and not settled. */
  private running = 0;
  /** An append was started and is not ordered yet: the next must wait for it. */
  private unordered = false;
  private idleWaiters: (() => void)[] = [];
  /** Results are handed out in the order their appends started (see startAppend). */
  private handedOut: Promise<void> = Promise.resolve();
  /** Appends whose results are not handed out yet. */
  private unhanded = 0;
  private readonly maxBatch: number;
  private readonly depth: number;
  /** Users never disappear, so a positive existence check can be cached for good. */
  private readonly knownUsers = new Set<number>();
  private readonly onBatch: (size: number, durationMs: number) => void;

  constructor(
    private readonly models: CommitterModels,
    options: GroupCommitterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 512;
    this.depth = Math.max(1, options.depth ?? 3);
    this.onBatch = options.onBatch ?? (() => {});
  }

  submit(job: ChatJob): Promise<ChatJobResult> {
    return new Promise((resolve) => {
      this.incoming.push({ job, resolve });
      if (!this.resolving) {
        this.resolving = true;
        // Let the rest of this loop turn's requests join.
        setImmediate(() => void this.resolveIncoming());
      }
    });
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  drain(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private idle(): boolean {
    return (
      !this.resolving &&
      this.incoming.length === 0 &&
      this.readyCount() === 0 &&
      this.running === 0 &&
      this.unhanded === 0
    );
  }

  private readyCount(): number {
    return this.ready.length - this.readyHead;
  }

  /** Resolves recipients of what came in, one group at a time, so `ready` keeps arrival order. */
  private async resolveIncoming(): Promise<void> {
    while (this.incoming.length > 0) {
      const jobs = this.incoming;
      this.incoming = [];
      let recipients: (number[] | ChatJobResult)[];
      try {
        recipients = await this.resolveRecipients(jobs);
      } catch (error) {
        this.failAll(jobs, errnoOf(error));
        continue;
      }
      jobs.forEach((pending, i) => {
        const r = recipients[i]!;
        if (Array.isArray(r)) this.ready.push({ pending, row: { ...pending.job, recipients: r } });
        else pending.resolve(r);
      });
      this.pump();
    }
    this.resolving = false;
    this.settleIfIdle();
  }

  /** Starts appends while the pipeline has room, work is ready and the last one is ordered. */
  private pump(): void {
    while (this.running < this.depth && !this.unordered && this.readyCount() > 0) this.startAppend();
  }

  private startAppend(): void {
    this.running++;
    this.unhanded++;
    this.unordered = true;
    const started = performance.now();
    let taken: Ready[] | null = null;
    const take = (): NewMessage[] => {
      taken ??= this.takeReady();
      return taken.map((r) => r.row);
    };
    let ordered = false;
    const onOrdered = (): void => {
      ordered = true;
      this.unordered = false;
      this.pump();
    };
    const settled = (): void => {
      this.running--;
      // Settled without being ordered (it failed): the next may go now.
      if (!ordered) this.unordered = false;
      this.pump();
      this.settleIfIdle();
    };
    const handOut = this.models.messages.append(take, { onOrdered }).then(
      (results) => {
        const batch = taken ?? [];
        if (taken !== null) this.onBatch(batch.length, performance.now() - started);
        settled();
        return () =>
          batch.forEach(({ pending }, i) => {
            const r = results[i]!;
            if (r.cmidReused === true) pending.resolve(kCmidReused);
            else {
              const ok: ChatJobResult = {
                ok: true,
                mid: r.mid,
                duplicate: r.duplicate,
                deliveries: r.deliveries,
              };
              if (r.fanout !== undefined) ok.fanout = r.fanout;
              pending.resolve(ok);
            }
          });
      },
      (error: unknown) => {
        // Failed before its turn came: the batch it would have taken fails instead.
        const batch = (taken ?? this.takeReady()).map((r) => r.pending);
        settled();
        return () => this.failAll(batch, errnoOf(error));
      },
    );
    // Pipelined appends may commit out of order (a group message's own transaction shares no
    // lock with the next one): what follows a commit (acks, group fan-outs) keeps arrival order.
    this.handedOut = this.handedOut
      .then(() => handOut)
      .then((give) => {
        give();
        this.unhanded--;
        this.settleIfIdle();
      });
  }

  private takeReady(): Ready[] {
    const end = Math.min(this.ready.length, this.readyHead + this.maxBatch);
    const batch = this.ready.slice(this.readyHead, end);
    this.readyHead = end;
    if (this.readyHead === this.ready.length) {
      this.ready = [];
      this.readyHead = 0;
    }
    return batch;
  }

  private settleIfIdle(): void {
    if (!this.idle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private failAll(batch: Pending[], errno: number): void {
    const errmsg = errno === Errno.UNAVAILABLE ? 'store unavailable, retry later' : 'internal error';
    for (const pending of batch) pending.resolve({ ok: false, errno, errmsg });
  }

  /** Per job: the recipient ids, or the error reply. One query per distinct group or unknown user. */
  private async resolveRecipients(batch: Pending[]): Promise<(number[] | ChatJobResult)[]> {
    const groups = new Map<number, Promise<number[]>>();
    const users = new Map<number, Promise<boolean>>();
    for (const { job } of batch) {
      if (job.fanout !== undefined) continue;
      if (job.kind === 'group') {
        if (!groups.has(job.target)) groups.set(job.target, this.models.groups.memberIds(job.target));
      } else if (!this.knownUsers.has(job.target) && !users.has(job.target)) {
        users.set(
          job.target,
          this.models.users.findById(job.target).then((u) => u !== undefined),
        );
      }
    }
    const [memberLists, exists] = await Promise.all([
      Promise.all(groups.values()),
      Promise.all(users.values()),
    ]);
    const groupIds = [...groups.keys()];
    const members = new Map(groupIds.map((id, i) => [id, memberLists[i]!]));
    [...users.keys()].forEach((id, i) => {
      if (exists[i]) this.knownUsers.add(id);
    });
    return batch.map(({ job }): number[] | ChatJobResult => {
      if (job.fanout !== undefined) return job.fanout.recipients;
      if (job.kind === 'one') {
        return this.knownUsers.has(job.target)
          ? [job.target]
          : { ok: false, errno: Errno.NOT_FOUND, errmsg: 'no such user' };
      }
      const ids = members.get(job.target)!;
      if (ids.length === 0) return { ok: false, errno: Errno.NOT_FOUND, errmsg: 'no such group' };
      if (!ids.includes(job.sender))
        return { ok: false, errno: Errno.FORBIDDEN, errmsg: 'not a member of this group' };
      return ids.filter((id) => id !== job.sender);
    });
  }
}
