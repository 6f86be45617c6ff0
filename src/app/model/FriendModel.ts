import { dialectSql } from '../store/dialect.js';
import { StoreError } from '../store/errors.js';
import type { SqlDriver } from '../store/SqlDriver.js';
import type { UserSummary } from './types.js';
import { toPresence } from './UserModel.js';

export class FriendModel {
  constructor(private readonly db: SqlDriver) {}

  /**
   * Makes two users friends of each other (both rows, one transaction).
   * Self → CONFLICT ("cannot befriend yourself", errno 7); unknown user → NOT_FOUND; already
   * friends → CONFLICT. A half-present pair (one row only) is repaired rather than refused.
   */
  async add(userId: number, friendId: number): Promise<void> {
    if (userId === friendId) throw new StoreError('CONFLICT', 'cannot befriend yourself');
    const d = dialectSql(this.db.dialect);
    const [lo, hi] = userId < friendId ? [userId, friendId] : [friendId, userId];
    await this.db.transaction(async (tx) => {
      const found = await tx.query<{ id: number }>('SELECT id FROM users WHERE id IN (?, ?)', [lo, hi]);
      if (found.length !== 2) throw new StoreError('NOT_FOUND', 'no such user');
      // Rows in one fixed order whoever asks, so concurrent add(a, b) / add(b, a) cannot deadlock.
      const { affectedRows } = await tx.execute(
        `${d.insertIgnore} INTO friends (user_id, friend_id) VALUES (?, ?), (?, ?)`,
        [lo, hi, hi, lo],
      );
      if (affectedRows === 0) throw new StoreError('CONFLICT', 'already friends');
    });
  }

  /** The user's friends, by id. */
  async list(userId: number): Promise<UserSummary[]> {
    const rows = await this.db.query<{ id: number; name: string; state: string }>(
      'SELECT u.id, u.name, u.state FROM friends f JOIN users u ON u.id = f.friend_id ' +
        'WHERE f.user_id = ? ORDER BY u.id',
      [userId],
    );
    return rows.map((r) => ({ id: r.id, name: r.name, state: toPresence(r.state) }));
  }
}
