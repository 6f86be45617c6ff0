/**
 * bench/cluster: the bench/chat load (N clients in a ring, one-to-one messages to online
 * peers, `window` in flight each; bench/chat/load.js as a child process) against the
 * clustered chat server (MySQL store + Redis) in one run:
 *   - 1 process                 chat-server --redis … (the process serves; no workers)
 *   - 1 process via Nginx       the same behind the private Nginx: the cost of the hop
 *   - 2 processes               chat-server --redis … --workers 2 (one port, shared socket)
 *   - 2 servers via Nginx       two chat-server processes behind Nginx (least_conn)
 * and prints msgs/s and latency side by side, the scaling ratios and the Nginx hop's cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/app/bin/lifecycle.js';
import {
  type ServerProcess,
  spawnChatServer,
  startLocalCluster,
  stopProcess,
} from '../../src/app/cluster/localCluster.js';
import { ensureNginxInstalled, type RunningNginx, startNginx } from '../../src/app/cluster/nginx.js';
import {
  dropDatabases,
  fmt,
  type LoadResult,
  measureRing,
  parseRingOptions,
  type RunningTarget,
} from '../lib/ringLoad.js';

const options = parseRingOptions(
  process.argv.slice(2),
  'bench:cluster',
  'single,single-nginx,workers2,servers2-nginx',
);
const { clients, seconds, windowSize, rounds, configs } = options;
const runId = `${process.pid}_${Date.now().toString(36)}`;

const LABELS: Record<string, string> = {
  single: '1 process',
  'single-nginx': '1 process via Nginx',
  workers2: '2 processes (--workers 2)',
  'servers2-nginx': '2 servers via Nginx',
};
for (const c of configs) {
  if (!(c in LABELS)) {
    process.stderr.write(`unknown config '${c}' (--help lists them)\n`);
    process.exit(2);
  }
}

const databases: string[] = [];

/** Every server flag but the listen port; one fresh database and Redis prefix per configuration. */
function serverArgs(config: string, serverId: string): string[] {
  const name = `bench_cluster_${runId}_${config.replace(/\W/g, '_')}`;
  if (!databases.includes(name)) databases.push(name);
  return [
    '--host',
    '127.0.0.1',
    '--db',
    `${options.mysql}/${name}`,
    '--redis',
    options.redis,
    '--redis-prefix',
    `bench-${runId}-${config}`,
    '--server-id',
    serverId,
    '--log-level',
    'warn',
    '--rate',
    '1000000',
    '--idle-timeout',
    '0',
  ];
}

/** Server output is kept (last lines) and shown only when something fails. */
function collector(): { onLine: (line: string) => void; tail: () => string } {
  const lines: string[] = [];
  return {
    onLine: (line) => {
      lines.push(line);
      if (lines.length > 40) lines.shift();
    },
    tail: () => lines.join('\n'),
  };
}

