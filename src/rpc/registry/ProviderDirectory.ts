/**
 * The consumer's cached view of the registry: for each service it has been asked about, the live
 * providers and their reported load, kept current by ZooKeeper watches (one ChildWatch per
 * service). Calls read the cache and never wait on ZooKeeper (except for the very first listing
 * of a service). While ZooKeeper is unreachable the cache stays as it was; after a new session
 * every watch is set again.
 */
import { parseHostPort } from '../address.js';
import { ChildWatch } from './ChildWatch.js';
import { decodeRecord, providersPath } from './layout.js';
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

/** A provider node: its record, or at least the address its name gives. */
function decodeProvider(key: string, data: globalThis.Buffer): ProviderInfo | null {
  const address = parseHostPort(key);
  const record = decodeRecord(data);
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

export class ProviderDirectory {
  private readonly watches = new Map<string, ChildWatch<ProviderInfo>>();
  private readonly listeners: DirectoryListener[] = [];

  constructor(
    private readonly session: ZkSession,
    private readonly root: string,
  ) {
    session.start();
  }

  onChange(listener: DirectoryListener): void {
    this.listeners.push(listener);
  }

  /** Starts watching `service` (full name); the first listing is published when it arrives. */
  watch(service: string): void {
    if (this.watches.has(service)) return;
    const watch = new ChildWatch(this.session, providersPath(this.root, service), decodeProvider, () =>
      this.publish(service, watch),
    );
    this.watches.set(service, watch);
  }

  /** The cached providers, or undefined before the first listing. */
  providers(service: string): readonly ProviderInfo[] | undefined {
    const watch = this.watches.get(service);
    return watch?.known ? watch.values() : undefined;
  }

  private publish(service: string, watch: ChildWatch<ProviderInfo>): void {
    const list = watch.values();
    for (const listener of this.listeners) listener(service, list);
  }
}
