import { StoreError } from '../store/errors.js';
import type { SqlDriver, SqlParam } from '../store/SqlDriver.js';
import { paddedChunks, placeholders } from '../store/sqlText.js';
import { AppendPrediction } from './AppendPrediction.js';
import { type AppendWriter, appendPredicted, appendReading, CHUNK, FanoutDoneError } from './appendBatch.js';
import { insertFanouts, parseRecipients, splitGroups } from './groupFanout.js';
import { MidBlock } from './MidBlock.js';
import { PartitionFence, PartitionMovedError } from './PartitionFence.js';
import type { AppendResult, InboxEntry, MessageKind, NewMessage, PendingFanout } from './types.js';

/** Runs of an append that hit an unexplained unique key conflict (appendReading) before giving up. */
const DUPLICATE_RACE_ATTEMPTS = 3;

export interface AppendOptions {
  /**
   * Called once no later append can be ordered before this one: it holds the locks that order
   * appends (the recipients' cursors and the mid counter). A pipeline may start the next one then.
   */
  onOrdered?: () => void;
}

type InboxRow = Omit<InboxEntry, 'kind'> & { kind: string };

/** How appends share the store with other writers. Default: neither (chat-server, the only writer). */
export interface MessageModelOptions {
  /**
   * Take mids in blocks of this many, outside the appends (MidBlock): appends of several writers
   * no longer queue on the mid counter. Mids then grow per writer only and may skip ids.
   */
  midBlock?: number;
  /**
   * Write only partitions this writer owns, fenced by epoch (PartitionFence), stored under this
   * name: the message-service node that routes by partition (docs/DISTRIBUTED.md). A group
   * message then stores `group_fanout` rows instead of its members' inbox entries (groupFanout.ts).
   */
  partitionOwner?: string;
}

/** Counters of the appends of one MessageModel since it was made (chat-service --stats-interval). */
export interface AppendStats {
  /** Appends committed, and the messages they held. */
  appends: number;
  messages: number;
  /** Transaction runs that wrote without reading (appendPredicted) / read first (appendReading). */
  predictedRuns: number;
  readingRuns: number;
  /** Predicted runs whose guess was wrong (another writer moved a cursor or the counter). */
  missed: number;
  /** Appends refused because another node took one of their partitions. */
  fenced: number;
}

export class MessageModel {
  private readonly prediction = new AppendPrediction();
  readonly stats: AppendStats = {
    appends: 0,
    messages: 0,
    predictedRuns: 0,
    readingRuns: 0,
    missed: 0,
    fenced: 0,
  };
  private readonly mids: MidBlock | null;
  /** The partitions this writer holds (with `partitionOwner`). */
  readonly fence: PartitionFence | null;
  /** Whether the routing sends a partition's messages to this writer (routeLocally). */
  private routedHere: (part: number) => boolean = () => false;

  constructor(
    private readonly db: SqlDriver,
    options: MessageModelOptions = {},
  ) {
    this.mids = options.midBlock === undefined ? null : new MidBlock(db, options.midBlock);
    this.fence = options.partitionOwner === undefined ? null : new PartitionFence(db, options.partitionOwner);
  }

