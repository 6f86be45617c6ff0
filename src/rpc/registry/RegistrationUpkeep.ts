/**
 * The upkeep loop of a registration in ZooKeeper (a provider's nodes, a chat gateway's node):
 * writes them all once connected, again after every new session (the old session's ephemeral
 * nodes are gone) and after any failure, one write at a time; and between those, a report tick
 * every `intervalMs` that writes what changed (load, connection count).
 *
 *   const upkeep = new RegistrationUpkeep({ session, register, report, intervalMs, onError });
 *   if (!(await upkeep.start(connectTimeoutMs))) throw new Error('not registered');
 */
import type { ZkSession } from './ZkSession.js';

export interface RegistrationUpkeepOptions {
  session: ZkSession;
  /** Writes every node. Throwing (or calling `failed`) leaves it to be written again. */
  register: () => Promise<void>;
  /** On each tick while registered and connected: writes what changed; resolves false when a node was gone. */
  report: () => Promise<boolean>;
  intervalMs: number;
  /** A registration or report failed (it is retried). Not called once stopped. */
  onError: (error: unknown) => void;
}

export class RegistrationUpkeep {
  private timer: NodeJS.Timeout | null = null;
  private dirty = true;
  private running: Promise<void> | null = null;
  private isStopped = false;

  constructor(private readonly options: RegistrationUpkeepOptions) {}

  /**
   * Connects and registers; resolves true once registered and the tick runs, false when the
   * first registration failed (ZooKeeper unreachable within `connectTimeoutMs` rejects).
   */
  async start(connectTimeoutMs: number): Promise<boolean> {
    const session = this.options.session;
    session.on('connected', this.onConnected);
    session.on('expired', this.onExpired);
    await session.waitConnected(connectTimeoutMs);
    session.onSession(this.refresh);
    await this.register();
    if (this.dirty) return false;
    this.timer = setInterval(this.tick, this.options.intervalMs);
    this.timer.unref();
    return true;
  }

  get stopped(): boolean {
    return this.isStopped;
  }

  /** Writes everything again (what is registered changed, or the session is new). */
  readonly refresh = (): Promise<void> => {
    this.dirty = true;
    return this.register();
  };

  /** A write of the registration failed outside `register` (a watcher's): retried on the next tick. */
  failed(error: unknown): void {
    this.dirty = true;
    if (!this.isStopped) this.options.onError(error);
  }

  /** Ends the loop (the nodes are the owner's to remove); resolves once no registration runs. */
  stop(): Promise<void> {
    this.isStopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.options.session.off('connected', this.onConnected);
    this.options.session.off('expired', this.onExpired);
    return this.running ?? Promise.resolve();
  }

  private readonly onConnected = (): void => {
    if (this.dirty) void this.register();
  };

  private readonly onExpired = (): void => {
    this.dirty = true;
  };

  /**
   * Serialised: a request while one runs waits for it, then runs if still needed, or waits for
   * the rerun another request started meanwhile (so `start` resolves with nothing in flight).
   */
  private register(): Promise<void> {
    if (this.running !== null) {
      return this.running.then(() => (this.dirty || this.running !== null ? this.register() : undefined));
    }
    this.dirty = false;
    const run = (async () => {
      if (this.isStopped) return;
      try {
        await this.options.register();
      } catch (error) {
        this.failed(error);
      }
    })();
    this.running = run.finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private readonly tick = (): void => {
    if (this.isStopped || !this.options.session.connected || this.running !== null) return;
    if (this.dirty) {
      void this.register();
      return;
    }
    this.options.report().then(
      (present) => {
        if (!present) this.dirty = true;
      },
      (error: unknown) => this.failed(error),
    );
  };
}
