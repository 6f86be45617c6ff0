/**
 * Drives a message node's group fan-outs (docs/DISTRIBUTED.md, "Group messages"): once a group
 * message is stored with its `group_fanout` rows and acknowledged, each row is sent as a
 * `Fanout` call to the owner of its member partition, routed like a Submit (affinity = the
 * partition), which appends the members' inboxes and deletes the row. A row left behind (this
 * node failed the call, or the node that stored it died before driving it) is found by the
 * periodic sweep: rows of the partitions this node holds after `ownAgeMs`, anybody's after
 * `orphanAgeMs` (their node may be dead, and nobody takes its partition until a submit comes).
 * A repeat is harmless: the row makes each fan-out happen once.
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
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Failed fan-outs: not driven again before `until`. */
  private readonly backoff = new Map<string, { until: number; delayMs: number }>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping = false;
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

  /** A group message was stored: fan it out now (in the order dispatched, so inboxes keep send order). */
  dispatch(job: FanoutJob): void {
    if (this.opts.hold) return;
    this.drive(job);
  }

  /** Starts the sweep. */
  start(): void {
    if (this.opts.hold || this.timer !== null) return;
    this.timer = setInterval(() => void this.sweep(), this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stops sweeping and waits for the fan-outs in flight (each ends by its deadline). */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  /** One pass over the rows left behind; resolves when their calls are sent. */
  async sweep(now = Date.now()): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      // Pauses long over are forgotten (their rows may have been fanned out by another node).
      for (const [key, b] of this.backoff) if (b.until < now - MAX_BACKOFF_MS) this.backoff.delete(key);
      const rows = await this.store.pendingFanouts(now - this.opts.ownAgeMs, this.opts.sweepLimit);
      const held = this.store.heldPartitions();
      for (const row of rows) {
        const key = keyOf(row);
        if (this.inFlight.has(key)) continue;
        if ((this.backoff.get(key)?.until ?? 0) > now) continue;
        if (!held.has(row.sourcePart) && row.createdAt >= now - this.opts.orphanAgeMs) continue;
        this.stats.redriven++;
        this.drive(row);
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

  private drive(job: FanoutJob): void {
    const key = keyOf(job);
    if (this.inFlight.has(key)) return;
    this.stats.driven++;
    const local = this.options.local;
    // Routed here: in process (the fence still decides; refused, it goes by RPC after all).
    const inProcess = local?.isOwner(job.part) === true;
    if (inProcess) this.stats.local++;
    const done =
      inProcess && local !== undefined
        ? local.service
            .fanout(job)
            .then((outcome) => (outcome.ok ? this.succeeded(key, outcome.appended) : this.call(key, job)))
        : this.call(key, job);
    this.inFlight.set(key, done);
    void done.finally(() => this.inFlight.delete(key));
  }

  private succeeded(key: string, appended: number): void {
    this.backoff.delete(key);
    if (appended > 0) this.stats.appended++;
  }

  /** The Fanout call to the owner of the job's partition. */
  private call(key: string, job: FanoutJob): Promise<void> {
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
    return this.stub.Fanout(request, call).then(
      (reply) => {
        if (reply.errno === 0) this.succeeded(key, reply.appended);
        else this.failed(key, job, reply.errmsg);
      },
      (error: unknown) => this.failed(key, job, errorOfCall(error).message),
    );
  }

  /** Left to the sweep, after a growing pause. */
  private failed(key: string, job: FanoutJob, why: string): void {
    this.stats.failed++;
    const delayMs = Math.min(MAX_BACKOFF_MS, (this.backoff.get(key)?.delayMs ?? FIRST_BACKOFF_MS / 2) * 2);
    this.backoff.set(key, { until: Date.now() + delayMs, delayMs });
    this.options.log(
      'warn',
      `fan-out of message ${job.mid} to partition ${job.part} failed (retry in ${delayMs} ms): ${why}`,
    );
  }
}

function keyOf(f: { mid: number; part: number }): string {
  return `${f.mid}:${f.part}`;
}
