/**
 * Drives a message node's group fan-outs (docs/DISTRIBUTED.md, "Group messages"): once a group
 * message is stored with its `group_fanout` rows, each row is sent as a `Fanout` call to the
 * owner of its member partition, routed like a Submit (affinity = the partition), which appends
 * the members' inboxes and deletes the row; the sender's ack waits for that (`dispatch`'s
 * promise). Fan-outs to one partition run one at a time in the order dispatched, and a failed
 * one is retried in place (with a growing pause) before the next, so a group's messages keep
 * their order in every inbox. A row left behind by a node that died before driving it is found
 * by the periodic sweep: rows of the partitions this node holds after `ownAgeMs`, anybody's
 * after `orphanAgeMs` (their node may be dead, and nobody takes its partition until a submit
 * comes). A repeat is harmless: the row makes each fan-out happen once.
 */
import type { CallOptions, Stub } from '../../rpc/index.js';
import type { FanoutJob, PendingFanout } from '../model/types.js';
import type { FanoutService } from '../services/ChatServices.js';
import type { FanoutDispatcher } from '../services/LocalMessageService.js';
import { partitionKey } from '../store/partitions.js';
import { errorOfCall } from './errors.js';
import type { MessageServiceRpc } from './wireTypes.js';

/** What the driver reads of the store. */
export interface FanoutStore {
  pendingFanouts(before: number, limit: number): Promise<PendingFanout[]>;
  /** The partitions this node holds (PartitionFence.epochs). */
  heldPartitions(): ReadonlyMap<number, number>;
}

/**
 * This node's own fan-outs, run in process when a call would come back here: `isOwner(part)`
 * says whether the message service's routing sends that partition to this node now.
 */
export interface LocalFanout {
  service: FanoutService;
  isOwner(part: number): boolean;
}

export interface FanoutDriverOptions {
  /** Runs the fan-outs routed to this node without the RPC round trip. Default: every one by RPC. */
  local?: LocalFanout;
  /** Deadline of each Fanout call, retries included. Default 5000 ms. */
  callTimeoutMs?: number;
  /** Sweep period. Default 1000 ms. */
  intervalMs?: number;
  /** Age after which a row of a partition this node holds is driven again. Default 1000 ms. */
  ownAgeMs?: number;
  /** Age after which any row is driven again. Default 2000 ms (within the unit's 5 s push bound). */
  orphanAgeMs?: number;
  /** Rows read per sweep. Default 512. */
  sweepLimit?: number;
  /** Tests only: drive nothing, neither at once nor by sweeping (a node dying before its fan-outs). */
  hold?: boolean;
  log: (level: 'info' | 'warn', message: string) => void;
}

/** Counters of a driver since it was made. */
export interface FanoutStats {
  /** Fan-out calls sent, first or again. */
  driven: number;
  /** Those run in process (routed to this node). */
  local: number;
  /** Those that appended entries (the others found their row gone: done before). */
  appended: number;
  /** Calls that failed (left to the sweep). */
  failed: number;
  /** Calls sent again by the sweep. */
  redriven: number;
}

