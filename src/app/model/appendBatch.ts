/**
 * The append transaction of MessageModel (group commit): a batch of messages, their recipients'
 * inbox rows and cursors, in one transaction whose statement count does not grow with each
 * message. Two ways to run it:
 *
 * - `appendReading`: one round trip takes the locks, the mids and the stored duplicates, then
 *   every write is sent at once without waiting (the driver commits only if all succeed).
 * - `appendPredicted`: when this process already knows what the store holds (AppendPrediction),
 *   everything is sent at once, each cursor and the mid counter guarded by its expected value.
 *   A wrong guess dooms the transaction; the caller runs it again reading.
 *
 * Lock order, the same for every append: the partitions' rows of a fenced writer (shared,
 * `guard`, see PartitionFence), the recipients' inbox_cursors rows in ascending id order, then the
 * mid counter. Whoever holds the counter already holds every other lock it needs, so concurrent
 * appends (other processes too) queue instead of deadlocking, and one that holds them is ordered
 * before every later one (`ordered`). A writer with its own block of mids (`midBase`, MidBlock)
 * takes no counter lock: its appends are ordered by the cursors they share, which is all the
 * inbox order needs. SQLite: BEGIN IMMEDIATE holds the whole file.
 */
import { dialectSql } from '../store/dialect.js';
import { StoreError } from '../store/errors.js';
import { setIds, takeIds } from '../store/idCounters.js';
import type { ExecResult, SqlExecutor, SqlParam } from '../store/SqlDriver.js';
import { paddedChunks, placeholders, rowPlaceholders } from '../store/sqlText.js';
import type { AppendPrediction } from './AppendPrediction.js';
import type { AppendResult, NewMessage } from './types.js';

/**
 * Most values per IN list / rows per multi-row INSERT: a full group-commit batch (512) takes one
 * statement each. 512 rows of 7 values stay far below both engines' placeholder limits.
 */
export const CHUNK = 512;
/** Most bytes of one multi-row INSERT of messages; below every default max_allowed_packet (4 MiB+). */
const MAX_STATEMENT_BYTES = 2 * 1024 * 1024;
/** The id_counters row (migration 2) that hands out message ids. */
const MID_COUNTER = 'messages.mid';

/** What a writer sharing the store with other writers adds to an append (MessageModelOptions). */
export interface AppendWriter {
  /**
   * The mids of this append come from the writer's block (MidBlock.allocate) instead of the
   * counter: ids midBase + 1 … midBase + batch length are this append's; null: the counter.
   */
  midBase: number | null;
  /** The partition guard, sent first in the transaction (PartitionFence.guard); rejects if fenced. */
  guard: Promise<void> | null;
}

/**
 * A repeat of a (sender, cmid) must name the same message as its first use: the stored one when
 * there is one (`stored`, read by appendReading), else the batch's first. Otherwise it is refused.
 * The first uses themselves were checked against `stored` already.
 */
function checkRepeats(
  plans: Plan[],
  batch: readonly NewMessage[],
  stored: ReadonlyMap<string, StoredMessage>,
): void {
  plans.forEach((plan, index) => {
    const msg = batch[index]!;
    if (plan.type !== 'repeat' || msg.fanout !== undefined) return;
    const found = stored.get(dedupeKey(msg.sender, msg.cmid!));
    if (found !== undefined) {
      plans[index] = sameMessage(msg, found) ? { type: 'stored', mid: found.mid } : { type: 'reused' };
      return;
    }
    const first = batch[plan.of]!;
    const same = sameMessage(msg, { kind: first.kind, target: first.target, body: storedForm(first.body) });
    if (!same) plans[index] = { type: 'reused' };
  });
}

/**
 * Exact key of (sender, cmid); the sender's digits cannot contain the separator. A lone surrogate
 * (valid in JSON) is stored as U+FFFD by the UTF-8 drivers, so the key uses that spelling too, or
 * the stored copy would never be recognised as the same cmid.
 */
