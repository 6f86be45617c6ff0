import { dialectSql } from '../store/dialect.js';
import { StoreError } from '../store/errors.js';
import type { SqlDriver, SqlExecutor, SqlParam } from '../store/SqlDriver.js';
import { placeholders, pow2Chunks, rowPlaceholders } from '../store/sqlText.js';
import type { AppendResult, InboxEntry, MessageKind, NewMessage } from './types.js';

/** Most values per IN list / rows per multi-row INSERT; far below both engines' placeholder limits. */
const CHUNK = 256;
/** Runs of an append that lost a (sender, cmid) race to another process before it is given up. */
const DUPLICATE_RACE_ATTEMPTS = 3;

/** Another writer committed the same (sender, cmid) after our duplicate check; a re-run will see it. */
class DuplicateRace extends Error {}

/** Exact key of (sender, cmid): the sender's digits cannot contain the separator. */
function dedupeKey(sender: number, cmid: string): string {
  return `${sender}\u0000${cmid}`;
}

type InboxRow = Omit<InboxEntry, 'kind'> & { kind: string };

type Plan =
  | { type: 'new'; msg: NewMessage; recipients: number[] }
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
        return await this.db.transaction((tx) => appendIn(tx, batch));
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
 * The append transaction. Statements per batch: one duplicate lookup per 128 cmids, one lock per
 * 256 recipients, one INSERT per new message (each needs its own auto-increment mid, which
 * multi-row inserts do not report portably), one INSERT per 256 inbox rows, one counter upsert
 * per 256 recipients.
 */
async function appendIn(tx: SqlExecutor, batch: readonly NewMessage[]): Promise<AppendResult[]> {
  const stored = await findStored(tx, batch);
  const plans = planBatch(batch, stored);

  // Lock every recipient's counter in ascending id order: concurrent appends (other processes
  // too) queue on their common recipients instead of deadlocking. SQLite: BEGIN IMMEDIATE did it.
  const recipientIds = [...new Set(plans.flatMap((p) => (p.type === 'new' ? p.recipients : [])))].sort(
    (a, b) => a - b,
  );
  const lastSeq = await lockCursors(tx, recipientIds);

  const results: AppendResult[] = [];
  const inboxRows: SqlParam[][] = [];
  for (const plan of plans) {
    if (plan.type === 'stored') {
      results.push({ mid: plan.mid, duplicate: true, deliveries: [] });
      continue;
    }
    if (plan.type === 'repeat') {
      results.push({ mid: results[plan.of]?.mid ?? 0, duplicate: true, deliveries: [] });
      continue;
    }
    const mid = await insertMessage(tx, plan.msg);
    const deliveries = plan.recipients.map((userId) => {
      const seq = (lastSeq.get(userId) ?? 0) + 1;
      lastSeq.set(userId, seq);
      inboxRows.push([userId, seq, mid]);
      return { userId, seq };
    });
    results.push({ mid, duplicate: false, deliveries });
  }

  for (const rows of pow2Chunks(inboxRows, CHUNK)) {
    await tx.execute(
      `INSERT INTO inbox (user_id, seq, mid) VALUES ${rowPlaceholders(rows.length, 3)}`,
      rows.flat(),
    );
  }
  const d = dialectSql(tx.dialect);
  for (const ids of pow2Chunks(recipientIds, CHUNK)) {
    // The rows exist and are locked, so this always takes the update branch, by key lookups.
    await tx.execute(
      `INSERT INTO inbox_cursors (user_id, last_seq) VALUES ${rowPlaceholders(ids.length, 2)}` +
        d.onConflictUpdate('user_id', ['last_seq']),
      ids.flatMap((id) => [id, lastSeq.get(id) ?? 0]),
    );
  }
  return results;
}

/** mids of the batch's (sender, cmid) pairs that are already stored, by dedupeKey. */
async function findStored(tx: SqlExecutor, batch: readonly NewMessage[]): Promise<Map<string, number>> {
  const pairs = new Map<string, [number, string]>();
  for (const m of batch) if (m.cmid !== null) pairs.set(dedupeKey(m.sender, m.cmid), [m.sender, m.cmid]);
  const stored = new Map<string, number>();
  for (const chunk of pow2Chunks([...pairs.values()], CHUNK / 2)) {
    // OR of equalities on the unique index's full key: an index range per pair on both engines.
    const rows = await tx.query<{ mid: number; sender: number; cmid: string }>(
      `SELECT mid, sender, cmid FROM messages WHERE ${new Array<string>(chunk.length).fill('(sender = ? AND cmid = ?)').join(' OR ')}`,
      chunk.flat(),
    );
    for (const r of rows) stored.set(dedupeKey(r.sender, r.cmid), r.mid);
  }
  return stored;
}

function planBatch(batch: readonly NewMessage[], stored: Map<string, number>): Plan[] {
  const firstInBatch = new Map<string, number>();
  return batch.map((msg, index): Plan => {
    if (msg.cmid !== null) {
      const key = dedupeKey(msg.sender, msg.cmid);
      const mid = stored.get(key);
      if (mid !== undefined) return { type: 'stored', mid };
      const of = firstInBatch.get(key);
      if (of !== undefined) return { type: 'repeat', of };
      firstInBatch.set(key, index);
    }
    // A recipient listed twice still gets the message once.
    return { type: 'new', msg, recipients: [...new Set(msg.recipients)] };
  });
}

/** Locks the counters (ascending ids) and returns each user's current last_seq. */
async function lockCursors(tx: SqlExecutor, ids: readonly number[]): Promise<Map<number, number>> {
  const forUpdate = dialectSql(tx.dialect).forUpdate;
  const lastSeq = new Map<number, number>();
  for (const chunk of pow2Chunks(ids, CHUNK)) {
    const rows = await tx.query<{ userId: number; lastSeq: number }>(
      `SELECT user_id AS userId, last_seq AS lastSeq FROM inbox_cursors WHERE user_id IN (${placeholders(chunk.length)}) ` +
        `ORDER BY user_id${forUpdate}`,
      chunk,
    );
    for (const r of rows) lastSeq.set(r.userId, r.lastSeq);
  }
  if (lastSeq.size !== ids.length) {
    const missing = ids.filter((id) => !lastSeq.has(id));
    throw new StoreError('NOT_FOUND', `no such recipient: ${missing.slice(0, 10).join(', ')}`);
  }
  return lastSeq;
}

async function insertMessage(tx: SqlExecutor, m: NewMessage): Promise<number> {
  try {
    const { insertId } = await tx.execute(
      'INSERT INTO messages (sender, cmid, kind, target, body, sent_at) VALUES (?, ?, ?, ?, ?, ?)',
      [m.sender, m.cmid, m.kind, m.target, m.body, m.time],
    );
    return insertId;
  } catch (err) {
    // Only a (sender, cmid) stored concurrently since findStored can collide here.
    if (err instanceof StoreError && err.code === 'CONFLICT') throw new DuplicateRace(err.message);
    throw err;
  }
}
