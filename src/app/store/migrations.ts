import { type DialectSql, dialectSql } from './dialect.js';
import { StoreError } from './errors.js';
import { PARTITION_COUNT } from './partitions.js';
import type { SqlDriver, SqlExecutor } from './SqlDriver.js';

/** What a migration renders its DDL with. */
interface MigrationContext {
  readonly d: DialectSql;
  readonly mysql: boolean;
  /** Exact, byte-wise collation for MySQL tables (names and cmids compare like SQLite's BINARY). */
  readonly collation: string;
}

interface TableDef {
  name: string;
  columns: string[];
  indexes?: { name: string; columns: string }[];
  /** Small rows looked up by primary key: SQLite stores them WITHOUT ROWID (InnoDB always clusters). */
  clustered?: boolean;
}

/** One table definition, two renderings: MySQL 8 has no CREATE INDEX IF NOT EXISTS, so its indexes go inline. */
function createTable(ctx: MigrationContext, t: TableDef): string[] {
  const indexes = t.indexes ?? [];
  if (ctx.mysql) {
    const parts = [...t.columns, ...indexes.map((i) => `INDEX ${i.name} (${i.columns})`)];
    return [`CREATE TABLE IF NOT EXISTS ${t.name} (${parts.join(', ')})${ctx.d.tableOptions(ctx.collation)}`];
  }
  return [
    `CREATE TABLE IF NOT EXISTS ${t.name} (${t.columns.join(', ')})${t.clustered ? ' WITHOUT ROWID' : ''}`,
    ...indexes.map((i) => `CREATE INDEX IF NOT EXISTS ${i.name} ON ${t.name} (${i.columns})`),
  ];
}

interface Migration {
  version: number;
  description: string;
  /** Every statement must be idempotent on its own (IF NOT EXISTS), in case a lock is ever lost. */
  statements(ctx: MigrationContext): string[];
}