function dedupeKey(sender: number, cmid: string): string {
  return `${sender}\u0000${storedForm(cmid)}`;
}

type NewPlan = { type: 'new'; msg: NewMessage; recipients: number[]; mid: number };
/** A group message stored before, fanned out to one partition's members (NewMessage.fanout). */
type FanoutPlan = { type: 'fanout'; msg: NewMessage; recipients: number[]; mid: number; part: number };
type Plan =
  | NewPlan
  | FanoutPlan
  | { type: 'stored'; mid: number } // stored by an earlier append
  | { type: 'repeat'; of: number } // repeats an earlier entry of this batch
  | { type: 'reused' }; // its (sender, cmid) names a different message (kind, target or body)

const kNothingStored: ReadonlyMap<string, StoredMessage> = new Map();

/** What a (sender, cmid) already stored names: a retry must name the same message. */
interface StoredMessage {
  mid: number;
  kind: string;
  target: number;
  body: string;
}

/** Text as the UTF-8 drivers store it (a lone surrogate becomes U+FFFD), for comparisons. */
function storedForm(text: string): string {
  return /[\uD800-\uDFFF]/.test(text) ? Buffer.from(text, 'utf8').toString('utf8') : text;
}

/** Whether `msg` is a true retry of `stored`: same kind, recipient and text (its `time` may differ). */
function sameMessage(msg: NewMessage, stored: Omit<StoredMessage, 'mid'>): boolean {
  return msg.kind === stored.kind && msg.target === stored.target && storedForm(msg.body) === stored.body;
}

/**
 * Reads before writing: the locks, the mids and the stored duplicates in one round trip. The
 * duplicate lookup runs after the counter is taken, and every append that stores messages holds
 * the counter until it commits, so it sees all their cmids. A unique key conflict all the same can
 * only come from code that bypasses the counter (see takeMids): the transaction fails CONFLICT and
 * the caller runs it again with `resync` (a later append may then go first; only code from before
 * migration 2, still running, can cause that).
 */
export async function appendReading(
  tx: SqlExecutor,
  batch: readonly NewMessage[],
  resync: boolean,
  prediction: AppendPrediction,
  ordered: () => void,
  writer: AppendWriter,
): Promise<AppendResult[]> {
  const recipientIds = recipientsOf(batch);
  // Repeats within the batch are known now; every other message is a candidate for a mid.
  const plans = planBatch(batch);
  const candidates: NewMessage[] = [];
  for (const p of plans) if (p.type === 'new') candidates.push(p.msg);
  // Sent together; one connection runs them in this order, which is the lock order.
  const [, lastSeq, lastMid, stored, pending] = await Promise.all([
    writer.guard,
    lockCursors(tx, recipientIds),
    writer.midBase === null ? takeMids(tx, candidates.length, resync) : 0,
    findStored(tx, candidates),
    lockFanouts(tx, fanoutsOf(plans)),
  ]);
  // A fan-out whose row is gone was appended before: nothing to do (exactly once).
  plans.forEach((plan, index) => {
    if (plan.type === 'fanout' && !pending.has(fanoutKey(plan)))
      plans[index] = { type: 'stored', mid: plan.mid };
  });
  plans.forEach((plan, index) => {
    if (plan.type !== 'new') return;
    const found = plan.msg.cmid === null ? undefined : stored.get(dedupeKey(plan.msg.sender, plan.msg.cmid));
    if (found === undefined) return;
    if (sameMessage(plan.msg, found)) plans[index] = { type: 'stored', mid: found.mid };
    else plans[index] = { type: 'reused' };
  });
  // Mids in batch order, for the messages found new only.
  let mid = writer.midBase ?? lastMid - candidates.length;
  for (const plan of plans) if (plan.type === 'new') plan.mid = ++mid;
  checkRepeats(plans, batch, stored);
  const delivery = deliver(plans, lastSeq);
  prediction.learn(delivery.lastSeq, mid, lastSeq);
  ordered();

  // Not awaited: the transaction commits only if every one of them succeeds.
  const writes: Promise<unknown>[] = [];
  // Mids stay dense: the ids of messages found stored go back to the counter.
  if (writer.midBase === null && mid < lastMid) writes.push(setIds(tx, MID_COUNTER, mid));
  writes.push(insertMessages(tx, plans));
  writes.push(insertInboxRows(tx, delivery.inboxParams));
  writes.push(deleteFanouts(tx, fanoutsOf(plans)));
  // The cursor rows exist and are locked, so the upsert always takes its update branch.
  const upsert = dialectSql(tx.dialect).onConflictUpdate('user_id', ['last_seq']);
  for (const ids of paddedChunks(movedCursors(recipientIds, delivery), CHUNK)) {
    const params: SqlParam[] = [];
    for (const id of ids) params.push(id, delivery.lastSeq.get(id)!);
    writes.push(
      tx.execute(
        `INSERT INTO inbox_cursors (user_id, last_seq) VALUES ${rowPlaceholders(ids.length, 2)}${upsert}`,
        params,
      ),
    );
  }
  for (const write of writes) write.catch(() => {}); // reported by the commit
  return delivery.results;
}

