/**
 * bench/distributed: the bench/chat load (N clients in a ring, one-to-one messages to online
 * peers, `window` in flight each; bench/chat/load.js as a child process) in one run against
 *   (a) chat-server                       one process, MySQL store
 *   (b) 1 gateway + 1 node of each service  chat-gateway → chat-service (user,friend,group) and
 *                                         chat-service (message), ZooKeeper, Redis
 *   (c) 2 gateways + 2 message nodes      the same with two of each, clients spread evenly over
 *                                         the gateways as discovering clients spread (unit2), or
 *                                         behind the private Nginx (unit2nginx)
 * and prints msgs/s, p50/p99 and the ratio to (a), then where the CPU time of a message goes:
 * each process role's CPU time over the measured window per delivered message (MySQL and Redis
 * are shared with the rest of the machine and not counted).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/app/bin/lifecycle.js';
import { spawnChatServer, stopProcess } from '../../src/app/cluster/localCluster.js';
import { startLocalDistributed } from '../../src/app/cluster/localDistributed.js';
import { ensureNginxInstalled } from '../../src/app/cluster/nginx.js';
import {
  dropDatabases,
  fmt,
  type LoadResult,
  measureRing,
  parseRingOptions,
  type RunningTarget,
} from '../lib/ringLoad.js';

const options = parseRingOptions(process.argv.slice(2), 'bench:distributed', 'server,unit1,unit2');
const { clients, seconds, windowSize, rounds, configs } = options;
const groupMode =
  options.groupSize > 0 ? `; ${options.groupShare}% of sends to groups of ${options.groupSize}` : '';
const runId = `${process.pid}_${Date.now().toString(36)}`;

const LABELS: Record<string, string> = {
  server: '(a) chat-server',
  unit1: '(b) 1 gateway + 1 of each',
  unit2: '(c) 2 gateways + 2 message',
  unit2nginx: '(c) the same behind Nginx',
};
for (const c of configs) {
  if (!(c in LABELS)) {
    process.stderr.write(`unknown config '${c}' (--help lists them)\n`);
    process.exit(2);
  }
}

/** Process roles for the CPU table, from their command lines. */
function classify(argv: readonly string[]): string | null {
  const joined = argv.join(' ');
  if (joined.includes('chat-server.js')) return 'chat-server';
  if (joined.includes('chat-gateway.js')) return 'gateways';
  if (joined.includes('chat-service.js'))
    return argv[argv.indexOf('--services') + 1] === 'message' ? 'message nodes' : 'user/friend/group';
  if (argv[0]?.includes('nginx') === true) return 'nginx';
  if (joined.includes('zookeeper')) return 'zookeeper';
  return null; // the load generator reports its own CPU time (it exits as its window ends)
}
const ROLES = [
  'chat-server',
  'gateways',
  'message nodes',
  'user/friend/group',
  'nginx',
  'zookeeper',
  'clients (load)',
];

/** Counters of chat-service's "message appends" lines (see src/app/distributed/messageStats.ts). */
const APPEND_COUNTERS = [
  'appends',
  'predictedRuns',
  'readingRuns',
  'missed',
  'fenced',
  // Group fan-outs (src/app/distributed/FanoutDriver.ts): sent, of those run in process, sent again by the sweep.
  'fanoutsSent',
  'fanoutsLocal',
  'fanoutsResent',
] as const;

const databases: string[] = [];
let round = 0;

function database(config: string): string {
  const name = `bench_dist_${runId}_${config}_${round}`;
  databases.push(name);
  return `${options.mysql}/${name}`;
}

async function start(config: string): Promise<RunningTarget> {
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
  const two = config.startsWith('unit2');
  const nginx = config === 'unit2nginx';
  const dir = mkdtempSync(join(tmpdir(), 'bench-distributed-'));
  // The message nodes' append statistics (chat-service --stats-interval), summed over the run.
  const appends: Record<string, number> = Object.fromEntries(APPEND_COUNTERS.map((k) => [k, 0]));
  const onServiceLine = (name: string, line: string): void => {
    if (name.startsWith('message') && line.includes('message appends')) {
      for (const key of APPEND_COUNTERS)
        appends[key]! += Number(new RegExp(`${key}=(\\d+)`).exec(line)?.[1] ?? 0);
      return;
    }
    onLine(`[${name}] ${line}`);
  };
  const port = await freePort('127.0.0.1');
  const unit = await startLocalDistributed({
    gateways: two ? 2 : 1,
    messageNodes: two ? 2 : 1,
    host: '127.0.0.1',
    port,
    nginx,
    db: database(config),
    redis: options.redis,
    redisPrefix: `bench-${runId}-${config}-${round}`,
    zookeeperPort: await freePort('127.0.0.1'),
    logLevel: 'warn',
    prefix: dir,
    onOutput: onServiceLine,
    extraGatewayArgs: ['--rate', '1000000', '--idle-timeout', '0'],
    extraMessageArgs: ['--stats-interval', '1', '--log-level', 'info'],
  });
  return {
    // Without Nginx, `port` is the first gateway's: the clients use every gateway directly.
    port: nginx ? port : unit.gateways.map((g) => g.port),
    counters: () => ({ ...appends }),
    stop: async () => {
      await unit.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    output,
  };
}

async function main(): Promise<void> {
  if (configs.includes('unit2nginx')) ensureNginxInstalled();
  const all: Record<string, LoadResult[]> = Object.fromEntries(configs.map((c) => [c, []]));
  try {
    for (round = 0; round < rounds; round++) {
      for (const config of configs)
        all[config]!.push(await measureRing(LABELS[config]!, () => start(config), options, classify));
    }
  } finally {
    await dropDatabases(options.mysql, databases).catch((error: unknown) =>
      process.stderr.write(`cleanup: ${String(error)}\n`),
    );
  }
  const results: Record<string, LoadResult> = {};
  for (const config of configs) {
    results[config] = all[config]!.reduce((a, b) => (b.deliveredPerSec > a.deliveredPerSec ? b : a));
  }
  console.log(
    `bench/distributed: ${clients} clients (ring, one-to-one to online peers${groupMode}), window ${windowSize}, ` +
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
  console.log('  CPU µs per delivered message, by process (measured window of the round shown above):');
  console.log(
    `  ${'configuration'.padEnd(30)} ${ROLES.map((r) => r.padStart(r.length + 1)).join('')}  total`,
  );
  for (const config of configs) {
    const r = results[config]!;
    const messages = r.deliveredPerSec * r.seconds;
    let total = 0;
    const cells = ROLES.map((role) => {
      const ms = role === 'clients (load)' ? r.loadCpuMs : r.cpuMs?.get(role);
      if (ms !== undefined) total += ms;
      return (ms === undefined ? '-' : fmt((ms * 1000) / messages, 0)).padStart(role.length + 1);
    });
    console.log(`  ${LABELS[config]!.padEnd(30)} ${cells.join('')}  ${fmt((total * 1000) / messages, 0)}`);
  }
  console.log(
    "  Message nodes' append transactions over the whole round shown (chat-service --stats-interval):",
  );
  for (const config of configs) {
    const c = results[config]!.counters;
    if (c === undefined) continue;
    console.log(
      `  ${LABELS[config]!.padEnd(30)} ${c.appends} commits: ${c.predictedRuns} predicted, ${c.readingRuns} reading ` +
        `first, ${c.missed} predictions missed, ${c.fenced} fenced; ${c.fanoutsSent} group fan-outs ` +
        `(${c.fanoutsLocal} in process, ${c.fanoutsResent} sent again)`,
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
