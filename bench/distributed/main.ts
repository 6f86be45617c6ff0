/**
 * bench/distributed: the bench/chat load (N clients in a ring, one-to-one messages to online
 * peers, `window` in flight each; bench/chat/load.js as a child process) in one run against
 *   (a) chat-server                       one process, MySQL store
 *   (b) 1 gateway + 1 node of each service  chat-gateway → chat-service (user,friend,group) and
 *                                         chat-service (message), ZooKeeper, Redis
 *   (c) 2 gateways + 2 message nodes      the same with two of each, behind the private Nginx
 * and prints msgs/s, p50/p99 and the ratio to (a).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { spawnChatServer, stopProcess } from '../../src/app/cluster/localCluster.js';
import { startLocalDistributed } from '../../src/app/cluster/localDistributed.js';
import { ensureNginxInstalled } from '../../src/app/cluster/nginx.js';
import { parseArgs, positiveInt } from '../lib/args.js';
import { runJson } from '../lib/spawn.js';

const help = `usage: npm run bench:distributed -- [options]
  --clients 100          logged-in clients (a ring: each sends to the next)
  --seconds 6            measured seconds per configuration (after 1 s warm-up)
  --window 2             messages in flight per client
  --rounds 2             rounds over all configurations (interleaved); each shows its best round
  --configs server,unit1,unit2
  --mysql mysql://root@127.0.0.1:3306
  --redis redis://127.0.0.1:6379
`;
const args = parseArgs(
  process.argv.slice(2),
  {
    clients: '100',
    seconds: '6',
    window: '2',
    rounds: '2',
    configs: 'server,unit1,unit2',
    mysql: 'mysql://root@127.0.0.1:3306',
    redis: 'redis://127.0.0.1:6379',
  },
  help,
);
const clients = positiveInt(args.clients, 'clients');
const seconds = positiveInt(args.seconds, 'seconds');
const windowSize = positiveInt(args.window, 'window');
const rounds = positiveInt(args.rounds, 'rounds');
const configs = args.configs!.split(',');
const loadScript = fileURLToPath(new URL('../chat/load.js', import.meta.url));
const runId = `${process.pid}_${Date.now().toString(36)}`;

interface LoadResult {
  clients: number;
  deliveredPerSec: number;
  ackedPerSec: number;
  failed: number;
  p50: number;
  p99: number;
}

const LABELS: Record<string, string> = {
  server: '(a) chat-server',
  unit1: '(b) 1 gateway + 1 of each',
  unit2: '(c) 2 gateways + 2 message',
};
for (const c of configs) {
  if (!(c in LABELS)) {
    process.stderr.write(`unknown config '${c}'\n${help}`);
    process.exit(2);
  }
}

const databases: string[] = [];
let round = 0;

function database(config: string): string {
  const name = `bench_dist_${runId}_${config}_${round}`;
  databases.push(name);
  return `${args.mysql}/${name}`;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

interface Running {
  port: number;
  stop: () => Promise<void>;
  output: () => string;
}

async function start(config: string): Promise<Running> {
  const lines: string[] = [];
  const onLine = (line: string): void => {
    lines.push(line);
    if (lines.length > 40) lines.shift();
  };
  const output = (): string => lines.join('\n');
  if (config === 'server') {
    const server = await spawnChatServer(
      [
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--db',
        database(config),
        '--log-level',
        'warn',
        '--rate',
        '1000000',
        '--idle-timeout',
        '0',
      ],
      onLine,
    );
    return { port: server.port, stop: () => stopProcess(server.process), output };
  }
  const two = config === 'unit2';
  const dir = mkdtempSync(join(tmpdir(), 'bench-distributed-'));
  const port = await freePort();
  const unit = await startLocalDistributed({
    gateways: two ? 2 : 1,
    messageNodes: two ? 2 : 1,
    host: '127.0.0.1',
    port,
    nginx: two,
    db: database(config),
    redis: args.redis!,
    redisPrefix: `bench-${runId}-${config}-${round}`,
    zookeeperPort: await freePort(),
    logLevel: 'warn',
    prefix: dir,
    onOutput: (name, line) => onLine(`[${name}] ${line}`),
    extraGatewayArgs: ['--rate', '1000000', '--idle-timeout', '0'],
  });
  return {
    port,
    stop: async () => {
      await unit.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    output,
  };
}

async function measure(config: string): Promise<LoadResult> {
  process.stderr.write(`${LABELS[config]}: starting\n`);
  const running = await start(config);
  try {
    return await runJson<LoadResult>(loadScript, [
      '--port',
      String(running.port),
      '--clients',
      String(clients),
      '--seconds',
      String(seconds),
      '--window',
      String(windowSize),
    ]);
  } catch (error) {
    process.stderr.write(`${LABELS[config]} failed; output:\n${running.output()}\n`);
    throw error;
  } finally {
    await running.stop();
  }
}

async function dropDatabases(): Promise<void> {
  const conn = await mysql.createConnection(args.mysql!);
  try {
    for (const name of databases) await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await conn.end();
  }
}

const fmt = (n: number | undefined, digits = 1): string =>
  n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : '-';

async function main(): Promise<void> {
  if (configs.includes('unit2')) ensureNginxInstalled();
  const all: Record<string, LoadResult[]> = Object.fromEntries(configs.map((c) => [c, []]));
  try {
    for (round = 0; round < rounds; round++) {
      for (const config of configs) all[config]!.push(await measure(config));
    }
  } finally {
    await dropDatabases().catch((error: unknown) => process.stderr.write(`cleanup: ${String(error)}\n`));
  }
  const results: Record<string, LoadResult> = {};
  for (const config of configs) {
    results[config] = all[config]!.reduce((a, b) => (b.deliveredPerSec > a.deliveredPerSec ? b : a));
  }
  console.log(
    `bench/distributed: ${clients} clients (ring, one-to-one to online peers), window ${windowSize}, ` +
      `${seconds} s measured per configuration after 1 s warm-up, best of ${rounds} interleaved rounds; ` +
      `MySQL store; node ${process.version}; ${availableParallelism()} cores shared by everything`,
  );
  console.log(
    `  ${'configuration'.padEnd(30)} ${'msgs/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}  failed  vs (a)  msgs/s per round`,
  );
  const base = results.server;
  for (const config of configs) {
    const r = results[config]!;
    const ratio = base === undefined ? '-' : `${fmt(r.deliveredPerSec / base.deliveredPerSec, 2)}x`;
    const perRound = all[config]!.map((x) => fmt(x.deliveredPerSec, 0)).join(' / ');
    console.log(
      `  ${LABELS[config]!.padEnd(30)} ${fmt(r.deliveredPerSec, 0).padStart(9)} ${fmt(r.p50, 2).padStart(8)} ` +
        `${fmt(r.p99, 2).padStart(8)}  ${String(r.failed).padStart(6)}  ${ratio.padStart(6)}  ${perRound}`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench/distributed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
