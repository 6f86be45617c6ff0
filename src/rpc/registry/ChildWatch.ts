/**
 * A cached, watched view of one ZooKeeper directory: its children and their decoded data, kept
 * current by child and data watches. It serves both the providers of one service
 * (ProviderDirectory) and any other registry of ephemeral nodes (the chat gateways). While
 * ZooKeeper is unreachable the cache stays as it was; after a new session every watch is set
 * again, and the differences found are reported like any other change.
 */
import * as zookeeper from 'node-zookeeper-client';
import type { ZkSession } from './ZkSession.js';

/** What happened to one child: `value` is its new data (its last known data when removed). */
export interface ChildChange<T> {
  type: 'added' | 'updated' | 'removed';
  key: string;
  value: T;
}

/**
 * Turns a child's data into a value; null means "not a usable entry" (it is then left out, as if
 * it did not exist).
 */
export type ChildDecoder<T> = (key: string, data: globalThis.Buffer) => T | null;

/** Called after each refresh that changed something (and once after the first listing, maybe empty). */
export type ChildListener<T> = (changes: readonly ChildChange<T>[]) => void;

const { Event } = zookeeper;

interface Entry<T> {
  value: T;
  /** The raw data, to tell a real update from a re-read of the same bytes. */
  raw: string;
}

export class ChildWatch<T> {
  private readonly entries = new Map<string, Entry<T>>();
  /** The first listing has completed (even if empty). */
  private isKnown = false;
  /** A refresh failed (ZooKeeper away) or the session is new: re-read everything. */
  private stale = true;
  private refreshing = false;
  private again = false;
  private closed = false;
  /** The session generation of the last complete listing. */
  private listedGeneration = -1;

  constructor(
    private readonly session: ZkSession,
    readonly dir: string,
    private readonly decode: ChildDecoder<T>,
    private readonly listener: ChildListener<T>,
  ) {
    session.on('connected', this.onConnected);
    session.on('session', this.onSession);
    if (session.connected) void this.refresh();
  }

  /** The first listing has arrived. */
  get known(): boolean {
    return this.isKnown;
  }

  /** The cached values, by child name. */
  values(): T[] {
    return [...this.entries.values()].map((e) => e.value);
  }

  get(key: string): T | undefined {
    return this.entries.get(key)?.value;
  }

  /** Stops reporting; the cache stays readable. */
  close(): void {
    this.closed = true;
    this.session.off('connected', this.onConnected);
    this.session.off('session', this.onSession);
  }

  private readonly onConnected = (): void => {
    if (this.stale) void this.refresh();
  };

  private readonly onSession = (): void => {
    // A new session has none of the old watches.
    this.stale = true;
    void this.refresh();
  };

  /** Re-reads the children (and the data of new ones), setting watches again. */
  async refresh(): Promise<void> {
    if (this.closed) return;
    if (this.refreshing) {
      this.again = true;
      return;
    }
    this.refreshing = true;
    try {
      do {
        this.again = false;
        await this.refreshOnce();
      } while (this.again && !this.closed);
      // Only now: a new session announced during the run made its second pass re-read everything.
      this.stale = false;
    } catch {
      this.stale = true; // keep serving the cache; retried on the next 'connected'
    } finally {
      this.refreshing = false;
    }
  }

  private async refreshOnce(): Promise<void> {
    const session = this.session;
    const generation = session.generation;
    // Data watches set under an older session never fire: re-read (and re-watch) every child.
    const rereadAll = this.stale || generation !== this.listedGeneration;
    const childWatcher = (event: zookeeper.Event): void => {
      if (session.generation !== generation || this.closed) return;
      const type = event.getType();
      if (
        type === Event.NODE_CHILDREN_CHANGED ||
        type === Event.NODE_CREATED ||
        type === Event.NODE_DELETED
      ) {
        void this.refresh();
      }
    };
    let children = await session.getChildren(this.dir, childWatcher);
    if (children === null) {
      // Nobody ever registered here: watch for the directory to appear.
      const stat = await session.exists(this.dir, childWatcher);
      children = stat === null ? [] : ((await session.getChildren(this.dir, childWatcher)) ?? []);
    }
    const wanted = new Set(children);
    const changes: ChildChange<T>[] = [];
    for (const [key, entry] of [...this.entries]) {
      if (!wanted.has(key)) {
        this.entries.delete(key);
        changes.push({ type: 'removed', key, value: entry.value });
      }
    }
    const toRead = children.filter((key) => rereadAll || !this.entries.has(key));
    const read = await Promise.all(toRead.map((key) => this.read(key, generation)));
    for (const [i, key] of toRead.entries()) {
      const change = this.apply(key, read[i]!);
      if (change !== null) changes.push(change);
    }
    this.listedGeneration = generation;
    if (this.closed) return;
    if (!this.isKnown || changes.length > 0) {
      this.isKnown = true;
      this.listener(changes);
    }
  }

  /** One child's data, with a watch that re-reads it when it changes. */
  private async read(key: string, generation: number): Promise<globalThis.Buffer | null> {
    const session = this.session;
    const dataWatcher = (event: zookeeper.Event): void => {
      if (session.generation !== generation || this.closed) return;
      if (event.getType() === Event.NODE_DATA_CHANGED) void this.reload(key, generation);
    };
    const node = await session.getData(`${this.dir}/${key}`, dataWatcher);
    return node === null ? null : node.data;
  }

  /** Records what was read for `key` and says what changed (null: nothing). */
  private apply(key: string, data: globalThis.Buffer | null): ChildChange<T> | null {
    const before = this.entries.get(key);
    const value = data === null ? null : this.decode(key, data);
    if (value === null) {
      // Gone between the listing and the read, or unusable: the child watch reports the removal.
      if (before === undefined || data !== null) return null;
      this.entries.delete(key);
      return { type: 'removed', key, value: before.value };
    }
    const raw = data!.toString('latin1');
    if (before !== undefined && before.raw === raw) return null;
    this.entries.set(key, { value, raw });
    return { type: before === undefined ? 'added' : 'updated', key, value };
  }

  /** A child's data changed: re-read it (and re-arm its watch). */
  private async reload(key: string, generation: number): Promise<void> {
    try {
      const data = await this.read(key, generation);
      if (this.closed || !this.entries.has(key)) return;
      const change = this.apply(key, data);
      if (change !== null) this.listener([change]);
    } catch {
      this.stale = true;
    }
  }
}