async function start(config: string): Promise<RunningTarget> {
  const out = collector();
  if (config === 'single' || config === 'workers2' || config === 'single-nginx') {
    const workers = config === 'workers2' ? '2' : '0';
    const server: ServerProcess = await spawnChatServer(
      [...serverArgs(config, 'b0'), '--port', '0', '--workers', workers],
      out.onLine,
    );
    if (config !== 'single-nginx') {
      return { port: server.port, stop: () => stopProcess(server.process), output: out.tail };
    }
    const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-nginx-'));
    let nginx: RunningNginx;
    const port = await freePort('127.0.0.1');
    try {
      nginx = await startNginx({
        prefix: dir,
        listenHost: '127.0.0.1',
        listenPort: port,
        upstreams: [{ host: '127.0.0.1', port: server.port }],
      });
    } catch (error) {
      await stopProcess(server.process);
      throw error;
    }
    return {
      port,
      stop: async () => {
        await nginx.stop();
        await stopProcess(server.process);
        rmSync(dir, { recursive: true, force: true });
      },
      output: out.tail,
    };
  }
  // servers2-nginx
  const dir = mkdtempSync(join(tmpdir(), 'bench-cluster-nginx-'));
  const port = await freePort('127.0.0.1');
  const common = serverArgs(config, 'unused');
  const db = common[common.indexOf('--db') + 1]!;
  const cluster = await startLocalCluster({
    servers: 2,
    host: '127.0.0.1',
    port,
    basePort: 0,
    db,
    redis: options.redis,
    redisPrefix: `bench-${runId}-${config}`,
    workersPerServer: 0,
    logLevel: 'warn',
    prefix: dir,
    onServerOutput: (i, line) => out.onLine(`[server-${i}] ${line}`),
    extraServerArgs: ['--rate', '1000000', '--idle-timeout', '0'],
  });
  return {
    port,
    stop: async () => {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    output: out.tail,
  };
}

const signed = (n: number): string => (n >= 0 ? `+${fmt(n, 2)}` : fmt(n, 2));

async function main(): Promise<void> {
  if (configs.some((c) => c.includes('nginx'))) ensureNginxInstalled();
  const all: Record<string, LoadResult[]> = Object.fromEntries(configs.map((c) => [c, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const config of configs)
        all[config]!.push(await measureRing(LABELS[config]!, () => start(config), options));
    }
  } finally {
    await dropDatabases(options.mysql, databases).catch((error: unknown) =>
      process.stderr.write(`cleanup: ${String(error)}\n`),
    );
  }
  // Best round (most msgs/s): the one least disturbed by whatever else shares the machine.
  const results: Record<string, LoadResult> = {};
  for (const config of configs) {
    results[config] = all[config]!.reduce((a, b) => (b.deliveredPerSec > a.deliveredPerSec ? b : a));
  }
  const cores = availableParallelism();
  console.log(
    `bench/cluster: ${clients} clients (ring, one-to-one to online peers), window ${windowSize}, ` +
      `${seconds} s measured per configuration after 1 s warm-up, best of ${rounds} interleaved rounds; ` +
      `MySQL store + Redis; node ${process.version}`,
  );
  console.log(
    `  ${'configuration'.padEnd(28)} ${'msgs/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  failed  msgs/s per round`,
  );
  for (const config of configs) {
    const r = results[config]!;
    const perRound = all[config]!.map((x) => fmt(x.deliveredPerSec, 0)).join(' / ');
    console.log(
      `  ${LABELS[config]!.padEnd(28)} ${fmt(r.deliveredPerSec, 0).padStart(9)} ${fmt(r.p50, 2).padStart(8)} ` +
        `${fmt(r.p99, 2).padStart(8)}  ${String(r.failed).padStart(6)}  ${perRound}`,
    );
  }
  const base = results.single;
  if (base !== undefined) {
    for (const config of ['workers2', 'servers2-nginx']) {
      const r = results[config];
      if (r === undefined) continue;
      console.log(
        `  scaling ${LABELS[config]} / 1 process: ${fmt(r.deliveredPerSec / base.deliveredPerSec, 2)}x msgs/s, ` +
          `p99 ${fmt(r.p99, 2)} vs ${fmt(base.p99, 2)} ms`,
      );
    }
    const hop = results['single-nginx'];
    if (hop !== undefined) {
      console.log(
        `  Nginx hop (1 process via Nginx vs direct): ${fmt(hop.deliveredPerSec / base.deliveredPerSec, 2)}x msgs/s, ` +
          `p50 ${signed(hop.p50 - base.p50)} ms, p99 ${signed(hop.p99 - base.p99)} ms`,
      );
    }
  }
  const w2 = results.workers2;
  const s2 = results['servers2-nginx'];
  if (w2 !== undefined && s2 !== undefined) {
    console.log(
      `  2 servers via Nginx vs --workers 2 (same process count, Nginx hop instead of a shared socket): ` +
        `${fmt(s2.deliveredPerSec / w2.deliveredPerSec, 2)}x msgs/s`,
    );
  }
  console.log(
    `  note: this machine has ${cores} cores, shared by the chat servers, MariaDB, Redis, Nginx AND the ` +
      'load generator (one process, which also measures latency end to end); more server processes ' +
      'cannot scale past the cores left to them, so the ratios here are a floor, not what more machines would give. ' +
      'Other jobs on the machine add noise: compare configurations within one run, and repeat.',
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench/cluster: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
