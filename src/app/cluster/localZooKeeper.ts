/**
 * Private ZooKeeper servers on this machine (scripts/zookeeper.sh): one standalone server, or an
 * ensemble of N members on 127.0.0.1 whose members can be stopped and started one by one (to
 * show what a quorum buys: with three, any one may be down). Used by `npm run distributed` and
 * by the tests (test/helpers/zookeeper.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../bin/lifecycle.js';
import { packageRoot } from './paths.js';

const HOST = '127.0.0.1';

export interface ZooKeeperServer {
  /** 1-based member id (1 for a standalone server). */
  readonly id: number;
  /** Client port. */
  readonly port: number;
  readonly running: boolean;
  /** Stops it (SIGKILL when `hard`), keeping its data. */
  stop(options?: { hard?: boolean }): Promise<void>;
  /** Starts it again on the same ports and data; resolves once it serves (an ensemble member needs a quorum). */
  start(): Promise<void>;
  /** The last lines it printed (for failure messages). */
  output(): string;
}

export interface LocalZooKeeper {
  /** "127.0.0.1:p1[,127.0.0.1:p2…]": every member, as clients take it. */
  readonly connectString: string;
  readonly servers: readonly ZooKeeperServer[];
  /** Stops every member (SIGKILL when `hard`). */
  stop(options?: { hard?: boolean }): Promise<void>;
}

export interface LocalZooKeeperOptions {
  /** 1: a standalone server; 3 (or any odd N): an ensemble. */
  size: number;
  /** Each member keeps its data in `dir/zk-<id>`. */
  dir: string;
  /** Client ports, one per member; default free ports. */
  ports?: readonly number[];
  /** ZooKeeper's tick: sessions may last 2 to 20 ticks. Default 2000 ms. */
  tickMs?: number;
  /** How long to wait for each member to serve. Default 60 000 ms. */
  startTimeoutMs?: number;
}

/** Children still running, killed if this process exits without stopping them. */
const children = new Set<ChildProcess>();
let exitHook = false;

function killAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
}

/**
 * One `srvr` four-letter-word probe: true when the server serves requests (it answers with its
 * mode; an ensemble member without a quorum says it is "not currently serving requests").
 */
export function zooKeeperServing(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let text = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('srvr'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(text.includes('Mode:')));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class ServerProcess implements ZooKeeperServer {
  private child: ChildProcess | null = null;
  private log = '';

  constructor(
    readonly id: number,
    readonly port: number,
    private readonly args: readonly string[],
    private readonly startTimeoutMs: number,
  ) {}

  get running(): boolean {
    return this.child !== null;
  }

  output(): string {
    return this.log;
  }

  /** Spawns the JVM without waiting (members of a new ensemble must all be up to elect). */
  spawn(): void {
    if (this.child !== null) return;
    const proc = spawn('bash', [join(packageRoot(), 'scripts/zookeeper.sh'), ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = proc;
    children.add(proc);
    this.log = '';
    const keep = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString()).slice(-4000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.once('exit', () => {
      children.delete(proc);
      if (this.child === proc) this.child = null;
    });
  }

  /** Resolves once it serves; throws if it exits or takes longer than the start timeout. */
  async waitServing(): Promise<void> {
    const proc = this.child;
    const until = Date.now() + this.startTimeoutMs;
    while (!(await zooKeeperServing(this.port))) {
      if (proc === null || this.child !== proc) {
        throw new Error(`ZooKeeper ${this.id} exited while starting on ${this.port}:\n${this.log}`);
      }
      if (Date.now() > until) {
        throw new Error(
          `ZooKeeper ${this.id} did not serve on ${this.port} within ${this.startTimeoutMs} ms:\n${this.log}`,
        );
      }
      await sleep(100);
    }
  }

  async start(): Promise<void> {
    this.spawn();
    await this.waitServing();
  }

  async stop(options: { hard?: boolean } = {}): Promise<void> {
    const proc = this.child;
    if (proc === null) return;
    this.child = null;
    const exited = new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    proc.kill(options.hard ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Starts the servers and resolves once every one serves. */
export async function startLocalZooKeeper(options: LocalZooKeeperOptions): Promise<LocalZooKeeper> {
  const size = options.size;
  if (!Number.isInteger(size) || size < 1 || size > 9) throw new Error('ZooKeeper size must be 1 to 9');
  killAllOnExit();
  const tick = String(options.tickMs ?? 2000);
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const ports: number[] = [];
  for (let i = 0; i < size; i++) ports.push(options.ports?.[i] ?? (await freePort(HOST)));
  const servers: ServerProcess[] = [];
  if (size === 1) {
    const dir = join(options.dir, 'zk-1');
    mkdirSync(dir, { recursive: true });
    servers.push(new ServerProcess(1, ports[0]!, ['start', String(ports[0]), dir, tick], startTimeoutMs));
  } else {
    const members: string[] = [];
    for (const port of ports) members.push(`${port}:${await freePort(HOST)}:${await freePort(HOST)}`);
    for (let id = 1; id <= size; id++) {
      const dir = join(options.dir, `zk-${id}`);
      const args = ['member', String(id), dir, members.join(','), tick];
      servers.push(new ServerProcess(id, ports[id - 1]!, args, startTimeoutMs));
    }
  }
  const stop = async (stopOptions: { hard?: boolean } = {}): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop(stopOptions)));
  };
  try {
    for (const server of servers) server.spawn();
    await Promise.all(servers.map((s) => s.waitServing()));
  } catch (error) {
    await stop({ hard: true });
    throw error;
  }
  return {
    connectString: ports.map((p) => `${HOST}:${p}`).join(','),
    servers,
    stop,
  };
}
