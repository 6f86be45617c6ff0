#!/usr/bin/env node
/**
 * chat-distributed (`npm run distributed`): the distributed chat server on one machine — a
 * private ZooKeeper, the chat services, gateways and a private Nginx in front — stopped on Ctrl-C.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalDistributed } from '../cluster/localDistributed.js';
import { ensureNginxInstalled } from '../cluster/nginx.js';

const HELP = `Usage: npm run distributed -- [options]   (or: chat-distributed [options])

Starts the distributed chat server: a private ZooKeeper (one server, or a three-node ensemble
with --zk 3), one chat-service process with the
user, friend and group services, N message-service processes, M gateways (chat-gateway) and a
private Nginx stream load balancer in front of them; prints the one address clients use, and
stops everything on Ctrl-C. Installs nginx (apt-get) if missing; ZooKeeper must be installed
(bash scripts/zookeeper.sh install).

  --gateways N        chat-gateway processes                     (2)
  --services N        message-service processes                  (2)
  --user-nodes N      processes serving user, friend and group   (1)
  --zk-session MS     ZooKeeper session of every gateway and service: a killed one is
                      noticed (its users free, its calls moved) after about this (2500)
  --no-nginx          no Nginx: clients connect to the first gateway at --host:--port
  --host HOST         the address clients use                    (127.0.0.1)
  --port PORT         its port                                   (6000)
  --db URL            shared store                               (mysql://root@127.0.0.1:3306/chat_distributed)
  --redis URL         presence and push routing                  (redis://127.0.0.1:6379)
  --redis-prefix P    Redis key prefix                           (chat-distributed)
  --zookeeper-port P  the private ZooKeeper's client port, 0 = free ports (2182)
                      (with --zk 3: its members use P, P+1, P+2)
  --zk N              ZooKeeper servers: 1 (standalone) or 3 (an ensemble; every component
                      gets all three addresses and survives any one down) (1)
  --log-level LEVEL   processes' log level                       (info)
  --metrics-port P    gateway k serves Prometheus metrics on
                      http://127.0.0.1:P+k/metrics               (off)
  -h, --help          show this help
`;

const defaults: Record<string, string> = {
  gateways: '2',
  services: '2',
  'user-nodes': '1',
  'zk-session': '2500',
  host: '127.0.0.1',
  port: '6000',
  db: 'mysql://root@127.0.0.1:3306/chat_distributed',
  redis: 'redis://127.0.0.1:6379',
  'redis-prefix': 'chat-distributed',
  'zookeeper-port': '2182',
  zk: '1',
  'log-level': 'info',
  'metrics-port': '',
};

function parse(argv: string[]): { values: Record<string, string>; nginx: boolean } | 'help' {
  const values = { ...defaults };
  let nginx = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return 'help';
    if (arg === '--no-nginx') {
      nginx = false;
      continue;
    }
    const key = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !(key in defaults)) throw new Error(`unknown option '${arg}' (see --help)`);
    const value = argv[++i];
    if (value === undefined) throw new Error(`option ${arg} needs a value`);
    values[key] = value;
  }
  for (const key of ['gateways', 'services', 'port', 'zookeeper-port']) {
    const n = Number(values[key]);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new Error(`--${key} must be a small non-negative integer`);
  }
  if (values.zk !== '1' && values.zk !== '3') throw new Error('--zk must be 1 or 3');
  const metrics = values['metrics-port']!;
  if (
    metrics !== '' &&
    !(/^\d+$/.test(metrics) && Number(metrics) >= 1 && Number(metrics) + Number(values.gateways) <= 65536)
  )
    throw new Error('--metrics-port must be a port with room for one per gateway');
  const userNodes = Number(values['user-nodes']);
  if (!Number.isInteger(userNodes) || userNodes < 1 || userNodes > 16)
    throw new Error('--user-nodes must be 1 to 16');
  const session = Number(values['zk-session']);
  // The servers run with a 1 s tick: sessions may last 2 to 20 s.
  if (!Number.isInteger(session) || session < 2000 || session > 20_000)
    throw new Error('--zk-session must be 2000 to 20000 (ms)');
  if (Number(values['zookeeper-port']) + Number(values.zk) - 1 > 65535)
    throw new Error('--zookeeper-port too high');
  if (Number(values.gateways) < 1 || Number(values.services) < 1) {
    throw new Error('--gateways and --services must be at least 1');
  }
  return { values, nginx };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`chat-distributed: ${(error as Error).message}\n`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const { values, nginx } = parsed;
  if (nginx) ensureNginxInstalled();
  const prefix = mkdtempSync(join(tmpdir(), 'chat-distributed-'));
  process.stderr.write(
    `starting zookeeper (${values.zk} server${values.zk === '1' ? '' : 's'}), services, ${values.gateways} gateways (files in ${prefix})\n`,
  );
  const unit = await startLocalDistributed({
    gateways: Number(values.gateways),
    messageNodes: Number(values.services),
    userNodes: Number(values['user-nodes']),
    zookeeperTickMs: 1000,
    zkSessionTimeoutMs: Number(values['zk-session']),
    host: values.host!,
    port: Number(values.port),
    nginx,
    db: values.db!,
    redis: values.redis!,
    redisPrefix: values['redis-prefix']!,
    zookeeperPort: Number(values['zookeeper-port']),
    zookeeperNodes: Number(values.zk),
    logLevel: values['log-level']!,
    ...(values['metrics-port'] === '' ? {} : { metricsPort: Number(values['metrics-port']) }),
    prefix,
    onOutput: (name, line) => process.stderr.write(`[${name}] ${line}\n`),
  });
  const gateways = unit.gateways.map((g) => `127.0.0.1:${g.port}`).join(', ');
  process.stdout.write(
    `distributed chat server ready: connect to ${unit.address.host}:${unit.address.port} (gateways ${gateways}; zookeeper ${unit.zookeeper})\n`,
  );
  process.stdout.write(`discovering clients: chat-client --discover zk://${unit.zookeeper}\n`);
  if (values['metrics-port'] !== '') {
    const base = Number(values['metrics-port']);
    const urls = unit.gateways.map((_, k) => `http://127.0.0.1:${base + k}/metrics`).join(', ');
    process.stdout.write(`gateway metrics: ${urls}\n`);
  }
  process.stdout.write('press Ctrl-C to stop\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stderr.write('stopping\n');
  await unit.stop();
  rmSync(prefix, { recursive: true, force: true });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chat-distributed: ${error instanceof Error ? error.message : error}\n`);
    process.exit(1);
  },
);
