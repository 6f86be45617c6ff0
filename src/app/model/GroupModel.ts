import { dialectSql } from '../store/dialect.js';
import { StoreError } from '../store/errors.js';
import type { SqlDriver, SqlExecutor } from '../store/SqlDriver.js';
import type { GroupDetail, GroupMemberSummary } from './types.js';
import { toPresence } from './UserModel.js';

interface MemberRow {
  groupId: number;
  id: number;
  name: string;
  state: string;
  role: string;
}

async function requireUser(tx: SqlExecutor, userId: number): Promise<void> {
  const found = await tx.query<{ id: number }>('SELECT id FROM users WHERE id = ?', [userId]);
  if (found.length === 0) throw new StoreError('NOT_FOUND', 'no such user');
}

export class GroupModel {
  constructor(private readonly db: SqlDriver) {}

  /** Creates a group with its creator as member (role 'creator'). Taken groupname → CONFLICT. */
  async create(creatorId: number, groupname: string, groupdesc: string): Promise<number> {
    try {
      return await this.db.transaction(async (tx) => {
        await requireUser(tx, creatorId);
        const { insertId } = await tx.execute(
          'INSERT INTO chat_groups (groupname, groupdesc) VALUES (?, ?)',
          [groupname, groupdesc],
        );
        await tx.execute("INSERT INTO group_members (group_id, user_id, role) VALUES (?, ?, 'creator')", [
          insertId,
          creatorId,
        ]);
        return insertId;
      });
    } catch (err) {
      if (err instanceof StoreError && err.code === 'CONFLICT') {
        throw new StoreError('CONFLICT', 'group name is taken', { cause: err });
      }
      throw err;
    }
  }

  /** Adds a member with role 'normal'. No such group or user → NOT_FOUND; already a member → CONFLICT. */
  async join(groupId: number, userId: number): Promise<void> {
    const d = dialectSql(this.db.dialect);
    await this.db.transaction(async (tx) => {
      if (!(await groupExists(tx, groupId))) throw new StoreError('NOT_FOUND', 'no such group');
      await requireUser(tx, userId);
      const { affectedRows } = await tx.execute(
        `${d.insertIgnore} INTO group_members (group_id, user_id, role) VALUES (?, ?, 'normal')`,
        [groupId, userId],
      );
      if (affectedRows === 0) throw new StoreError('CONFLICT', 'already a member');
    });
  }

  async isMember(groupId: number, userId: number): Promise<boolean> {
    const rows = await this.db.query<{ one: number }>(
      'SELECT 1 AS one FROM group_members WHERE group_id = ? AND user_id = ?',
      [groupId, userId],
    );
    return rows.length > 0;
  }

  /** Member ids in ascending order (creator included). */
  async memberIds(groupId: number): Promise<number[]> {
    const rows = await this.db.query<{ userId: number }>(
      'SELECT user_id AS userId FROM group_members WHERE group_id = ? ORDER BY user_id',
      [groupId],
    );
    return rows.map((r) => r.userId);
  }

  exists(groupId: number): Promise<boolean> {
    return groupExists(this.db, groupId);
  }

  /** The user's groups by id, each with all its members by user id. Two queries, whatever the count. */
  async listForUser(userId: number): Promise<GroupDetail[]> {
    const groups = await this.db.query<{ id: number; groupname: string; groupdesc: string }>(
      'SELECT g.id, g.groupname, g.groupdesc FROM group_members gm JOIN chat_groups g ON g.id = gm.group_id ' +
        'WHERE gm.user_id = ? ORDER BY g.id',
      [userId],
    );
    if (groups.length === 0) return [];
    const members = await this.db.query<MemberRow>(
      'SELECT gm.group_id AS groupId, u.id, u.name, u.state, gm.role FROM group_members gm ' +
        'JOIN users u ON u.id = gm.user_id ' +
        'WHERE gm.group_id IN (SELECT group_id FROM group_members WHERE user_id = ?) ORDER BY gm.group_id, u.id',
      [userId],
    );
    const byGroup = new Map<number, GroupMemberSummary[]>(groups.map((g) => [g.id, []]));
    for (const m of members) {
      byGroup.get(m.groupId)?.push({
        id: m.id,
        name: m.name,
        state: toPresence(m.state),
        role: m.role === 'creator' ? 'creator' : 'normal',
      });
    }
    return groups.map((g) => ({
      id: g.id,
      groupname: g.groupname,
      groupdesc: g.groupdesc,
      users: byGroup.get(g.id) ?? [],
    }));
  }
}

async function groupExists(ex: SqlExecutor, groupId: number): Promise<boolean> {
  const rows = await ex.query<{ id: number }>('SELECT id FROM chat_groups WHERE id = ?', [groupId]);
  return rows.length > 0;
}
