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
import { RegistrationUpkeep } from './RegistrationUpkeep.js';
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
  private readonly upkeep: RegistrationUpkeep;
  private lastCompleted = 0;
  private lastReportAt = performance.now();
  private lastReported = '';
  private callsPerSec = 0;

  constructor(private readonly options: RegistrarOptions) {
    this.hostPort = `${options.host}:${options.port}`;
    this.upkeep = new RegistrationUpkeep({
      session: options.session,
      register: async () => {
        for (const service of this.services) await this.registerService(service);
      },
      report: this.report,
      intervalMs: options.loadReportIntervalMs,
      onError: options.onError,
    });
  }

  /** Connects and registers every service; rejects when ZooKeeper stays unreachable. */
  async start(services: readonly ServiceDescriptor[], connectTimeoutMs: number): Promise<void> {
    this.services.push(...services);
    if (!(await this.upkeep.start(connectTimeoutMs))) throw new Error('registration in ZooKeeper failed');
  }

  /** Adds a service published after `start`. */
  addService(service: ServiceDescriptor): Promise<void> {
    this.services.push(service);
    return this.upkeep.refresh();
  }

  /** Removes this provider's nodes and closes the session (ephemeral nodes go with it anyway). */
  async stop(): Promise<void> {
    // Not awaited: closing the session ends a registration still running.
    void this.upkeep.stop();
    const session = this.options.session;
    if (session.connected) {
      const removals = this.services.map((s) =>
        session.remove(providerPath(this.options.root, s.fullName, this.hostPort)),
      );
      await Promise.allSettled(removals);
    }
    await session.close();
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
    if (this.upkeep.stopped) return;
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
      if (this.upkeep.stopped || session.generation !== generation) return;
      if (await session.create(path, globalThis.Buffer.from(this.hostPort), CreateMode.EPHEMERAL)) return;
      const watcher = (event: zookeeper.Event): void => {
        if (event.getType() !== Event.NODE_DELETED || session.generation !== generation) return;
        this.claimClassic(path).catch((error: unknown) => this.upkeep.failed(error));
      };
      const stat = await session.exists(path, watcher);
      if (stat !== null) return; // someone holds it; the watcher takes over when it goes
    }
  }

  /** The load of every service, written when it changed since the last report. */
  private readonly report = async (): Promise<boolean> => {
    const now = performance.now();
    const completed = this.options.stats.completed;
    this.callsPerSec = Math.round(
      ((completed - this.lastCompleted) * 1000) / Math.max(1, now - this.lastReportAt),
    );
    this.lastCompleted = completed;
    this.lastReportAt = now;
    const summary = `${this.options.stats.inFlight}/${this.callsPerSec}`;
    if (summary === this.lastReported) return true;
    this.lastReported = summary;
    const session = this.options.session;
    const present = await Promise.all(
      this.services.map((service) =>
        session.setData(
          providerPath(this.options.root, service.fullName, this.hostPort),
          encodeRecord(this.record(service)),
        ),
      ),
    );
    return present.every(Boolean);
  };
}
