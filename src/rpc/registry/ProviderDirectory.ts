/**
 * The consumer's cached view of the registry: for each service it has been asked about, the live
 * providers and their reported load, kept current by ZooKeeper watches. Calls read the cache and
 * never wait on ZooKeeper (except for the very first listing of a service). While ZooKeeper is
 * unreachable the cache stays as it was; after a new session every watch is set again.
 */
import * as zookeeper from 'node-zookeeper-client';
import { parseHostPort } from '../address.js';
import { decodeRecord, providerPath, providersPath } from './layout.js';
import type { ZkSession } from './ZkSession.js';

export interface ProviderInfo {
  /** "host:port", the node's name. */
  key: string;
  host: string;
  port: number;
  load: number;
  callsPerSec: number;
  methods: readonly string[];
}

export type DirectoryListener = (service: string, providers: readonly ProviderInfo[]) => void;

const { Event } = zookeeper;

class ServiceWatch {
  readonly providers = new Map<string, ProviderInfo>();
  /** The first listing has completed (even if empty). */
  known = false;
  /** A refresh failed (ZooKeeper away): redo it on reconnect. */
  stale = true;
  private refreshing = false;
  private again = false;

  constructor(
    readonly service: string,
    private readonly directory: ProviderDirectory,
    private readonly session: ZkSession,
    private readonly root: string,
  ) {}

  /** Re-reads the children (and the data of new ones), setting watches again. */
  async refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return;
    }
    this.refreshing = true;
    try {
      do {
        this.again = false;
        await this.refreshOnce();
      } while (this.again);
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
    const dir = providersPath(this.root, this.service);
    const childWatcher = (event: zookeeper.Event): void => {
      if (session.generation !== generation) return;
      const type = event.getType();
      if (
        type === Event.NODE_CHILDREN_CHANGED ||
        type === Event.NODE_CREATED ||
        type === Event.NODE_DELETED
      ) {
        void this.refresh();
      }
    };
    let children = await session.getChildren(dir, childWatcher);
    if (children === null) {
      // No provider ever registered: watch for the directory to appear.
      const stat = await session.exists(dir, childWatcher);
      children = stat === null ? [] : ((await session.getChildren(dir, childWatcher)) ?? []);
    }
    const wanted = new Set(children);
    let changed = false;
    for (const key of [...this.providers.keys()]) {
      if (!wanted.has(key)) {
        this.providers.delete(key);
        changed = true;
      }
    }
    const fresh = children.filter((key) => !this.providers.has(key) || this.stale);
    const results = await Promise.all(fresh.map((key) => this.readProvider(key, generation)));
    for (const info of results) {
      if (info === null) continue;
      this.providers.set(info.key, info);
      changed = true;
    }
    if (!this.known || changed) {
      this.known = true;
      this.directory.publish(this);
    }
  }

  private async readProvider(key: string, generation: number): Promise<ProviderInfo | null> {
    const session = this.session;
    const path = providerPath(this.root, this.service, key);
    const dataWatcher = (event: zookeeper.Event): void => {
      if (session.generation !== generation) return;
      if (event.getType() === Event.NODE_DATA_CHANGED) void this.reload(key, generation);
    };
    const node = await session.getData(path, dataWatcher);
    if (node === null) return null;
    const address = parseHostPort(key);
    const record = decodeRecord(node.data);
    if (address === null && record === null) return null;
    return {
      key,
      host: record?.host ?? address!.host,
      port: record?.port ?? address!.port,
      load: record?.load ?? 0,
      callsPerSec: record?.callsPerSec ?? 0,
      methods: record?.methods ?? [],
    };
  }

  /** A provider's load changed: re-read it (and re-arm its watch). */
  private async reload(key: string, generation: number): Promise<void> {
    try {
      const info = await this.readProvider(key, generation);
      if (info === null || !this.providers.has(key)) return;
      this.providers.set(key, info);
      this.directory.publish(this);
    } catch {
      this.stale = true;
    }
  }
}

export class ProviderDirectory {
  private readonly watches = new Map<string, ServiceWatch>();
  private readonly listeners: DirectoryListener[] = [];

  constructor(
    private readonly session: ZkSession,
    private readonly root: string,
  ) {
    session.on('connected', () => {
      for (const watch of this.watches.values()) if (watch.stale) void watch.refresh();
    });
    session.on('session', () => {
      // A new session has none of the old watches.
      for (const watch of this.watches.values()) {
        watch.stale = true;
        void watch.refresh();
      }
    });
    session.start();
  }

  onChange(listener: DirectoryListener): void {
    this.listeners.push(listener);
  }

  /** Starts watching `service` (full name); the first listing is published when it arrives. */
  watch(service: string): void {
    if (this.watches.has(service)) return;
    const watch = new ServiceWatch(service, this, this.session, this.root);
    this.watches.set(service, watch);
    if (this.session.connected) void watch.refresh();
  }

  /** The cached providers, or undefined before the first listing. */
  providers(service: string): readonly ProviderInfo[] | undefined {
    const watch = this.watches.get(service);
    return watch?.known ? [...watch.providers.values()] : undefined;
  }

  /** @internal */
  publish(watch: ServiceWatch): void {
    const list = [...watch.providers.values()];
    for (const listener of this.listeners) listener(watch.service, list);
  }
}
