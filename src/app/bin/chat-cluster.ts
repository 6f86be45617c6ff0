#!/usr/bin/env node
/**
 * chat-cluster: starts a local cluster — N chat servers sharing one MySQL database and one
 * Redis, behind a private Nginx TCP load balancer — and stops it all on Ctrl-C.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster } from '../cluster/localCluster.js';
import { ensureNginxInstalled } from '../cluster/nginx.js';

const HELP = `Usage: npm run cluster -- [options]   (or: chat-cluster [options])

Starts N chat servers (one store, one Redis) behind a private Nginx stream load balancer,
prints the address to connect to, and stops everything on Ctrl-C. Installs nginx with the
stream module (apt-get) if it is missing.

  --servers N        chat server processes                  (2)
  --host HOST        Nginx listen address                   (127.0.0.1)
  --port PORT        Nginx listen port                      (6000)
  --base-port PORT   servers listen on PORT, PORT+1, …      (7001; 0 = any free ports)
  --db URL           shared store                           (mysql://root@127.0.0.1:3306/chat_cluster)
  --redis URL        shared Redis                           (redis://127.0.0.1:6379)
  --redis-prefix P   Redis key prefix                       (chat)
  --workers N        worker processes per server            (0 = the server process serves)
  --log-level LEVEL  servers' log level                     (info)
  --metrics-port P   Prometheus metrics: server i on P + i × max(1, workers),
                     each of its workers on the next ports  (off)
  -h, --help         show this help
`;

const defaults: Record<string, string> = {
  servers: '2',
  host: '127.0.0.1',
  port: '6000',
  'base-port': '7001',
  db: 'mysql://root@127.0.0.1:3306/chat_cluster',
  redis: 'redis://127.0.0.1:6379',
  'redis-prefix': 'chat',
  workers: '0',
  'log-level': 'info',
  'metrics-port': '',
};

function parse(argv: string[]): Record<string, string> | 'help' {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    const key = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !(key in defaults)) throw new Error(`unknown option '${arg}' (see --help)`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`option ${arg} needs a value`);
    out[key] = value;
  }
  for (const key of ['servers', 'port', 'base-port', 'workers']) {
    const n = Number(out[key]);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new Error(`--${key} must be a small non-negative integer`);
  }
  if (Number(out.servers) < 1) throw new Error('--servers must be at least 1');
  const metrics = out['metrics-port']!;
  const needed = Number(out.servers) * Math.max(1, Number(out.workers));
  if (metrics !== '' && !(/^\d+$/.test(metrics) && Number(metrics) >= 1 && Number(metrics) + needed <= 65536))
    throw new Error('--metrics-port must be a port with room for one per server and worker');
  return out;
}

async function main(): Promise<number> {
  let opts: Record<string, string> | 'help';
  try {
    opts = parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`chat-cluster: ${(error as Error).message}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  ensureNginxInstalled();
  const prefix = mkdtempSync(join(tmpdir(), 'chat-cluster-'));
  process.stderr.write(`starting ${opts.servers} chat servers and nginx (files in ${prefix})\n`);
  const cluster = await startLocalCluster({
    servers: Number(opts.servers),
    host: opts.host!,
    port: Number(opts.port),
    basePort: Number(opts['base-port']),
    db: opts.db!,
    redis: opts.redis!,
    redisPrefix: opts['redis-prefix']!,
    workersPerServer: Number(opts.workers),
    logLevel: opts['log-level']!,
    ...(opts['metrics-port'] === '' ? {} : { metricsPort: Number(opts['metrics-port']) }),
    prefix,
    onServerOutput: (i, line) => process.stderr.write(`[server-${i}] ${line}\n`),
  });
  const list = cluster.servers.map((s) => `127.0.0.1:${s.port}`).join(', ');
  process.stdout.write(
    `cluster ready: connect to ${cluster.address.host}:${cluster.address.port} (servers ${list})\n`,
  );
  if (cluster.metricsUrls.length > 0) process.stdout.write(`metrics: ${cluster.metricsUrls.join(', ')}\n`);
  process.stdout.write('press Ctrl-C to stop\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stderr.write('stopping the cluster\n');
  await cluster.stop();
  rmSync(prefix, { recursive: true, force: true });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chat-cluster: ${error instanceof Error ? error.message : error}\n`);
    process.exit(1);
  },
);
