import { StoreError } from './errors.js';
import type { SqlExecutor } from './SqlDriver.js';

/**
 * Named id counters in `id_counters` (migration 2). Taking ids locks the counter's row until the
 * transaction ends, so concurrent takers queue and a rolled-back transaction hands its ids back.
 */

/**
 * Adds `n` (≥ 1) to counter `name` and returns its new value: the caller owns the ids
 * `value - n + 1 … value`. One statement, which also locks the row.
 */
export async function takeIds(tx: SqlExecutor, name: string, n: number): Promise<number> {
  if (tx.dialect === 'mysql') {
    // LAST_INSERT_ID(expr) makes the server report expr as the statement's insert id.
    const { affectedRows, insertId } = await tx.execute(
      'UPDATE id_counters SET last_id = LAST_INSERT_ID(last_id + ?) WHERE name = ?',
      [n, name],
    );
    if (affectedRows === 0) throw missing(name);
    if (insertId > 0) return insertId;
    const [row] = await tx.query<{ id: number | string }>('SELECT LAST_INSERT_ID() AS id');
    return Number(row?.id);
  }
  const [row] = await tx.query<{ lastId: number }>(
    'UPDATE id_counters SET last_id = last_id + ? WHERE name = ? RETURNING last_id AS lastId',
    [n, name],
  );
  if (!row) throw missing(name);
  return Number(row.lastId);
}

/**
 * Sets counter `name` to `value`, in a transaction that holds its row (took ids from it). Moving
 * it back gives ids back; only ids this transaction took and did not use may be given back.
 */
export async function setIds(tx: SqlExecutor, name: string, value: number): Promise<void> {
  await tx.execute('UPDATE id_counters SET last_id = ? WHERE name = ?', [value, name]);
}

function missing(name: string): StoreError {
  return new StoreError('INTERNAL', `id counter ${name} is missing (schema not migrated?)`);
}
