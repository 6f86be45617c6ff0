import type { AppendResult, NewMessage } from '../model/types.js';
import { Errno } from '../protocol/errno.js';
import { errnoOf } from './errnoOf.js';

/** A chat message waiting for its transaction. Recipients are resolved at commit time. */
export type ChatJob = Omit<NewMessage, 'recipients'>;

export type ChatJobResult =
  | { ok: true; mid: number; duplicate: boolean; deliveries: AppendResult['deliveries'] }
  | { ok: false; errno: number; errmsg: string };

/** What the committer needs from the data layer. */
export interface CommitterModels {
  users: { findById(id: number): Promise<unknown | undefined> };
  groups: { memberIds(groupId: number): Promise<number[]> };
  messages: { append(batch: NewMessage[]): Promise<AppendResult[]> };
}

export interface GroupCommitterOptions {
  /** Largest number of messages in one transaction. Default 512. */
  maxBatch?: number;
}

interface Pending {
  job: ChatJob;
  resolve: (result: ChatJobResult) => void;
}

/**
 * Group commit: chat messages that arrive while a transaction is running (or in the same
 * loop turn) are stored together by the next one, so durability costs one round trip per
 * batch instead of one per message. Batches run one at a time, in submission order, which
 * keeps every recipient's inbox order equal to arrival order.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  /** Users never disappear, so a positive existence check can be cached for good. */
  private readonly knownUsers = new Set<number>();

  constructor(
    private readonly models: CommitterModels,
    options: GroupCommitterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 512;
  }

  submit(job: ChatJob): Promise<ChatJobResult> {
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      if (!this.running) {
        this.running = true;
        // Let the rest of this loop turn's requests join the batch.
        setImmediate(() => void this.runBatches());
      }
    });
  }

  /** Resolves once everything submitted so far is committed (or failed). */
  drain(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async runBatches(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      await this.commit(batch);
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private async commit(batch: Pending[]): Promise<void> {
    let recipients: (number[] | ChatJobResult)[];
    try {
      recipients = await this.resolveRecipients(batch);
    } catch (error) {
      this.failAll(batch, errnoOf(error));
      return;
    }
    const accepted: Pending[] = [];
    const rows: NewMessage[] = [];
    batch.forEach((pending, i) => {
      const r = recipients[i]!;
      if (!Array.isArray(r)) {
        pending.resolve(r);
        return;
      }
      accepted.push(pending);
      rows.push({ ...pending.job, recipients: r });
    });
    if (rows.length === 0) return;
    let results: AppendResult[];
    try {
      results = await this.models.messages.append(rows);
    } catch (error) {
      this.failAll(accepted, errnoOf(error));
      return;
    }
    accepted.forEach((pending, i) => {
      const r = results[i]!;
      pending.resolve({ ok: true, mid: r.mid, duplicate: r.duplicate, deliveries: r.deliveries });
    });
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
      if (job.kind === 'group') {
        if (!groups.has(job.target)) groups.set(job.target, this.models.groups.memberIds(job.target));
      } else if (!this.knownUsers.has(job.target) && !users.has(job.target)) {
        users.set(
          job.target,
          this.models.users.findById(job.target).then((u) => u !== undefined),
        );
      }
    }
    const members = new Map<number, number[]>();
    for (const [id, p] of groups) members.set(id, await p);
    for (const [id, p] of users) if (await p) this.knownUsers.add(id);
    return batch.map(({ job }): number[] | ChatJobResult => {
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
