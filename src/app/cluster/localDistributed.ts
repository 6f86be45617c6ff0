import { type ServerProcess, spawnChatServer, stopProcess } from './localCluster.js';
import { type LocalZooKeeper, startLocalZooKeeper } from './localZooKeeper.js';
import { type RunningNginx, startNginx } from './nginx.js';
import { chatGatewayBin, chatServiceBin } from './paths.js';

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
  /** ZooKeeper's client port: the first member's; the others take the next ports. */
  zookeeperPort: number;
  /** ZooKeeper servers: 1 (standalone) or 3 (an ensemble: any one may be down). Default 1. */
  zookeeperNodes?: number;
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
  /** The connect string every component was given ("host:port[,host:port…]"). */
  readonly zookeeper: string;
  /** The ZooKeeper servers, to stop and start one by one. */
  readonly zookeeperServers: LocalZooKeeper;
  stop(): Promise<void>;
}

/**
 * The distributed chat server on one machine: a private ZooKeeper (one server or an ensemble), a chat-service process with
 * the user, friend and group services, N message-service processes, M gateways and (unless
 * `nginx: false`) a private Nginx stream in front of the gateways.
 */
export async function startLocalDistributed(options: LocalDistributedOptions): Promise<LocalDistributed> {
  const nodes = options.zookeeperNodes ?? 1;
  const zk = await startLocalZooKeeper({
    size: nodes,
    dir: options.prefix,
    ports: Array.from({ length: nodes }, (_, i) => options.zookeeperPort + i),
  });
  const zookeeper = zk.connectString;
  const services: ServerProcess[] = [];
  const gateways: ServerProcess[] = [];
  let nginx: RunningNginx | null = null;
  const common = ['--zookeeper', zookeeper, '--redis', options.redis, '--redis-prefix', options.redisPrefix];
  const stopAll = async (signal: NodeJS.Signals): Promise<void> => {
    await nginx?.stop();
    await Promise.all(gateways.map((g) => stopProcess(g.process, signal)));
    await Promise.all(services.map((s) => stopProcess(s.process, signal)));
    await zk.stop({ hard: signal === 'SIGKILL' });
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
    zookeeperServers: zk,
    stop: () => stopAll('SIGTERM'),
  };
}
