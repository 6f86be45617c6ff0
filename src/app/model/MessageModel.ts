import { dialectSql } from '../store/dialect.js';
import { StoreError } from '../store/errors.js';
import { setIds, takeIds } from '../store/idCounters.js';
import type { SqlDriver, SqlExecutor, SqlParam } from '../store/SqlDriver.js';
import { paddedChunks, placeholders, rowPlaceholders } from '../store/sqlText.js';
import type { AppendResult, InboxEntry, MessageKind, NewMessage } from './types.js';

/**
 * Most values per IN list / rows per multi-row INSERT: a full group-commit batch (512) takes one
 * statement each. 512 rows of 7 values stay far below both engines' placeholder limits.
 */
const CHUNK = 512;
/** Most bytes of one multi-row INSERT of messages; below every default max_allowed_packet (4 MiB+). */
const MAX_STATEMENT_BYTES = 2 * 1024 * 1024;
/** Runs of an append that hit an unexplained unique key conflict (insertMessages) before giving up. */
const DUPLICATE_RACE_ATTEMPTS = 3;
/** The id_counters row (migration 2) that hands out message ids. */
const MID_COUNTER = 'messages.mid';

/** A unique key conflict that the duplicate lookup did not explain; a re-run (with resync) gets past it. */
class DuplicateRace extends Error {}

/**
 * Exact key of (sender, cmid); the sender's digits cannot contain the separator. A lone surrogate
 * (valid in JSON) is stored as U+FFFD by the UTF-8 drivers, so the key uses that spelling too, or
 * the stored copy would never be recognised as the same cmid.
 */
function dedupeKey(sender: number, cmid: string): string {
  const stored = /[\uD800-\uDFFF]/.test(cmid) ? Buffer.from(cmid, 'utf8').toString('utf8') : cmid;
  return `${sender}\u0000${stored}`;
}

type InboxRow = Omit<InboxEntry, 'kind'> & { kind: string };

type NewPlan = { type: 'new'; msg: NewMessage; recipients: number[]; mid: number };
type Plan =
  | NewPlan
  | { type: 'stored'; mid: number } // stored by an earlier append
  | { type: 'repeat'; of: number }; // repeats an earlier entry of this batch

export class MessageModel {
  constructor(private readonly db: SqlDriver) {}

  /**
   * Stores a batch of messages and their recipients' inbox entries in ONE transaction (group
   * commit) and returns one result per message, in batch order. A repeated (sender, cmid), stored
   * before or earlier in the batch, returns the first mid with duplicate=true and delivers
   * nothing (its body and recipients are ignored). Each recipient's seqs continue its inbox
   * without gaps, in batch order. An unknown recipient id fails the whole batch with NOT_FOUND and
   * stores nothing, so callers resolve recipients against existing users first.
   */
  async append(batch: readonly NewMessage[]): Promise<AppendResult[]> {
    if (batch.length === 0) return [];
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction((tx) => appendIn(tx, batch, attempt > 1));
      } catch (err) {
        if (!(err instanceof DuplicateRace)) throw err;
        if (attempt >= DUPLICATE_RACE_ATTEMPTS) {
          throw new StoreError('UNAVAILABLE', 'message store is contended, retry', { cause: err });
        }
      }
    }
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
    if (!Number.isSafeInteger(seq) || seq <= 0) return; // a fraction would be stored as-is by SQLite
    await this.db.execute(
      'UPDATE inbox_cursors SET acked_seq = CASE WHEN last_seq < ? THEN last_seq ELSE ? END ' +
        'WHERE user_id = ? AND acked_seq < ? AND acked_seq < last_seq',
      [seq, seq, userId, seq],
    );
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

/**
 * The append transaction. Its statement count does not grow with each message: per 512 (CHUNK)
 * recipients one lock and one counter upsert, one statement taking the mids, one multi-row
 * INSERT per 512 messages and per 512 inbox rows; and only when the batch repeats a stored
 * (sender, cmid), one duplicate lookup per 256 of its cmids. A full batch takes 7 statements
 * with BEGIN and COMMIT.
 *
 * Lock order, the same for every append: the recipients' inbox_cursors rows in ascending id order,
 * then the mid counter. Whoever holds the counter already holds every other lock it needs, so
 * concurrent appends (other processes too) queue instead of deadlocking. SQLite: BEGIN IMMEDIATE
 * already holds the whole file.
 */