/**
 * Writes without reading: `prediction` covers every recipient and the mid counter (or the writer
 * has its own mids). Each cursor and the counter move only from the value expected (else they are
 * set to NULL, which their NOT NULL columns refuse: the statement fails and dooms the
 * transaction), so a wrong guess never stores anything. Messages are assumed new; a stored
 * (sender, cmid) fails its unique key the same way. `ordered` once the guarded cursors and counter
 * are held. Resolves when the partition guard, if any, has passed.
 */
export async function appendPredicted(
  tx: SqlExecutor,
  batch: readonly NewMessage[],
  prediction: AppendPrediction,
  ordered: () => void,
  writer: AppendWriter,
): Promise<AppendResult[]> {
  const recipientIds = recipientsOf(batch);
  const plans = planBatch(batch);
  // Nothing read: a stored (sender, cmid) fails its unique key below and the append runs again, reading.
  checkRepeats(plans, batch, kNothingStored);
  const firstMid = writer.midBase ?? prediction.lastMid!;
  let mid = firstMid;
  for (const p of plans) if (p.type === 'new') p.mid = ++mid;
  const delivery = deliver(plans, prediction.lastSeq);
  const locks: Promise<unknown>[] = writer.guard === null ? [] : [writer.guard];
  for (const ids of paddedChunks(movedCursors(recipientIds, delivery), CHUNK)) {
    const params: SqlParam[] = [];
    for (const id of ids) params.push(id, prediction.lastSeq.get(id)!, delivery.lastSeq.get(id)!);
    params.push(...ids);
    locks.push(
      tx.execute(
        `UPDATE inbox_cursors SET last_seq = CASE user_id${' WHEN ? THEN CASE WHEN last_seq = ? THEN ? END'.repeat(ids.length)} END ` +
          `WHERE user_id IN (${placeholders(ids.length)})`,
        params,
      ),
    );
  }
  if (writer.midBase === null && mid > firstMid) {
    locks.push(
      tx.execute('UPDATE id_counters SET last_id = CASE WHEN last_id = ? THEN ? END WHERE name = ?', [
        firstMid,
        mid,
        MID_COUNTER,
      ]),
    );
  }
  prediction.learn(delivery.lastSeq, mid);
  Promise.all(locks).then(ordered, () => {});
  // Fan-outs are assumed pending: one whose row is gone (done before) is found by the count.
  const fanouts = fanoutsOf(plans);
  const deleted = deleteFanouts(tx, fanouts);
  const writes = [...locks, insertMessages(tx, plans), insertInboxRows(tx, delivery.inboxParams), deleted];
  for (const write of writes) write.catch(() => {}); // reported by the commit
  // A fenced append must not commit: its failure rolls everything above back.
  await writer.guard;
  if (fanouts.length > 0 && (await deleted) !== fanouts.length) throw new FanoutDoneError();
  return delivery.results;
}

