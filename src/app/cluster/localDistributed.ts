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
  /** ZooKeeper's client port: the first member's; the others take the next ports (0: any free ports). */
  zookeeperPort: number;
  /** ZooKeeper servers: 1 (standalone) or 3 (an ensemble: any one may be down). Default 1. */
  zookeeperNodes?: number;
  logLevel: string;
  /** Private directory for ZooKeeper's data and Nginx's config, pid and logs. */
  prefix: string;
  onOutput?: (name: string, line: string) => void;
  /** More chat-gateway flags for every gateway (e.g. `['--rate', '1000000']`). */
  extraGatewayArgs?: readonly string[];
  /** More chat-service flags for every message node (e.g. `['--stats-interval', '1']`). */
  extraMessageArgs?: readonly string[];
  /** Processes serving user, friend and group (each all three). Default 1. */
  userNodes?: number;
  /** ZooKeeper's tick (sessions may last 2 to 20 ticks). Default 2000 ms. */
  zookeeperTickMs?: number;
  /** `--zk-session-timeout` of every gateway and service: how long a killed one stays listed. */
  zkSessionTimeoutMs?: number;
  /** Gateway k serves Prometheus metrics on this port + k. Default: no metrics. */
  metricsPort?: number;
}

interface Spec {
  name: string;
  args: string[];
}

export interface LocalDistributed {
  readonly address: { host: string; port: number };
  readonly gateways: ServerProcess[];
  readonly services: ServerProcess[];
  /** The connect string every component was given ("host:port[,host:port…]"). */
  readonly zookeeper: string;
  /** The ZooKeeper servers, to stop and start one by one. */
  readonly zookeeperServers: LocalZooKeeper;
  /**
   * Starts gateway or service `index` again with its original flags, once its process has
   * exited (after a kill or a stop); replaces its entry (a gateway on port 0 gets a new port).
   */
  respawn(kind: 'gateway' | 'service', index: number): Promise<ServerProcess>;
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
    // 0: free ports (tests); else consecutive ports from zookeeperPort.
    ...(options.zookeeperPort === 0
      ? {}
      : { ports: Array.from({ length: nodes }, (_, i) => options.zookeeperPort + i) }),
    ...(options.zookeeperTickMs === undefined ? {} : { tickMs: options.zookeeperTickMs }),
  });
  const zookeeper = zk.connectString;
  const services: ServerProcess[] = [];
  const gateways: ServerProcess[] = [];
  let nginx: RunningNginx | null = null;
  const common = ['--zookeeper', zookeeper, '--redis', options.redis, '--redis-prefix', options.redisPrefix];
  if (options.zkSessionTimeoutMs !== undefined)
    common.push('--zk-session-timeout', String(options.zkSessionTimeoutMs));
  /** How each process was started, for respawn. */
  const specs = { gateway: [] as Spec[], service: [] as Spec[] };
  const spawnOne = async (kind: 'gateway' | 'service', index: number): Promise<ServerProcess> => {
    const spec = specs[kind][index]!;
    const bin = kind === 'gateway' ? chatGatewayBin() : chatServiceBin();
    const started = await spawnChatServer(spec.args, (line) => options.onOutput?.(spec.name, line), bin);
    const entry = { ...started, index };
    (kind === 'gateway' ? gateways : services)[index] = entry;
    return entry;
  };
  const stopAll = async (signal: NodeJS.Signals): Promise<void> => {
    await nginx?.stop();
    await Promise.all(gateways.map((g) => stopProcess(g.process, signal)));
    await Promise.all(services.map((s) => stopProcess(s.process, signal)));
    await zk.stop({ hard: signal === 'SIGKILL' });
  };
  try {
    const userNodes = options.userNodes ?? 1;
    const lists = [
      ...Array.from({ length: userNodes }, () => 'user,friend,group'),
      ...Array.from({ length: options.messageNodes }, () => 'message'),
    ];
    for (const [i, list] of lists.entries()) {
      const name =
        i < userNodes ? (userNodes === 1 ? 'users' : `users-${i}`) : `message-${i - userNodes + 1}`;
      const args = ['--services', list, '--db', options.db, '--log-level', options.logLevel, ...common];
      if (i >= userNodes) args.push(...(options.extraMessageArgs ?? []));
      specs.service.push({ name, args });
      await spawnOne('service', i);
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
        ...(options.metricsPort === undefined ? [] : ['--metrics-port', String(options.metricsPort + i)]),
        ...(options.extraGatewayArgs ?? []),
      ];
      specs.gateway.push({ name: `gateway-${i}`, args });
      await spawnOne('gateway', i);
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
    respawn: (kind, index) => {
      const old = (kind === 'gateway' ? gateways : services)[index];
      if (old === undefined || (old.process.exitCode === null && old.process.signalCode === null)) {
        return Promise.reject(new Error(`${kind} ${index} is not a stopped process`));
      }
      return spawnOne(kind, index);
    },
    stop: () => stopAll('SIGTERM'),
  };
}
