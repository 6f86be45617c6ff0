import { resolve } from 'node:path';
import { type ChatStore, createChatStore } from '../model/ChatStore.js';
import type { MessageModelOptions } from '../model/MessageModel.js';
import { StoreError } from './errors.js';
import { MysqlDriver } from './MysqlDriver.js';
import { migrate } from './migrations.js';
import type { SqlDriver } from './SqlDriver.js';
import { SqliteDriver } from './SqliteDriver.js';

export interface OpenStoreOptions {
  /** MySQL pool size (also `?connectionLimit=` in the URL). Default 10. */
  connectionLimit?: number;
  /** SQLite durability, see SqliteOptions.synchronous. Default 'FULL'. */
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  /** SQLite on a worker thread (default) or on the calling thread, see SqliteOptions.thread. */
  sqliteThread?: boolean;
  /** How the message model shares the store with other writers (chat-service's message nodes). */
  messages?: MessageModelOptions;
}

export const DEFAULT_SQLITE_PATH = './data/chat.db';

export type StoreLocation =
  | { kind: 'sqlite'; path: string }
  | {
      kind: 'mysql';
      host: string;
      port: number;
      user: string;
      password: string;
      database: string;
      connectionLimit?: number;
    };

/**
 * Where a store URL points:
 * - undefined / '' → SQLite at ./data/chat.db (relative to cwd);
 * - `sqlite:path`, `sqlite://path` (`sqlite:///abs/path`), `sqlite::memory:`, or a plain file path → SQLite;
 * - `mysql://user:pass@host:port/db[?connectionLimit=N]` (also `mariadb://`) → MySQL/MariaDB.
 */
export function parseStoreUrl(url: string | undefined): StoreLocation {
  if (url === undefined || url === '') return { kind: 'sqlite', path: resolve(DEFAULT_SQLITE_PATH) };
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new StoreError('INTERNAL', 'sqlite: URL without a path');
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  if (/^(mysql|mariadb):\/\//.test(url)) return parseMysqlUrl(url);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new StoreError('INTERNAL', `unsupported store URL scheme in ${url.slice(0, url.indexOf(':'))}:`);
  }
  return { kind: 'sqlite', path: resolve(url) };
}

function parseMysqlUrl(url: string): StoreLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // The URL holds a password: never echo it.
    throw new StoreError('INTERNAL', 'malformed mysql:// store URL');
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database === '') throw new StoreError('INTERNAL', 'mysql:// store URL without a database name');
  const limit = u.searchParams.get('connectionLimit');
  if (limit !== null && !/^[1-9][0-9]{0,3}$/.test(limit)) {
    throw new StoreError('INTERNAL', 'connectionLimit must be a positive integer');
  }
  return {
    kind: 'mysql',
    host: u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: u.port === '' ? 3306 : Number(u.port), // URL already rejected non-numeric ports
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
    database,
    ...(limit !== null ? { connectionLimit: Number(limit) } : {}),
  };
}

/** Opens the store the URL names and migrates its schema before resolving. */
export async function openStore(url: string | undefined, opts: OpenStoreOptions = {}): Promise<ChatStore> {
  const driver = await openDriver(parseStoreUrl(url), opts);
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close().catch(() => {});
    throw err;
  }
  return createChatStore(driver, opts.messages);
}

function openDriver(loc: StoreLocation, opts: OpenStoreOptions): Promise<SqlDriver> {
  if (loc.kind === 'sqlite') {
    return SqliteDriver.open(loc.path, {
      synchronous: opts.sqliteSynchronous ?? 'FULL',
      thread: opts.sqliteThread ?? true,
    });
  }
  const { kind: _kind, connectionLimit, ...conn } = loc;
  return MysqlDriver.open({ ...conn, connectionLimit: opts.connectionLimit ?? connectionLimit ?? 10 });
}