  /**
   * Stores a batch of messages and their recipients' inbox entries in ONE transaction (group
   * commit) and returns one result per message, in batch order. A repeated (sender, cmid), stored
   * before or earlier in the batch, returns the first mid with duplicate=true and delivers
   * nothing, when it names the same message (kind, target and body; `time` may differ); naming
   * another message it is refused: cmidReused=true, mid 0, nothing stored. Each recipient's seqs continue its inbox
   * without gaps, in batch order. An unknown recipient id fails the whole batch with NOT_FOUND and
   * stores nothing, so callers resolve recipients against existing users first.
   *
   * `batch` may be a function: it is called once, inside the transaction, when the append's turn
   * has come, so a pipelined caller hands over everything that arrived until then.
   */
  async append(
    batch: readonly NewMessage[] | (() => readonly NewMessage[]),
    options: AppendOptions = {},
  ): Promise<AppendResult[]> {
    let rows = typeof batch === 'function' ? null : batch;
    if (rows?.length === 0) return [];
    let onOrdered = options.onOrdered;
    const ordered = (): void => {
      const notify = onOrdered;
      onOrdered = undefined;
      notify?.();
    };
    let predicted = false;
    let resync = false;
    for (let readingRuns = 0; ; ) {
      let runs = 0;
      try {
        // A writer sharing the store takes its mids and partitions before its transaction.
        const shared = this.mids !== null || this.fence !== null;
        if (shared) rows ??= (batch as () => readonly NewMessage[])();
        // A partition owner writes only the inboxes it owns: a group message leaves its other
        // members' to their partitions' owners (group_fanout rows). Decided before the fence
        // takes its partitions, which include those of the members it appends itself.
        const split =
          this.fence === null || rows === null ? null : splitGroups(rows, (part) => this.appendsItself(part));
        const prepared = shared && rows!.length > 0 ? await this.prepare(split?.rows ?? rows!, resync) : null;
        const results = await this.db.transaction(async (tx) => {
          rows ??= (batch as () => readonly NewMessage[])();
          if (rows.length === 0) return [];
          // Run again by the driver (a MySQL deadlock): what the first run taught did not happen.
          if (++runs > 1) this.prediction.forget();
          const guard =
            prepared === null || this.fence === null ? null : this.fence.guard(tx, prepared.parts);
          guard?.catch(() => {}); // awaited by the append
          const writer: AppendWriter = { midBase: prepared?.midBase ?? null, guard };
          const own = split?.rows ?? rows;
          predicted = runs === 1 && !resync && readingRuns === 0 && this.prediction.covers(own);
          if (predicted) this.stats.predictedRuns++;
          else this.stats.readingRuns++;
          const results = predicted
            ? await appendPredicted(tx, own, this.prediction, ordered, writer)
            : await appendReading(tx, own, resync, this.prediction, ordered, writer);
          if (split !== null) insertFanouts(tx, rows, split, results, Date.now()).catch(() => {}); // reported by the commit
          return results;
        });
        this.stats.appends++;
        this.stats.messages += rows!.length;
        return results;
      } catch (err) {
        // Another node took a partition: nothing was stored, and running again here would take it back.
        if (err instanceof PartitionMovedError) {
          this.stats.fenced++;
          this.prediction.forget();
          throw err;
        }
        // A fan-out appended before, met by a predicted run: not a wrong guess; reading skips it.
        if (err instanceof FanoutDoneError) {
          this.prediction.forget();
          readingRuns = 1;
          continue;
        }
        if (predicted) {
          this.stats.missed++;
          // A wrong guess, or a failure of an append it was built on: run it again, reading.
          this.prediction.missed();
          readingRuns = 1;
          continue;
        }
        // What the append taught the prediction will not happen.
        this.prediction.forget();
        // A unique key the duplicate lookup did not explain: re-run with resync (see appendReading).
        if (!(err instanceof StoreError && err.code === 'CONFLICT')) throw err;
        if (++readingRuns >= DUPLICATE_RACE_ATTEMPTS) {
          throw new StoreError('UNAVAILABLE', 'message store is contended, retry', { cause: err });
        }
        resync = true;
      }
    }
  }

  /**
   * Tells a partition owner where the routing sends each partition now. A group message's members
   * in partitions routed here get their entries in the message's own transaction (the append
   * takes those partitions if need be, as a one-to-one submit sent here would, and holds their
   * fences); only the others wait for a fan-out. A single node so never fans out.
   */
  routeLocally(routedHere: (part: number) => boolean): void {
    this.routedHere = routedHere;
  }

  private appendsItself(part: number): boolean {
    return this.fence !== null && this.routedHere(part);
  }

  /** The mids (from the block) and the partitions (taken if need be) of an append of `rows`. */
  private async prepare(
    rows: readonly NewMessage[],
    resync: boolean,
  ): Promise<{ midBase: number | null; parts: number[] }> {
    const parts = this.fence?.partitionsOf(rows) ?? [];
    const [midBase] = await Promise.all([
      this.mids === null ? null : this.mids.allocate(rows.length, resync),
      this.fence?.hold(parts),
    ]);
    return { midBase, parts };
  }

  /** Who wrote each inbox partition last and its epoch (PartitionFence; for operators and tests). */
  async partitionOwners(): Promise<Map<number, { owner: string; epoch: number }>> {
    const rows = await this.db.query<{ part: number; owner: string; epoch: number }>(
      'SELECT part, owner, epoch FROM message_partitions ORDER BY part',
    );
    return new Map(rows.map((r) => [Number(r.part), { owner: r.owner, epoch: Number(r.epoch) }]));
  }