/**
 * A predicted append met a fan-out that was appended before (its row is gone): it must not
 * commit, and runs again reading, which delivers nothing for that fan-out. Not a wrong guess.
 */
export class FanoutDoneError extends StoreError {
  constructor() {
    super('CONFLICT', 'a group fan-out in the batch was appended before');
  }
}

/** The fan-outs of a batch, (mid, part) each. */
function fanoutsOf(plans: readonly Plan[]): FanoutPlan[] {
  const out: FanoutPlan[] = [];
  for (const p of plans) if (p.type === 'fanout') out.push(p);
  return out;
}

function fanoutKey(f: { mid: number; part: number }): string {
  return `${f.mid}:${f.part}`;
}

/** Locks the fan-outs' rows (after the cursors: the lock order) and returns the keys still pending. */
async function lockFanouts(tx: SqlExecutor, fanouts: readonly FanoutPlan[]): Promise<Set<string>> {
  const pending = new Set<string>();
  if (fanouts.length === 0) return pending;
  const forUpdate = dialectSql(tx.dialect).forUpdate;
  const chunks = await Promise.all(
    paddedChunks(fanouts, CHUNK).map((chunk) =>
      tx.query<{ mid: number; part: number }>(
        `SELECT mid, part FROM group_fanout WHERE (mid, part) IN (${rowPlaceholders(chunk.length, 2)})${forUpdate}`,
        chunk.flatMap((f) => [f.mid, f.part]),
      ),
    ),
  );
  for (const rows of chunks)
    for (const r of rows) pending.add(fanoutKey({ mid: Number(r.mid), part: Number(r.part) }));
  return pending;
}

/** Deletes the fan-outs' rows; resolves with how many there were. */
async function deleteFanouts(tx: SqlExecutor, fanouts: readonly FanoutPlan[]): Promise<number> {
  if (fanouts.length === 0) return 0;
  const done = await Promise.all(
    paddedChunks(fanouts, CHUNK).map((chunk) =>
      tx.execute(
        `DELETE FROM group_fanout WHERE (mid, part) IN (${rowPlaceholders(chunk.length, 2)})`,
        chunk.flatMap((f) => [f.mid, f.part]),
      ),
    ),
  );
  return done.reduce((sum, r) => sum + r.affectedRows, 0);
}

/** Every listed recipient in ascending order (the lock order), duplicates' too. */
function recipientsOf(batch: readonly NewMessage[]): number[] {
  const listed = new Set<number>();
  for (const m of batch) for (const id of m.recipients) listed.add(id);
  return [...listed].sort((a, b) => a - b);
}

/** The recipients, in lock order, whose cursor the batch moves. */
function movedCursors(recipientIds: readonly number[], delivery: Delivery): number[] {
  return recipientIds.filter((id) => delivery.lastSeq.has(id));
}

function insertInboxRows(tx: SqlExecutor, inboxParams: SqlParam[]): Promise<void> {
  return insertRows(tx, 'INSERT INTO inbox (user_id, seq, mid)', 3, inboxParams);
}

interface Delivery {
  results: AppendResult[];
  /** user_id, seq, mid per inbox row. */
  inboxParams: SqlParam[];
  /** The new last_seq of every recipient that gets a message. */
  lastSeq: Map<number, number>;
}

