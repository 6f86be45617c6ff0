import { type ChildProcess, spawn } from 'node:child_process';
import { type RunningNginx, startNginx } from './nginx.js';
import { chatServerBin } from './paths.js';

export interface LocalClusterOptions {
  servers: number;
  /** Where Nginx listens. */
  host: string;
  port: number;
  /** Chat servers listen on basePort, basePort+1, … (0 = free ports). */
  basePort: number;
  db: string;
  redis: string;
  redisPrefix: string;
  /** Worker processes per server (0 = the server process itself serves). */
  workersPerServer: number;
  logLevel: string;
  /** Private directory for Nginx's config, pid and logs. */
  prefix: string;
  /** Where server output goes. Default: dropped. */
  onServerOutput?: (index: number, line: string) => void;
  /** More chat-server flags for every server (e.g. `['--idle-timeout', '0']`). */
  extraServerArgs?: readonly string[];
  /**
   * Prometheus metrics from this port on: server i's on `metricsPort + i * max(1, workers)` (each
   * worker takes the next port). Default: no metrics.
   */
  metricsPort?: number;
}

/** Where server `index`'s (first) metrics endpoint is, with `metricsPort` set. */
export function clusterMetricsPort(
  options: Pick<LocalClusterOptions, 'metricsPort' | 'workersPerServer'>,
  index: number,
): number | undefined {
  if (options.metricsPort === undefined) return undefined;
  return options.metricsPort + index * Math.max(1, options.workersPerServer);
}

export interface ServerProcess {
  index: number;
  port: number;
  process: ChildProcess;
}

export interface LocalCluster {
  readonly servers: ServerProcess[];
  readonly nginx: RunningNginx;
  readonly address: { host: string; port: number };
  /** Every server's (and worker's) metrics endpoint; empty without `metricsPort`. */
  readonly metricsUrls: string[];
  stop(): Promise<void>;
}

/** Starts one chat-server process (or `bin`, another that prints the same line) and resolves once it prints its address. */
export function spawnChatServer(
  args: readonly string[],
  onLine?: (line: string) => void,
  bin: string = chatServerBin(),
): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`chat-server did not start:\n${seen}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString();
      seen += text;
      for (const line of text.split('\n')) if (line !== '') onLine?.(line);
      const m = /listening on (\S+):(\d+)/.exec(seen);
      if (m !== null) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.on('data', (c: Buffer) => onLine?.(c.toString().trimEnd()));
        resolve({ index: -1, port: Number(m[2]), process: child });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString();
      onLine?.(c.toString().trimEnd());
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chat-server exited with ${code} before listening:\n${seen}`));
    });
  });
}

export function stopProcess(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(signal);
  });
}

/** N chat servers sharing one store and one Redis, behind a private Nginx. */
export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < options.servers; i++) {
      const port = options.basePort === 0 ? 0 : options.basePort + i;
      const server = await spawnChatServer(
        [
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--db',
          options.db,
          '--redis',
          options.redis,
          '--redis-prefix',
          options.redisPrefix,
          '--workers',
          String(options.workersPerServer),
          '--server-id',
          `server-${i}`,
          '--log-level',
          options.logLevel,
          ...(options.metricsPort === undefined
            ? []
            : ['--metrics-port', String(clusterMetricsPort(options, i))]),
          ...(options.extraServerArgs ?? []),
        ],
        (line) => options.onServerOutput?.(i, line),
      );
      servers.push({ ...server, index: i });
    }
    const nginx = await startNginx({
      prefix: options.prefix,
      listenHost: options.host,
      listenPort: options.port,
      upstreams: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    });
    return {
      servers,
      nginx,
      address: { host: options.host, port: options.port },
      metricsUrls: servers.flatMap((s) => {
        const first = clusterMetricsPort(options, s.index);
        if (first === undefined) return [];
        return Array.from(
          { length: Math.max(1, options.workersPerServer) },
          (_, k) => `http://127.0.0.1:${first + k}/metrics`,
        );
      }),
      stop: async () => {
        await nginx.stop();
        await Promise.all(servers.map((s) => stopProcess(s.process)));
      },
    };
  } catch (error) {
    await Promise.all(servers.map((s) => stopProcess(s.process, 'SIGKILL')));
    throw error;
  }
}