async function appendIn(
  tx: SqlExecutor,
  batch: readonly NewMessage[],
  resync: boolean,
): Promise<AppendResult[]> {
  // Every listed recipient, duplicates' too: which messages are stored already is known below.
  const listed = new Set<number>();
  for (const m of batch) for (const id of m.recipients) listed.add(id);
  const recipientIds = [...listed].sort((a, b) => a - b);
  const lastSeq = await lockCursors(tx, recipientIds);

  // Repeats within the batch are known now; every other message takes a mid, in batch order.
  // insertMessages finds the ones stored by earlier appends (clients' retries).
  const plans = planBatch(batch);
  let fresh = 0;
  for (const p of plans) if (p.type === 'new') fresh++;
  let mid = (await takeMids(tx, fresh, resync)) - fresh;
  for (const p of plans) if (p.type === 'new') p.mid = ++mid;
  await insertMessages(tx, plans);

  const results: AppendResult[] = [];
  const inboxParams: SqlParam[] = []; // user_id, seq, mid per row
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
    const deliveries: AppendResult['deliveries'] = [];
    for (const userId of plan.recipients) {
      const last = lastSeq.get(userId);
      if (last === undefined) unknown.add(userId);
      const seq = (last ?? 0) + 1;
      lastSeq.set(userId, seq);
      inboxParams.push(userId, seq, plan.mid);
      deliveries.push({ userId, seq });
    }
    results.push({ mid: plan.mid, duplicate: false, deliveries });
  }
  if (unknown.size > 0) {
    throw new StoreError('NOT_FOUND', `no such recipient: ${[...unknown].slice(0, 10).join(', ')}`);
  }

  await insertRows(tx, 'INSERT INTO inbox (user_id, seq, mid)', 3, inboxParams);
  // Each new message's recipients. The rows exist and are locked, so the upsert always takes
  // its update branch, by key lookups.
  const touched = new Set<number>();
  for (const p of plans) if (p.type === 'new') for (const id of p.recipients) touched.add(id);
  const upsert = dialectSql(tx.dialect).onConflictUpdate('user_id', ['last_seq']);
  for (const ids of paddedChunks(
    recipientIds.filter((id) => touched.has(id)),
    CHUNK,
  )) {
    const params: SqlParam[] = [];
    for (const id of ids) params.push(id, lastSeq.get(id) ?? 0);
    await tx.execute(
      `INSERT INTO inbox_cursors (user_id, last_seq) VALUES ${rowPlaceholders(ids.length, 2)}${upsert}`,
      params,
    );
  }
  return results;
}

/** `head VALUES (…), …` for `params` of `cols` values per row: one statement per CHUNK rows. */
async function insertRows(tx: SqlExecutor, head: string, cols: number, params: SqlParam[]): Promise<void> {
  const most = CHUNK * cols;
  for (let start = 0; start < params.length; start += most) {
    const part = params.length <= most ? params : params.slice(start, start + most);
    await tx.execute(`${head} VALUES ${rowPlaceholders(part.length / cols, cols)}`, part);
  }
}