/** Ordered; never edit a released migration, append a new one. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'users, friends, groups, messages, inboxes',
    statements: (ctx) => [
      ...createTable(ctx, {
        name: 'users',
        columns: [
          `id ${ctx.d.autoIncrementPk}`,
          'name VARCHAR(50) NOT NULL',
          'password_hash VARCHAR(255) NOT NULL',
          "state VARCHAR(7) NOT NULL DEFAULT 'offline'",
          // The chat server process holding the user's session, so a restarted server can reset its users.
          'server_id VARCHAR(64) NULL',
          'CONSTRAINT uq_users_name UNIQUE (name)',
        ],
        indexes: [{ name: 'idx_users_server', columns: 'server_id' }],
      }),
      // Per-user inbox counters, apart from users so appends never lock the row logins update.
      ...createTable(ctx, {
        name: 'inbox_cursors',
        columns: [
          'user_id BIGINT NOT NULL PRIMARY KEY',
          'last_seq BIGINT NOT NULL DEFAULT 0',
          'acked_seq BIGINT NOT NULL DEFAULT 0',
        ],
        clustered: true,
      }),
      ...createTable(ctx, {
        name: 'friends',
        columns: ['user_id BIGINT NOT NULL', 'friend_id BIGINT NOT NULL', 'PRIMARY KEY (user_id, friend_id)'],
        clustered: true,
      }),
      // `groups` is reserved in MySQL 8.
      ...createTable(ctx, {
        name: 'chat_groups',
        columns: [
          `id ${ctx.d.autoIncrementPk}`,
          'groupname VARCHAR(50) NOT NULL',
          'groupdesc VARCHAR(200) NOT NULL',
          'CONSTRAINT uq_chat_groups_name UNIQUE (groupname)',
        ],
      }),
      ...createTable(ctx, {
        name: 'group_members',
        columns: [
          'group_id BIGINT NOT NULL',
          'user_id BIGINT NOT NULL',
          'role VARCHAR(7) NOT NULL',
          'PRIMARY KEY (group_id, user_id)',
        ],
        indexes: [{ name: 'idx_group_members_user', columns: 'user_id' }],
        clustered: true,
      }),
      ...createTable(ctx, {
        name: 'messages',
        columns: [
          ...messageColumns(ctx),
          // NULL cmids never collide: both engines allow many NULLs in a UNIQUE index.
          'CONSTRAINT uq_messages_cmid UNIQUE (sender, cmid)',
        ],
      }),
      ...createTable(ctx, {
        name: 'inbox',
        columns: [
          'user_id BIGINT NOT NULL',
          'seq BIGINT NOT NULL',
          'mid BIGINT NOT NULL',
          'PRIMARY KEY (user_id, seq)',
        ],
        clustered: true,
      }),
    ],
  },
  {
    version: 2,
    description: 'id_counters: message ids handed out per append batch',
    statements: (ctx) => [
      // Named counters, each row locked by the transactions that take ids from it. Appends take
      // a block of mids with one statement, so their messages go in as multi-row INSERTs (which
      // do not report each row's AUTO_INCREMENT id portably).
      ...createTable(ctx, {
        name: 'id_counters',
        columns: ['name VARCHAR(32) NOT NULL PRIMARY KEY', 'last_id BIGINT NOT NULL'],
        clustered: true,
      }),
      // Starts past every stored message (on SQLite also past any id AUTOINCREMENT handed out);
      // an existing row is kept, so a repeated run never moves the counter back.
      `${ctx.d.insertIgnore} INTO id_counters (name, last_id) SELECT 'messages.mid', ${
        ctx.mysql
          ? 'COALESCE(MAX(mid), 0) FROM messages'
          : 'MAX(COALESCE((SELECT MAX(mid) FROM messages), 0), ' +
            "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0))"
      }`,
    ],
  },
  {
    version: 3,
    description: 'SQLite: the (sender, cmid) unique index holds only messages that carry a cmid',
    // Most messages carry no cmid, yet each put a (sender, NULL) entry in the unique index: one
    // more page per sender written (and fsynced) by every commit. SQLite cannot drop a table's
    // constraint, so the table is rebuilt with a partial index instead; the migration's
    // transaction makes that atomic. InnoDB has no partial indexes (and gains little: measured).
    statements: (ctx) =>
      ctx.mysql
        ? []
        : [
            'DROP TABLE IF EXISTS messages_v3',
            `CREATE TABLE messages_v3 (${messageColumns(ctx).join(', ')})`,
            'INSERT INTO messages_v3 (mid, sender, cmid, kind, target, body, sent_at) ' +
              'SELECT mid, sender, cmid, kind, target, body, sent_at FROM messages',
            'DROP TABLE messages',
            'ALTER TABLE messages_v3 RENAME TO messages',
            'CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_cmid ON messages (sender, cmid) WHERE cmid IS NOT NULL',
          ],
  },
  {
    version: 4,
    description:
      'message_partitions: which message-service node writes each inbox partition, fenced by epoch',
    // One row per partition (PARTITION_COUNT of them, numbered from 0). A node that takes a
    // partition bumps its epoch; every append of a fenced node checks the epochs it holds (docs/
    // DISTRIBUTED.md, "Scaling the message service"). chat-server never reads it.
    statements: (ctx) => [
      ...createTable(ctx, {
        name: 'message_partitions',
        columns: [
          'part INT NOT NULL PRIMARY KEY',
          "owner VARCHAR(128) NOT NULL DEFAULT ''",
          'epoch BIGINT NOT NULL DEFAULT 0',
        ],
        clustered: true,
      }),
      `${ctx.d.insertIgnore} INTO message_partitions (part) VALUES ${Array.from(
        { length: PARTITION_COUNT },
        (_, i) => `(${i})`,
      ).join(', ')}`,
    ],
  },
  {
    version: 5,
    description: "group_fanout: a group message's inbox entries still to append, per member partition",
    // Partition-owner mode only (chat-service message nodes): the owner of the group's partition
    // stores the message and one row per member partition in one transaction; the owner of each
    // member partition appends those inboxes and deletes the row in one transaction (docs/
    // DISTRIBUTED.md, "Group messages"). Rows live for milliseconds unless a node failed.
    statements: (ctx) =>
      createTable(ctx, {
        name: 'group_fanout',
        columns: [
          'mid BIGINT NOT NULL',
          'part INT NOT NULL',
          // The group's partition: its owner drives the row, another node re-drives it if it stays.
          'source_part INT NOT NULL',
          // The partition's members when the message was sent, ids separated by commas.
          'recipients TEXT NOT NULL',
          // Milliseconds since the epoch (the writing node's clock): rows left behind are re-driven.
          'created_at BIGINT NOT NULL',
          'PRIMARY KEY (mid, part)',
        ],
        indexes: [{ name: 'idx_group_fanout_created', columns: 'created_at' }],
        clustered: true,
      }),
  },
];

/** The columns of `messages` (migration 1; rebuilt on SQLite by migration 3). */
function messageColumns(ctx: MigrationContext): string[] {
  return [
    `mid ${ctx.d.autoIncrementPk}`,
    'sender BIGINT NOT NULL',
    'cmid VARCHAR(64) NULL',
    'kind VARCHAR(5) NOT NULL',
    'target BIGINT NOT NULL',
    'body TEXT NOT NULL', // up to 4096 bytes of UTF-8 (TEXT holds 65535)
    'sent_at VARCHAR(64) NOT NULL',
  ];
}

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Brings the schema up to SCHEMA_VERSION and returns it. Safe to run any number of times and from
 * several processes at once: runs hold a cross-process lock, skip applied versions, and every
 * statement is idempotent besides. `upTo` stops at an older version (tests of upgrades).
 */
export function migrate(driver: SqlDriver, upTo = SCHEMA_VERSION): Promise<number> {
  return driver.exclusive('schema-migrations', async (ex) => {
    const mysql = ex.dialect === 'mysql';
    const ctx: MigrationContext = {
      d: dialectSql(ex.dialect),
      mysql,
      collation: mysql ? await binaryCollation(ex) : 'BINARY',
    };
    await ex.execute(
      'CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL PRIMARY KEY, ' +
        `description VARCHAR(200) NOT NULL, applied_at VARCHAR(32) NOT NULL)${ctx.d.tableOptions(ctx.collation)}`,
    );
    const [row] = await ex.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
    const current = row?.v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new StoreError(
        'INTERNAL',
        `database schema v${current} is newer than this code (v${SCHEMA_VERSION})`,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= current || m.version > upTo) continue;
      for (const sql of m.statements(ctx)) await ex.execute(sql);
      await ex.execute(
        `${ctx.d.insertIgnore} INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)`,
        [m.version, m.description, new Date().toISOString()],
      );
    }
    return Math.max(current, Math.min(upTo, SCHEMA_VERSION));
  });
}

/**
 * utf8mb4_bin pads with spaces ('a' = 'a '), so prefer the NO PAD binary collation the server has
 * (MariaDB: utf8mb4_nopad_bin, MySQL 8: utf8mb4_0900_bin); then `name` and `cmid` uniqueness is
 * exact byte equality, as in SQLite.
 */
async function binaryCollation(ex: SqlExecutor): Promise<string> {
  const preferred = ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin'];
  const rows = await ex.query<{ name: string }>(
    'SELECT COLLATION_NAME AS name FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (?, ?)',
    preferred,
  );
  const have = new Set(rows.map((r) => r.name));
  return preferred.find((c) => have.has(c)) ?? 'utf8mb4_bin';
}
