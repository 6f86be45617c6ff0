import { StoreError } from '../store/errors.js';
import type { SqlDriver } from '../store/SqlDriver.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { PresenceState, UserRecord } from './types.js';

interface UserRow {
  id: number;
  name: string;
  passwordHash: string;
  state: string;
}

/** Compared against when the user does not exist, so both failures cost one hash. */
let dummyHash: Promise<string> | undefined;

export function toPresence(state: string): PresenceState {
  return state === 'online' ? 'online' : 'offline';
}

export class UserModel {
  constructor(private readonly db: SqlDriver) {}

  /** Registers a user and returns the new id. A taken name → StoreError CONFLICT. */
  async create(name: string, password: string): Promise<number> {
    // Hash before the transaction: never hold the write lock across ~5 ms of scrypt.
    const hash = await hashPassword(password);
    try {
      return await this.db.transaction(async (tx) => {
        const { insertId } = await tx.execute('INSERT INTO users (name, password_hash) VALUES (?, ?)', [
          name,
          hash,
        ]);
        await tx.execute('INSERT INTO inbox_cursors (user_id) VALUES (?)', [insertId]);
        return insertId;
      });
    } catch (err) {
      if (err instanceof StoreError && err.code === 'CONFLICT') {
        throw new StoreError('CONFLICT', 'user name is taken', { cause: err });
      }
      throw err;
    }
  }

  async findById(id: number): Promise<UserRecord | undefined> {
    const [row] = await this.db.query<UserRow>(
      'SELECT id, name, password_hash AS passwordHash, state FROM users WHERE id = ?',
      [id],
    );
    return (
      row && { id: row.id, name: row.name, passwordHash: row.passwordHash, state: toPresence(row.state) }
    );
  }

  /** The user when `password` is right; undefined for an unknown id or a wrong password alike. */
  async verifyPassword(id: number, password: string): Promise<UserRecord | undefined> {
    const user = await this.findById(id);
    if (!user) {
      dummyHash ??= hashPassword('not a password');
      await verifyPassword(password, await dummyHash);
      return undefined;
    }
    return (await verifyPassword(password, user.passwordHash)) ? user : undefined;
  }

  /**
   * Records presence and which server holds the session. Going offline with a non-null `serverId`
   * only applies while the session still belongs to that server, so a late logout on server A
   * cannot mark offline a user who meanwhile logged in on server B. Unknown ids are ignored.
   */
  async setState(id: number, state: PresenceState, serverId: string | null): Promise<void> {
    if (state === 'offline' && serverId !== null) {
      await this.db.execute(
        "UPDATE users SET state = 'offline', server_id = NULL WHERE id = ? AND server_id = ?",
        [id, serverId],
      );
      return;
    }
    await this.db.execute('UPDATE users SET state = ?, server_id = ? WHERE id = ?', [
      state,
      state === 'online' ? serverId : null,
      id,
    ]);
  }

  /**
   * Every user whose session was on `serverId` goes offline; returns how many. With an `epoch`,
   * only that incarnation's (stored as `serverId|epoch`, see `holderOf`): a gateway that lost its
   * ZooKeeper session keeps the users who logged in again through its next incarnation. Without,
   * every incarnation's (crash recovery on start, a server that stopped heart-beating).
   */
  async resetServer(serverId: string, epoch?: string): Promise<number> {
    const prefix = holderOf(serverId, '');
    const { affectedRows } =
      epoch === undefined
        ? await this.db.execute(
            "UPDATE users SET state = 'offline', server_id = NULL WHERE server_id = ? OR " +
              '(server_id >= ? AND server_id < ?)',
            // `|` then `}`: every `serverId|…` and nothing else (byte order; ids hold no `|`).
            [serverId, prefix, `${serverId}}`],
          )
        : await this.db.execute("UPDATE users SET state = 'offline', server_id = NULL WHERE server_id = ?", [
            holderOf(serverId, epoch),
          ]);
    return affectedRows;
  }
}

/**
 * What the state column records as the server holding a session: the server id, and with a
 * presence epoch (a gateway's incarnation) `serverId|epoch`, as its presence keys in Redis do.
 */
export function holderOf(serverId: string, epoch: string): string {
  return `${serverId}|${epoch}`;
}
