import { dialectSql } from '../store/dialect.js';
import { StoreError } from '../store/errors.js';
import { partitionOf } from '../store/partitions.js';
import type { SqlDriver, SqlExecutor } from '../store/SqlDriver.js';
import { placeholders } from '../store/sqlText.js';
import type { NewMessage } from './types.js';

/** An append refused because another node took one of its partitions: nothing was stored. */
export class PartitionMovedError extends StoreError {
  constructor(readonly parts: readonly number[]) {
    super('UNAVAILABLE', `inbox partition ${parts.join(', ')} moved to another message node, retry`);
  }
}

/**
 * One writer per inbox partition (docs/DISTRIBUTED.md, "Scaling the message service"). A node
 * takes a partition the first time it writes it by bumping the partition's epoch in
 * `message_partitions` (migration 4) and remembers the epoch. Every append guards the epochs of
 * its partitions: it reads them with a shared lock, held to its commit, and fails if one moved.
 * A take waits for the appends holding that lock and then moves the epoch, so once it commits
 * every later append of the old owner fails: two nodes never write one partition at once.
 */
export class PartitionFence {
  /** The epoch of every partition this node holds. */
  private readonly held = new Map<number, number>();
  /** Takes under way, so that concurrent appends take a partition once. */
  private readonly taking = new Map<number, Promise<void>>();

  constructor(
    private readonly db: SqlDriver,
    /** Who this node is, stored with the partitions it takes (for operators and tests). */
    private readonly owner: string,
  ) {}

  /** The partitions a batch writes, ascending (the lock order). */
  partitionsOf(batch: readonly NewMessage[]): number[] {
    const parts = new Set<number>();
    for (const m of batch) {
      // A group message's fan-out writes its members' partition, not the group's.
      parts.add(m.fanout?.part ?? partitionOf(m.target));
      // A group message still listing members: those of partitions its writer appends itself.
      if (m.kind === 'group' && m.fanout === undefined)
        for (const id of m.recipients) parts.add(partitionOf(id));
    }
    return [...parts].sort((a, b) => a - b);
  }

  /** Makes this node the owner of every partition of `parts` it does not hold yet. */
  async hold(parts: readonly number[]): Promise<void> {
    const missing = parts.filter((p) => !this.held.has(p) && !this.taking.has(p));
    if (missing.length > 0) {
      const take = this.take(missing);
      for (const p of missing) this.taking.set(p, take);
      // Its failure reaches the callers below; this only forgets it (and must not be unhandled).
      const forget = (): void => {
        for (const p of missing) this.taking.delete(p);
      };
      take.then(forget, forget);
    }
    await Promise.all(parts.map((p) => this.taking.get(p)));
  }

  /**
   * First statement of an append's transaction: locks `parts` shared until commit and rejects
   * with PartitionMovedError if another node took one since this node did.
   */
  async guard(tx: SqlExecutor, parts: readonly number[]): Promise<void> {
    if (parts.length === 0) return;
    const rows = await tx.query<{ part: number; epoch: number }>(
      `SELECT part, epoch FROM message_partitions WHERE part IN (${placeholders(parts.length)})${dialectSql(tx.dialect).forShare}`,
      parts,
    );
    const lost: number[] = [];
    for (const r of rows) if (this.held.get(r.part) !== Number(r.epoch)) lost.push(r.part);
    if (rows.length !== parts.length) throw new StoreError('INTERNAL', 'message_partitions is missing rows');
    if (lost.length === 0) return;
    // Taken again only when a submit for it comes here again (a gateway routes it to this node).
    for (const p of lost) this.held.delete(p);
    throw new PartitionMovedError(lost);
  }

  /** The epochs this node holds (tests and logs). */
  epochs(): ReadonlyMap<number, number> {
    return this.held;
  }

  private async take(parts: readonly number[]): Promise<void> {
    const rows = await this.db.transaction(async (tx) => {
      // One statement per row: a key lookup each, never a scan that would lock other partitions.
      for (const p of parts) {
        void tx
          .execute('UPDATE message_partitions SET epoch = epoch + 1, owner = ? WHERE part = ?', [
            this.owner,
            p,
          ])
          .catch(() => {});
      }
      return tx.query<{ part: number; epoch: number }>(
        `SELECT part, epoch FROM message_partitions WHERE part IN (${placeholders(parts.length)})`,
        parts,
      );
    });
    if (rows.length !== parts.length) throw new StoreError('INTERNAL', 'message_partitions is missing rows');
    for (const r of rows) this.held.set(r.part, Number(r.epoch));
  }
}