/** Each new message's inbox entries, continuing `lastSeq`. An unknown recipient → NOT_FOUND. */
function deliver(plans: readonly Plan[], lastSeq: ReadonlyMap<number, number>): Delivery {
  const results: AppendResult[] = [];
  const inboxParams: SqlParam[] = [];
  const next = new Map<number, number>();
  const unknown = new Set<number>();
  for (const plan of plans) {
    if (plan.type === 'stored') {
      results.push({ mid: plan.mid, duplicate: true, deliveries: [] });
      continue;
    }
    if (plan.type === 'repeat') {
      results.push({ mid: results[plan.of]?.mid ?? 0, duplicate: true, deliveries: [] });
      continue;
    }
    if (plan.type === 'reused') {
      results.push({ mid: 0, duplicate: true, cmidReused: true, deliveries: [] });
      continue;
    }
    const deliveries: AppendResult['deliveries'] = [];
    // 'new' or 'fanout': both append the listed recipients' inbox entries.
    for (const userId of plan.recipients) {
      const last = next.get(userId) ?? lastSeq.get(userId);
      if (last === undefined) unknown.add(userId);
      const seq = (last ?? 0) + 1;
      next.set(userId, seq);
      inboxParams.push(userId, seq, plan.mid);
      deliveries.push({ userId, seq });
    }
    results.push({ mid: plan.mid, duplicate: false, deliveries });
  }
  if (unknown.size > 0) {
    throw new StoreError('NOT_FOUND', `no such recipient: ${[...unknown].slice(0, 10).join(', ')}`);
  }
  return { results, inboxParams, lastSeq: next };
}

/** The new plans' messages, multi-row INSERTs sent at once. */
function insertMessages(tx: SqlExecutor, plans: readonly Plan[]): Promise<unknown> {
  const fresh: NewPlan[] = [];
  for (const plan of plans) if (plan.type === 'new') fresh.push(plan);
  const sent: Promise<ExecResult>[] = [];
  for (let start = 0; start < fresh.length; ) {
    const size = fittingSize(fresh, start);
    const params: SqlParam[] = [];
    for (let i = start; i < start + size; i++) {
      const { mid, msg: m } = fresh[i]!;
      params.push(mid, m.sender, m.cmid, m.kind, m.target, m.body, m.time);
    }
    sent.push(tx.execute(`${INSERT_MESSAGES} VALUES ${rowPlaceholders(size, 7)}`, params));
    start += size;
  }
  return Promise.all(sent);
}

/** `head VALUES (…), …` for `params` of `cols` values per row: one statement per CHUNK rows. */
async function insertRows(tx: SqlExecutor, head: string, cols: number, params: SqlParam[]): Promise<void> {
  const most = CHUNK * cols;
  const sent: Promise<ExecResult>[] = [];
  for (let start = 0; start < params.length; start += most) {
    const part = params.length <= most ? params : params.slice(start, start + most);
    sent.push(tx.execute(`${head} VALUES ${rowPlaceholders(part.length / cols, cols)}`, part));
  }
  await Promise.all(sent);
}

/** Marks repeats of an earlier (sender, cmid) of the batch; the other messages are new so far. */
function planBatch(batch: readonly NewMessage[]): Plan[] {
  const firstInBatch = new Map<string, number>();
  return batch.map((msg, index): Plan => {
    if (msg.fanout !== undefined) {
      // Stored already: its row in group_fanout, not its cmid, says whether it is done. The same
      // fan-out twice in a batch (driven again meanwhile) is appended once.
      const key = `fanout\u0000${fanoutKey(msg.fanout)}`;
      const of = firstInBatch.get(key);
      if (of !== undefined) return { type: 'repeat', of };
      firstInBatch.set(key, index);
      const recipients = [...new Set(msg.recipients)];
      return { type: 'fanout', msg, recipients, mid: msg.fanout.mid, part: msg.fanout.part };
    }
    if (msg.cmid !== null) {
      const key = dedupeKey(msg.sender, msg.cmid);
      const of = firstInBatch.get(key);
      if (of !== undefined) return { type: 'repeat', of };
      firstInBatch.set(key, index);
    }
    // A recipient listed twice still gets the message once.
    const recipients = msg.recipients.length > 1 ? [...new Set(msg.recipients)] : msg.recipients;
    return { type: 'new', msg, recipients, mid: 0 };
  });
}