  /**
   * Group fan-outs still pending that were stored before `before` (ms since the epoch), oldest
   * first, at most `limit`, with what a fan-out needs of their message (the sender's name too).
   */
  async pendingFanouts(before: number, limit: number): Promise<PendingFanout[]> {
    const rows = await this.db.query<{
      mid: number;
      part: number;
      sourcePart: number;
      recipients: string;
      sender: number;
      senderName: string;
      target: number;
      body: string;
      time: string;
      createdAt: number;
    }>(
      'SELECT f.mid, f.part, f.source_part AS sourcePart, f.created_at AS createdAt, f.recipients, m.sender, u.name AS senderName, ' +
        'm.target, m.body, m.sent_at AS time FROM group_fanout f JOIN messages m ON m.mid = f.mid ' +
        'JOIN users u ON u.id = m.sender WHERE f.created_at < ? ORDER BY f.created_at, f.mid LIMIT ?',
      [before, Math.max(1, Math.floor(limit))],
    );
    return rows.map((r) => ({
      mid: Number(r.mid),
      part: Number(r.part),
      sourcePart: Number(r.sourcePart),
      recipients: parseRecipients(r.recipients),
      sender: Number(r.sender),
      senderName: r.senderName,
      target: Number(r.target),
      body: r.body,
      time: r.time,
      createdAt: Number(r.createdAt),
    }));
  }

  /** Inbox entries with seq > afterSeq, ascending, at most `limit`. */
  async readInbox(userId: number, afterSeq: number, limit: number): Promise<InboxEntry[]> {
    const n = Math.floor(limit);
    if (!(n > 0)) return [];
    const rows = await this.db.query<InboxRow>(
      'SELECT i.seq, i.mid, m.sender, u.name AS senderName, m.kind, m.target, m.body, m.sent_at AS time ' +
        'FROM inbox i JOIN messages m ON m.mid = i.mid JOIN users u ON u.id = m.sender ' +
        'WHERE i.user_id = ? AND i.seq > ? ORDER BY i.seq LIMIT ?',
      [userId, afterSeq, n],
    );
    return rows.map((r) => ({
      seq: r.seq,
      mid: r.mid,
      sender: r.sender,
      senderName: r.senderName,
      kind: toKind(r.kind),
      target: r.target,
      body: r.body,
      time: r.time,
    }));
  }

  /** acked = max(acked, min(seq, lastSeq)): never moves back, never past what was delivered. */
  async ack(userId: number, seq: number): Promise<void> {
    await this.ackMany(new Map([[userId, seq]]));
  }

  /**
   * `ack` for many users (userId → seq) in one statement per CHUNK users: acks are coalesced
   * across sessions, and a lone UPDATE per user would be a commit (an fsync) per user.
   */
  async ackMany(acks: ReadonlyMap<number, number>): Promise<void> {
    const rows: [number, number][] = [];
    // A fraction would be stored as-is by SQLite; zero and negatives move nothing.
    for (const [userId, seq] of acks) if (Number.isSafeInteger(seq) && seq > 0) rows.push([userId, seq]);
    for (const chunk of paddedChunks(rows, CHUNK)) {
      const params: SqlParam[] = [];
      for (const [userId, seq] of chunk) params.push(userId, seq, seq, seq);
      for (const [userId] of chunk) params.push(userId);
      await this.db.execute(
        `UPDATE inbox_cursors SET acked_seq = CASE user_id${' WHEN ? THEN CASE WHEN ? <= acked_seq THEN acked_seq WHEN ? > last_seq THEN last_seq ELSE ? END'.repeat(chunk.length)} END ` +
          `WHERE user_id IN (${placeholders(chunk.length)})`,
        params,
      );
    }
  }

  /** The user's highest inbox seq and highest acknowledged seq. Unknown user → NOT_FOUND. */
  async cursor(userId: number): Promise<{ lastSeq: number; ackedSeq: number }> {
    const [row] = await this.db.query<{ lastSeq: number; ackedSeq: number }>(
      'SELECT last_seq AS lastSeq, acked_seq AS ackedSeq FROM inbox_cursors WHERE user_id = ?',
      [userId],
    );
    if (!row) throw new StoreError('NOT_FOUND', 'no such user');
    return { lastSeq: row.lastSeq, ackedSeq: row.ackedSeq };
  }
}

function toKind(kind: string): MessageKind {
  return kind === 'group' ? 'group' : 'one';
}
