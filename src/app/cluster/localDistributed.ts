import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type ServerProcess, spawnChatServer, stopProcess } from './localCluster.js';
import { type RunningNginx, startNginx } from './nginx.js';
import { chatGatewayBin, chatServiceBin, packageRoot } from './paths.js';

export interface LocalDistributedOptions {
  gateways: number;
  /** Message-service processes; user, friend and group run together in one more process. */
  messageNodes: number;
  /** Where clients connect: Nginx, or the first gateway with `nginx: false`. */
  host: string;
  port: number;
  nginx: boolean;
  db: string;
  redis: string;
  redisPrefix: string;
  /** ZooKeeper's port (a private standalone server with its data in `prefix`). */
  zookeeperPort: number;
  logLevel: string;
  /** Private directory for ZooKeeper's data and Nginx's config, pid and logs. */
  prefix: string;
  onOutput?: (name: string, line: string) => void;
  /** More chat-gateway flags for every gateway (e.g. `['--rate', '1000000']`). */
  extraGatewayArgs?: readonly string[];
}

export interface LocalDistributed {
  readonly address: { host: string; port: number };
  readonly gateways: ServerProcess[];
  readonly services: ServerProcess[];
  readonly zookeeper: string;
  stop(): Promise<void>;
}

/** One `ruok` probe: true when ZooKeeper answers `imok`. */
function ruok(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('ruok'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('imok')) done(true);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(text.includes('imok')));
  });
}

/** A private standalone ZooKeeper (scripts/zookeeper.sh), resolved once it answers. */
async function startZooKeeper(port: number, dataDir: string): Promise<ChildProcess> {
  const child = spawn('bash', [join(packageRoot(), 'scripts/zookeeper.sh'), 'start', String(port), dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let errors = '';
  child.stderr!.on('data', (c: Buffer) => {
    errors = (errors + c.toString()).slice(-2000);
  });
  for (let waited = 0; !(await ruok(port)); waited += 200) {
    if (child.exitCode !== null) throw new Error(`zookeeper exited: ${errors}`);
    if (waited > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`zookeeper did not answer on ${port} within 60 s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return child;
}

/**
 * The distributed chat server on one machine: a private ZooKeeper, a chat-service process with
 * the user, friend and group services, N message-service processes, M gateways and (unless
 * `nginx: false`) a private Nginx stream in front of the gateways.
 */
export async function startLocalDistributed(options: LocalDistributedOptions): Promise<LocalDistributed> {
  const zookeeper = `127.0.0.1:${options.zookeeperPort}`;
  const zk = await startZooKeeper(options.zookeeperPort, join(options.prefix, 'zookeeper'));
  const services: ServerProcess[] = [];
  const gateways: ServerProcess[] = [];
  let nginx: RunningNginx | null = null;
  const common = ['--zookeeper', zookeeper, '--redis', options.redis, '--redis-prefix', options.redisPrefix];
  const stopAll = async (signal: NodeJS.Signals): Promise<void> => {
    await nginx?.stop();
    await Promise.all(gateways.map((g) => stopProcess(g.process, signal)));
    await Promise.all(services.map((s) => stopProcess(s.process, signal)));
    await stopProcess(zk, signal);
  };
  try {
    const lists = ['user,friend,group', ...Array.from({ length: options.messageNodes }, () => 'message')];
    for (const [i, list] of lists.entries()) {
      const name = i === 0 ? 'users' : `message-${i}`;
      const args = ['--services', list, '--db', options.db, '--log-level', options.logLevel, ...common];
      const started = await spawnChatServer(args, (line) => options.onOutput?.(name, line), chatServiceBin());
      services.push({ ...started, index: i });
    }
    for (let i = 0; i < options.gateways; i++) {
      const direct = !options.nginx && i === 0;
      const args = [
        '--host',
        direct ? options.host : '127.0.0.1',
        '--port',
        direct ? String(options.port) : '0',
        '--server-id',
        `gateway-${i}`,
        '--log-level',
        options.logLevel,
        ...common,
      ];
      const started = await spawnChatServer(
        args,
        (line) => options.onOutput?.(`gateway-${i}`, line),
        chatGatewayBin(),
      );
      gateways.push({ ...started, index: i });
    }
    if (options.nginx) {
      nginx = await startNginx({
        prefix: options.prefix,
        listenHost: options.host,
        listenPort: options.port,
        upstreams: gateways.map((g) => ({ host: '127.0.0.1', port: g.port })),
      });
    }
  } catch (error) {
    await stopAll('SIGKILL');
    throw error;
  }
  return {
    address: { host: options.host, port: options.port },
    gateways,
    services,
    zookeeper,
    stop: () => stopAll('SIGTERM'),
  };
}