/** First wait after a failed fan-out; doubles per failure up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 8000;

export class FanoutDriver implements FanoutDispatcher {
  /** Fan-outs queued or running, by key: the sweep leaves them alone. */
  private readonly pending = new Map<string, Promise<void>>();
  /** The last fan-out queued per member partition: the next one to that partition runs after it. */
  private readonly tails = new Map<number, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
  private stopped = false;
  private readonly opts: Required<Omit<FanoutDriverOptions, 'log' | 'local'>>;
  readonly stats: FanoutStats = { driven: 0, local: 0, appended: 0, failed: 0, redriven: 0 };

  constructor(
    private readonly stub: Stub<MessageServiceRpc>,
    private readonly store: FanoutStore,
    private readonly options: FanoutDriverOptions,
  ) {
    this.opts = {
      callTimeoutMs: options.callTimeoutMs ?? 5000,
      intervalMs: options.intervalMs ?? 1000,
      ownAgeMs: options.ownAgeMs ?? 1000,
      orphanAgeMs: options.orphanAgeMs ?? 2000,
      sweepLimit: options.sweepLimit ?? 512,
      hold: options.hold ?? false,
    };
  }

  /**
   * A group message was stored: fan it out, after the fan-outs dispatched before it to the same
   * partition. Resolves once its entries are appended (by anybody), or the driver stops.
   */
  dispatch(job: FanoutJob): Promise<void> {
    if (this.opts.hold) return Promise.resolve();
    return this.enqueue(job);
  }

  /** Starts the sweep. */
  start(): void {
    if (this.opts.hold || this.timer !== null) return;
    this.timer = setInterval(() => void this.sweep(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stops sweeping and retrying; waits for the calls in flight (each ends by its deadline). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    while (this.pending.size > 0) await Promise.allSettled([...this.pending.values()]);
  }

  /** One pass over the rows left behind; resolves when they are queued. */
  async sweep(now = Date.now()): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    try {
      const rows = await this.store.pendingFanouts(now - this.opts.ownAgeMs, this.opts.sweepLimit);
      const held = this.store.heldPartitions();
      for (const row of rows) {
        if (this.pending.has(keyOf(row))) continue;
        if (!held.has(row.sourcePart) && row.createdAt >= now - this.opts.orphanAgeMs) continue;
        this.stats.redriven++;
        void this.enqueue(row);
      }
    } catch (error) {
      this.options.log(
        'warn',
        `fan-out sweep failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      this.sweeping = false;
    }
  }

  private enqueue(job: FanoutJob): Promise<void> {
    const key = keyOf(job);
    const queued = this.pending.get(key);
    if (queued !== undefined) return queued;
    const after = this.tails.get(job.part) ?? Promise.resolve();
    const done = after.then(() => this.runUntilDone(job));
    this.pending.set(key, done);
    this.tails.set(job.part, done);
    void done.finally(() => {
      this.pending.delete(key);
      if (this.tails.get(job.part) === done) this.tails.delete(job.part);
    });
    return done;
  }

  /** Runs the fan-out until it is appended (or found done), pausing longer after each failure. */
  private async runUntilDone(job: FanoutJob): Promise<void> {
    let delayMs = FIRST_BACKOFF_MS;
    while (!this.stopped) {
      const why = await this.runOnce(job);
      if (why === null) return;
      this.stats.failed++;
      this.options.log(
        'warn',
        `fan-out of message ${job.mid} to partition ${job.part} failed (retry in ${delayMs} ms): ${why}`,
      );
      await new Promise((r) => setTimeout(r, delayMs).unref());
      delayMs = Math.min(MAX_BACKOFF_MS, delayMs * 2);
    }
  }

  /** One attempt: in process when routed here, else the Fanout call. Null when done, else why not. */
  private async runOnce(job: FanoutJob): Promise<string | null> {
    this.stats.driven++;
    const local = this.options.local;
    // Routed here: in process (the fence still decides; refused, it goes by RPC after all).
    if (local?.isOwner(job.part) === true) {
      this.stats.local++;
      try {
        const outcome = await local.service.fanout(job);
        if (outcome.ok) return this.succeeded(outcome.appended);
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    }
    return this.call(job);
  }

  private succeeded(appended: number): null {
    if (appended > 0) this.stats.appended++;
    return null;
  }

  /** The Fanout call to the owner of the job's partition. */
  private async call(job: FanoutJob): Promise<string | null> {
    const call: CallOptions = {
      timeoutMs: this.opts.callTimeoutMs,
      idempotent: true,
      affinity: partitionKey(job.part),
    };
    const request = {
      mid: job.mid,
      part: job.part,
      recipients: job.recipients,
      sender: job.sender,
      sender_name: job.senderName,
      target: job.target,
      body: job.body,
      time: job.time,
    };
    try {
      const reply = await this.stub.Fanout(request, call);
      return reply.errno === 0 ? this.succeeded(reply.appended) : reply.errmsg;
    } catch (error) {
      return errorOfCall(error).message;
    }
  }
}

function keyOf(f: { mid: number; part: number }): string {
  return `${f.mid}:${f.part}`;
}
