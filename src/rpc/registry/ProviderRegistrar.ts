/**
 * The provider's presence in ZooKeeper: one ephemeral native node per service (with its load,
 * refreshed every `loadReportIntervalMs`) and, for classic consumers, the classic layout. It is
 * all re-created on every new session (after an expiry), and retried after any failed attempt.
 *
 * Classic layout and several providers: `/<Service>/<Method>` can hold one address only. The
 * first provider to create it holds it; the others watch it and take over when it disappears
 * (its owner's session ended), so classic consumers keep finding a live provider.
 */
import * as zookeeper from 'node-zookeeper-client';
import type { ServiceDescriptor } from '../proto.js';
import type { ProviderStats } from '../server/ProviderStats.js';
import { putEphemeral } from './ephemeral.js';
import {
  classicMethodPath,
  classicServicePath,
  encodeRecord,
  type ProviderRecord,
  providerPath,
  providersPath,
} from './layout.js';
import type { ZkSession } from './ZkSession.js';

export interface RegistrarOptions {
  session: ZkSession;
  root: string;
  /** The advertised address. */
  host: string;
  port: number;
  classicLayout: boolean;
  protocols: string[];
  loadReportIntervalMs: number;
  stats: ProviderStats;
  onError: (error: unknown) => void;
}

const { CreateMode, Event } = zookeeper;

export class ProviderRegistrar {
  private readonly services: ServiceDescriptor[] = [];
  private readonly hostPort: string;
  private timer: NodeJS.Timeout | null = null;
  private dirty = true;
  private running: Promise<void> | null = null;
  private stopped = false;
  private lastCompleted = 0;
  private lastReportAt = performance.now();
  private lastReported = '';
  private callsPerSec = 0;

  constructor(private readonly options: RegistrarOptions) {
    this.hostPort = `${options.host}:${options.port}`;
  }

  /** Connects and registers every service; rejects when ZooKeeper stays unreachable. */
  async start(services: readonly ServiceDescriptor[], connectTimeoutMs: number): Promise<void> {
    this.services.push(...services);
    const session = this.options.session;
    session.on('connected', () => {
      if (this.dirty) void this.registerAll();
    });
    session.on('expired', () => {
      this.dirty = true;
    });
    await session.waitConnected(connectTimeoutMs);
    session.onSession(() => {
      this.dirty = true;
      void this.registerAll();
    });
    await this.registerAll();
    if (this.dirty) throw new Error('registration in ZooKeeper failed');
    this.timer = setInterval(this.tick, this.options.loadReportIntervalMs);
    this.timer.unref();
  }

  /** Adds a service published after `start`. */
  addService(service: ServiceDescriptor): Promise<void> {
    this.services.push(service);
    this.dirty = true;
    return this.registerAll();
  }

  /** Removes this provider's nodes and closes the session (ephemeral nodes go with it anyway). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const session = this.options.session;
    if (session.connected) {
      const removals = this.services.map((s) =>
        session.remove(providerPath(this.options.root, s.fullName, this.hostPort)),
      );
      await Promise.allSettled(removals);
    }
    await session.close();
  }

  /** Every registration step, serialised: a second request while one runs waits for it and reruns. */
  private registerAll(): Promise<void> {
    if (this.running !== null) {
      return this.running.then(() => (this.dirty ? this.registerAll() : undefined));
    }
    this.dirty = false;
    const run = (async () => {
      try {
        for (const service of this.services) await this.registerService(service);
      } catch (error) {
        this.dirty = true;
        if (!this.stopped) this.options.onError(error);
      }
    })();
    this.running = run.finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private record(service: ServiceDescriptor): ProviderRecord {
    return {
      host: this.options.host,
      port: this.options.port,
      load: this.options.stats.inFlight,
      callsPerSec: this.callsPerSec,
      methods: [...service.methods.keys()],
      protocols: this.options.protocols,
      pid: process.pid,
      updatedAt: Date.now(),
    };
  }

  private async registerService(service: ServiceDescriptor): Promise<void> {
    if (this.stopped) return;
    const session = this.options.session;
    const dir = providersPath(this.options.root, service.fullName);
    const path = providerPath(this.options.root, service.fullName, this.hostPort);
    await session.ensurePath(dir);
    await putEphemeral(session, path, encodeRecord(this.record(service)));
    if (this.options.classicLayout) {
      await session.ensurePath(classicServicePath(service.shortName));
      for (const method of service.methods.keys()) {
        await this.claimClassic(classicMethodPath(service.shortName, method));
      }
    }
  }

  /** Creates the classic method node, or watches it and takes over once its holder is gone. */
  private async claimClassic(path: string): Promise<void> {
    const session = this.options.session;
    const generation = session.generation;
    for (;;) {
      if (this.stopped || session.generation !== generation) return;
      if (await session.create(path, globalThis.Buffer.from(this.hostPort), CreateMode.EPHEMERAL)) return;
      const watcher = (event: zookeeper.Event): void => {
        if (event.getType() !== Event.NODE_DELETED || session.generation !== generation) return;
        this.claimClassic(path).catch((error: unknown) => {
          this.dirty = true;
          if (!this.stopped) this.options.onError(error);
        });
      };
      const stat = await session.exists(path, watcher);
      if (stat !== null) return; // someone holds it; the watcher takes over when it goes
    }
  }

  private readonly tick = (): void => {
    const session = this.options.session;
    if (this.stopped || !session.connected) return;
    if (this.dirty) {
      void this.registerAll();
      return;
    }
    const now = performance.now();
    const completed = this.options.stats.completed;
    this.callsPerSec = Math.round(
      ((completed - this.lastCompleted) * 1000) / Math.max(1, now - this.lastReportAt),
    );
    this.lastCompleted = completed;
    this.lastReportAt = now;
    const summary = `${this.options.stats.inFlight}/${this.callsPerSec}`;
    if (summary === this.lastReported) return;
    this.lastReported = summary;
    for (const service of this.services) {
      const path = providerPath(this.options.root, service.fullName, this.hostPort);
      session.setData(path, encodeRecord(this.record(service))).then(
        (present) => {
          if (!present) this.dirty = true;
        },
        () => {
          this.dirty = true;
        },
      );
    }
  };
}
