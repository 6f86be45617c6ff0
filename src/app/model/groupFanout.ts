/**
 * Group messages of a partition owner (docs/DISTRIBUTED.md, "Group messages"): the owner of the
 * group's partition stores the message and, instead of its members' inbox entries, one
 * `group_fanout` row per member partition (migration 5), in the same transaction. The owner of
 * each member partition appends those entries later (NewMessage.fanout), so every inbox keeps
 * one writer.
 */
import { partitionOf } from '../store/partitions.js';
import type { SqlExecutor, SqlParam } from '../store/SqlDriver.js';
import { rowPlaceholders } from '../store/sqlText.js';
import type { AppendResult, FanoutTask, NewMessage } from './types.js';

/** Rows per INSERT (5 values each). */
const ROWS_PER_INSERT = 512;

/** A batch whose group messages carry no recipients, and each one's fan-outs (null: not a group message). */
export interface GroupSplit {
  rows: NewMessage[];
  tasks: (FanoutTask[] | null)[];
}

/**
 * Takes the recipients off the batch's group messages but those of partitions the writer appends
 * itself (`appendsItself`); null when the batch has no group message (nothing changes).
 */
export function splitGroups(
  batch: readonly NewMessage[],
  appendsItself: (part: number) => boolean,
): GroupSplit | null {
  if (!batch.some(isGroupSubmit)) return null;
  // Asked once per partition of the batch, not per member: the answer is a rendezvous pick.
  const kept = new Map<number, boolean>();
  const keeps = (part: number): boolean => {
    let keep = kept.get(part);
    if (keep === undefined) {
      keep = appendsItself(part);
      kept.set(part, keep);
    }
    return keep;
  };
  const tasks: (FanoutTask[] | null)[] = [];
  const rows = batch.map((m) => {
    if (!isGroupSubmit(m)) {
      tasks.push(null);
      return m;
    }
    const own: number[] = [];
    const others: number[] = [];
    for (const id of m.recipients) (keeps(partitionOf(id)) ? own : others).push(id);
    tasks.push(byPartition(others));
    return { ...m, recipients: own };
  });
  return { rows, tasks };
}

/**
 * Sends the INSERT of the fan-out rows of the split's new group messages (a repeat stored
 * nothing: its first use's rows exist) and records them on their results. Not awaited by the
 * append: its failure fails the commit.
 */
export function insertFanouts(
  tx: SqlExecutor,
  batch: readonly NewMessage[],
  split: GroupSplit,
  results: AppendResult[],
  now: number,
): Promise<unknown> {
  const params: SqlParam[] = [];
  split.tasks.forEach((tasks, i) => {
    const result = results[i]!;
    if (tasks === null || result.duplicate) return;
    result.fanout = tasks;
    const source = partitionOf(batch[i]!.target);
    for (const t of tasks) params.push(result.mid, t.part, source, t.recipients.join(','), now);
  });
  const sent: Promise<unknown>[] = [];
  const most = ROWS_PER_INSERT * 5;
  for (let start = 0; start < params.length; start += most) {
    const part = params.slice(start, start + most);
    sent.push(
      tx.execute(
        `INSERT INTO group_fanout (mid, part, source_part, recipients, created_at) VALUES ${rowPlaceholders(part.length / 5, 5)}`,
        part,
      ),
    );
  }
  return Promise.all(sent);
}

/** Parses a `group_fanout.recipients` value. */
export function parseRecipients(text: string): number[] {
  return text === '' ? [] : text.split(',').map(Number);
}

function isGroupSubmit(m: NewMessage): boolean {
  return m.kind === 'group' && m.fanout === undefined;
}

/** Recipients grouped by their inbox partition, ascending; each list deduplicated. */
function byPartition(recipients: readonly number[]): FanoutTask[] {
  const parts = new Map<number, Set<number>>();
  for (const id of recipients) {
    const p = partitionOf(id);
    const set = parts.get(p);
    if (set === undefined) parts.set(p, new Set([id]));
    else set.add(id);
  }
  return [...parts].sort(([a], [b]) => a - b).map(([part, ids]) => ({ part, recipients: [...ids] }));
}
