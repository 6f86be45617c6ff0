/**
 * What the multi-process chat benches (bench/cluster, bench/distributed) share: their common
 * options, one measured run of bench/chat's ring load against a started deployment, and the
 * cleanup of the databases they made.
 */
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { parseArgs, positiveInt } from './args.js';
import { type Classify, type CpuSnapshot, cpuByRole, snapshotCpu } from './processCpu.js';
import { runJson } from './spawn.js';

export interface LoadResult {
  clients: number;
  /** Length of the measured window. */
  seconds: number;
  deliveredPerSec: number;
  ackedPerSec: number;
  failed: number;
  p50: number;
  p99: number;
  /** The load generator's own CPU ms over the measured window. */
  loadCpuMs: number;
  /** CPU ms per process role over the measured window (measureRing with `classify`). */
  cpuMs?: Map<string, number>;
  /** What the deployment counted over the whole run (RunningTarget.counters), e.g. append runs. */
  counters?: Record<string, number>;
}

export interface RingOptions {
  clients: number;
  seconds: number;
  windowSize: number;
  rounds: number;
  configs: string[];
  mysql: string;
  redis: string;
  /** Groups of this many consecutive clients (0: one-to-one only) and the percent of sends to them. */
  groupSize: number;
  groupShare: number;
}

/** Parses the options every ring bench takes; `--help` prints `usage` with them. */
export function parseRingOptions(argv: string[], command: string, defaultConfigs: string): RingOptions {
  const help = `usage: npm run ${command} -- [options]
  --clients 100          logged-in clients (a ring: each sends to the next)
  --seconds 6            measured seconds per configuration (after 1 s warm-up)
  --window 2             messages in flight per client
  --group-size 0         also groups of G consecutive clients (0: one-to-one only)
  --group-share 20       with --group-size: percent of the sends that go to the sender's group
  --rounds 2             rounds over all configurations (interleaved); each shows its best round
  --configs ${defaultConfigs}
  --mysql mysql://root@127.0.0.1:3306
  --redis redis://127.0.0.1:6379
`;
  const args = parseArgs(
    argv,
    {
      clients: '100',
      seconds: '6',
      window: '2',
      rounds: '2',
      configs: defaultConfigs,
      mysql: 'mysql://root@127.0.0.1:3306',
      redis: 'redis://127.0.0.1:6379',
      'group-size': '0',
      'group-share': '20',
    },
    help,
  );
  return {
    clients: positiveInt(args.clients, 'clients'),
    seconds: positiveInt(args.seconds, 'seconds'),
    windowSize: positiveInt(args.window, 'window'),
    rounds: positiveInt(args.rounds, 'rounds'),
    configs: args.configs!.split(','),
    mysql: args.mysql!,
    redis: args.redis!,
    groupSize: Number(args['group-size']),
    groupShare: Number(args['group-share']),
  };
}

/** A deployment under test: the port clients use, how to stop it, what it printed. */
export interface RunningTarget {
  /** Where clients connect; several: client i uses the (i mod count)-th. */
  port: number | readonly number[];
  stop: () => Promise<void>;
  output: () => string;
  /** Counters the deployment reported while it ran (read after the load, before the stop). */
  counters?: () => Record<string, number>;
}

const loadScript = fileURLToPath(new URL('../chat/load.js', import.meta.url));

/**
 * Starts a deployment, runs the ring load against it once, and stops it whatever happens. With
 * `classify`, also the CPU time of this process's descendants, by role, over the measured window.
 */
export async function measureRing(
  label: string,
  start: () => Promise<RunningTarget>,
  options: RingOptions,
  classify?: Classify,
): Promise<LoadResult> {
  process.stderr.write(`${label}: starting\n`);
  const running = await start();
  let before: CpuSnapshot | null = null;
  let cpuMs: Map<string, number> | undefined;
  const onLine =
    classify === undefined
      ? undefined
      : (line: string): void => {
          if (line.trim() === 'measuring') before = snapshotCpu(process.pid, classify);
          else if (line.trim() === 'measured' && before !== null)
            cpuMs = cpuByRole(before, snapshotCpu(process.pid, classify));
        };
  try {
    const result = await runJson<LoadResult>(
      loadScript,
      [
        '--port',
        typeof running.port === 'number' ? String(running.port) : running.port.join(','),
        '--clients',
        String(options.clients),
        '--seconds',
        String(options.seconds),
        '--window',
        String(options.windowSize),
        '--group-size',
        String(options.groupSize),
        '--group-share',
        String(options.groupShare),
      ],
      onLine,
    );
    const counters = running.counters?.();
    return {
      ...result,
      ...(cpuMs === undefined ? {} : { cpuMs }),
      ...(counters === undefined ? {} : { counters }),
    };
  } catch (error) {
    process.stderr.write(`${label} failed; output:\n${running.output()}\n`);
    throw error;
  } finally {
    await running.stop();
  }
}

export async function dropDatabases(mysqlUrl: string, names: readonly string[]): Promise<void> {
  const conn = await mysql.createConnection(mysqlUrl);
  try {
    for (const name of names) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}

export const fmt = (n: number | undefined, digits = 1): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';
