/** Shared setup for the store suites: each describe block gets its own fresh database. */
import { afterAll, beforeAll } from 'vitest';
import { type ChatStore, createChatStore } from '../../src/app/model/ChatStore.js';
import type { NewMessage } from '../../src/app/model/types.js';
import { MysqlDriver } from '../../src/app/store/MysqlDriver.js';
import { migrate } from '../../src/app/store/migrations.js';
import { type OpenStoreOptions, openStore, parseStoreUrl } from '../../src/app/store/openStore.js';
import type { SqlDriver } from '../../src/app/store/SqlDriver.js';
import { SqliteDriver } from '../../src/app/store/SqliteDriver.js';
import { createTestDatabase, type StoreKind, type TestDatabase } from '../helpers/db.js';

export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'mysql'];

/**
 * SQLite stores run on a worker thread (the default) unless TEST_SQLITE_THREAD=0, which runs the
 * whole store suite again with statements on the test's own thread.
 */
export const SQLITE_THREAD = process.env.TEST_SQLITE_THREAD !== '0';

/** openStore in the SQLite mode this run tests. */
export function openTestStore(url: string, opts: OpenStoreOptions = {}): Promise<ChatStore> {
  return openStore(url, { sqliteThread: SQLITE_THREAD, ...opts });
}

export interface TestStore {
  /** The open store (valid inside tests). */
  readonly store: ChatStore;
  /** Its URL, to open more stores (pools) on the same database. */
  readonly url: string;
}

/** Opens a migrated store on a fresh database before the block's tests, and drops it after. */
export function useTestStore(kind: StoreKind): TestStore {
  let db: TestDatabase | undefined;
  let store: ChatStore | undefined;
  beforeAll(async () => {
    db = await createTestDatabase(kind);
    store = await openTestStore(db.url);
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });
  return {
    get store(): ChatStore {
      if (!store) throw new Error('store is not open yet');
      return store;
    },
    get url(): string {
      if (!db) throw new Error('database is not created yet');
      return db.url;
    },
  };
}

let counter = 0;
/** A name no other test in this process uses (names are UNIQUE in the store). */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}${counter}_${process.pid % 10000}`;
}

/** Registers `n` users and returns their ids. */
export async function createUsers(store: ChatStore, n: number, prefix = 'u'): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(await store.users.create(uniqueName(prefix), 'pw'));
  return ids;
}

export function oneToOne(sender: number, to: number, body: string, cmid: string | null = null): NewMessage {
  return { sender, cmid, kind: 'one', target: to, body, time: '2024-05-01 12:00:00', recipients: [to] };
}

/** A bare driver (no migrations) on a store URL, for driver- and migration-level tests. */
export async function openTestDriver(url: string): Promise<SqlDriver> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'sqlite') return SqliteDriver.open(loc.path, { thread: SQLITE_THREAD });
  const { kind: _kind, ...options } = loc;
  return MysqlDriver.open(options);
}

/**
 * A store whose MySQL transactions run once: a deadlock or lock wait timeout fails the call
 * (UNAVAILABLE) instead of being retried, so tests can assert that none happens.
 */
export async function openStoreWithoutRetries(url: string): Promise<ChatStore> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'sqlite') return openTestStore(url);
  const { kind: _kind, ...options } = loc;
  const driver = await MysqlDriver.open({ ...options, maxAttempts: 1 });
  await migrate(driver);
  return createChatStore(driver);
}