/** Marks repeats of an earlier (sender, cmid) of the batch; the other messages are new so far. */
function planBatch(batch: readonly NewMessage[]): Plan[] {
  const firstInBatch = new Map<string, number>();
  return batch.map((msg, index): Plan => {
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
  for (const chunk of paddedChunks(ids, CHUNK)) {
    const rows = await tx.query<{ userId: number; lastSeq: number }>(
      `SELECT user_id AS userId, last_seq AS lastSeq FROM inbox_cursors WHERE user_id IN (${placeholders(chunk.length)}) ` +
        `ORDER BY user_id${forUpdate}`,
      chunk,
    );
    for (const r of rows) lastSeq.set(r.userId, r.lastSeq);
  }
  return lastSeq;
}

/**
 * Takes `n` mids from the counter (which locks it) and returns the last one. `resync`, set when an
 * earlier run of the append hit a unique key, first moves the counter past MAX(mid): code from
 * before migration 2, still running during a rolling upgrade, takes mids from AUTO_INCREMENT
 * without moving the counter.
 */
async function takeMids(tx: SqlExecutor, n: number, resync: boolean): Promise<number> {
  const last = await takeIds(tx, MID_COUNTER, n);
  if (!resync) return last;
  const [row] = await tx.query<{ maxMid: number | null }>('SELECT MAX(mid) AS maxMid FROM messages');
  const maxMid = Number(row?.maxMid ?? 0);
  if (maxMid <= last - n) return last;
  await setIds(tx, MID_COUNTER, maxMid + n);
  return maxMid + n;
}

/**
 * Inserts the new plans' messages with multi-row INSERTs, optimistically: the unique index on
 * (sender, cmid) finds a retried message for free. Only when a statement hits it are the
 * messages not yet inserted looked up: the stored ones turn into `stored` plans (in place), the
 * rest are renumbered so the mids stay dense, and the counter gives back the ids left over.
 *
 * This runs while the mid counter is held, and every append that stores messages holds it until
 * it commits, so the lookup sees all their cmids. A conflict that the lookup does not explain can
 * only come from code that bypasses the counter (see takeMids): the append is re-run.
 */
async function insertMessages(tx: SqlExecutor, plans: Plan[]): Promise<void> {
  let pending: { plan: NewPlan; index: number }[] = [];
  plans.forEach((plan, index) => {
    if (plan.type === 'new') pending.push({ plan, index });
  });
  let lookedUp = false;
  while (pending.length > 0) {
    const size = fittingSize(pending);
    const params: SqlParam[] = [];
    for (let i = 0; i < size; i++) {
      const { mid, msg: m } = (pending[i] as { plan: NewPlan }).plan;
      params.push(mid, m.sender, m.cmid, m.kind, m.target, m.body, m.time);
    }
    try {
      await tx.execute(
        `INSERT INTO messages (mid, sender, cmid, kind, target, body, sent_at) VALUES ${rowPlaceholders(size, 7)}`,
        params,
      );
      pending = pending.slice(size);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'CONFLICT')) throw err;
      if (lookedUp) throw new DuplicateRace(err.message);
      lookedUp = true;
      const firstMid = pending[0]?.plan.mid ?? 0;
      const stored = await findStored(
        tx,
        pending.map((p) => p.plan.msg),
      );
      pending = pending.filter(({ plan: { msg }, index }) => {
        const mid = msg.cmid === null ? undefined : stored.get(dedupeKey(msg.sender, msg.cmid));
        if (mid !== undefined) plans[index] = { type: 'stored', mid };
        return mid === undefined;
      });
      pending.forEach(({ plan }, i) => {
        plan.mid = firstMid + i;
      });
      await setIds(tx, MID_COUNTER, firstMid + pending.length - 1);
    }
  }
}

/** Rows for the next messages INSERT: at most CHUNK, halved until the statement fits its byte budget. */
function fittingSize(pending: readonly { plan: NewPlan }[]): number {
  let size = Math.min(pending.length, CHUNK);
  for (;;) {
    let bytes = 0;
    for (let i = 0; i < size; i++) {
      const m = (pending[i] as { plan: NewPlan }).plan.msg;
      // A UTF-16 unit is at most 3 bytes of UTF-8.
      bytes += 64 + 3 * (m.body.length + (m.cmid?.length ?? 0) + m.time.length);
    }
    if (bytes <= MAX_STATEMENT_BYTES || size === 1) return size;
    size >>= 1;
  }
}

/** mids of the given (sender, cmid) pairs that are stored, by dedupeKey. */
async function findStored(tx: SqlExecutor, msgs: readonly NewMessage[]): Promise<Map<string, number>> {
  const pairs = new Map<string, [number, string]>();
  for (const m of msgs) if (m.cmid !== null) pairs.set(dedupeKey(m.sender, m.cmid), [m.sender, m.cmid]);
  const stored = new Map<string, number>();
  for (const chunk of paddedChunks([...pairs.values()], CHUNK / 2)) {
    // A row IN list on the unique index's full key: an index range per pair on both engines.
    const rows = await tx.query<{ mid: number; sender: number; cmid: string }>(
      `SELECT mid, sender, cmid FROM messages WHERE (sender, cmid) IN (${rowPlaceholders(chunk.length, 2)})`,
      chunk.flat(),
    );
    for (const r of rows) stored.set(dedupeKey(r.sender, r.cmid), r.mid);
  }
  return stored;
}