/** Locks the counters (ascending ids) and returns the last_seq of each one that exists. */
async function lockCursors(tx: SqlExecutor, ids: readonly number[]): Promise<Map<number, number>> {
  const forUpdate = dialectSql(tx.dialect).forUpdate;
  const lastSeq = new Map<number, number>();
  // All sent at once, before anything the caller sends next: the lock order stays ascending.
  const chunks = await Promise.all(
    paddedChunks(ids, CHUNK).map((chunk) =>
      tx.query<{ userId: number; lastSeq: number }>(
        `SELECT user_id AS userId, last_seq AS lastSeq FROM inbox_cursors WHERE user_id IN (${placeholders(chunk.length)}) ` +
          `ORDER BY user_id${forUpdate}`,
        chunk,
      ),
    ),
  );
  for (const rows of chunks) for (const r of rows) lastSeq.set(r.userId, r.lastSeq);
  return lastSeq;
}

/**
 * Takes `n` mids from the counter (which locks it) and returns the last one. `resync`, set when an
 * earlier run of the append hit a unique key, first moves the counter past MAX(mid): code from
 * before migration 2, still running during a rolling upgrade, takes mids from AUTO_INCREMENT
 * without moving the counter.
 */
export async function takeMids(tx: SqlExecutor, n: number, resync: boolean): Promise<number> {
  const last = await takeIds(tx, MID_COUNTER, n);
  if (!resync) return last;
  const [row] = await tx.query<{ maxMid: number | null }>('SELECT MAX(mid) AS maxMid FROM messages');
  const maxMid = Number(row?.maxMid ?? 0);
  if (maxMid <= last - n) return last;
  await setIds(tx, MID_COUNTER, maxMid + n);
  return maxMid + n;
}

const INSERT_MESSAGES = 'INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at)';

/** Rows for the next messages INSERT from `start`: at most CHUNK, halved until the statement fits its byte budget. */
function fittingSize(plans: readonly NewPlan[], start: number): number {
  let size = Math.min(plans.length - start, CHUNK);
  for (;;) {
    let bytes = 0;
    for (let i = start; i < start + size; i++) {
      const m = (plans[i] as NewPlan).msg;
      // A UTF-16 unit is at most 3 bytes of UTF-8.
      bytes += 64 + 3 * (m.body.length + (m.cmid?.length ?? 0) + m.time.length);
    }
    if (bytes <= MAX_STATEMENT_BYTES || size === 1) return size;
    size >>= 1;
  }
}

/** The stored messages of the given (sender, cmid) pairs, by dedupeKey. */
async function findStored(tx: SqlExecutor, msgs: readonly NewMessage[]): Promise<Map<string, StoredMessage>> {
  const pairs = new Map<string, [number, string]>();
  for (const m of msgs) if (m.cmid !== null) pairs.set(dedupeKey(m.sender, m.cmid), [m.sender, m.cmid]);
  const stored = new Map<string, StoredMessage>();
  const found = await Promise.all(
    paddedChunks([...pairs.values()], CHUNK / 2).map((chunk) =>
      // A row IN list on the unique index's full key: an index range per pair on both engines.
      tx.query<{ mid: number; sender: number; cmid: string; kind: string; target: number; body: string }>(
        // `cmid IS NOT NULL` lets SQLite use its partial unique index (migration 3).
        `SELECT mid, sender, cmid, kind, target, body FROM messages WHERE cmid IS NOT NULL AND (sender, cmid) IN (${rowPlaceholders(chunk.length, 2)})`,
        chunk.flat(),
      ),
    ),
  );
  for (const rows of found) {
    for (const r of rows) {
      stored.set(dedupeKey(r.sender, r.cmid), {
        mid: Number(r.mid),
        kind: r.kind,
        target: Number(r.target),
        body: r.body,
      });
    }
  }
  return stored;
}
