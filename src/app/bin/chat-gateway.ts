#!/usr/bin/env node
/**
 * chat-gateway: the client-facing process of the distributed chat server (the seed's
 * ProxyService). It is a ChatServer — same connections, codecs, sessions and guarantees as
 * chat-server — whose ChatService calls the business services over mprpc, found in ZooKeeper.
 */
import { RpcChannel } from '../../rpc/index.js';
import { RedisCluster } from '../cluster/RedisCluster.js';
import { createRemoteServices } from '../distributed/RemoteServices.js';
import { SERVICE_KINDS, SERVICE_NAMES } from '../distributed/serviceProto.js';
import { ChatServer } from '../server/ChatServer.js';
import { parseServerArgs, SERVER_HELP, type ServerConfig } from '../server/config.js';
import { createLogger, type Logger } from '../server/logger.js';
import { ChatMetrics } from '../server/metrics.js';
import { type MetricsEndpoint, startMetricsEndpoint } from '../server/metricsEndpoint.js';
import { connectionOptionsOf } from '../server/serverOptions.js';
import { describe, freePort, takeFlags, untilSignal, withoutPassword } from './lifecycle.js';

const GATEWAY_HELP = `Usage: chat-gateway --zookeeper HOSTS --redis URL [options]

The client-facing process of the distributed chat server: speaks the chat wire of chat-server
(docs/PROTOCOL.md §1–4: legacy JSON, framed JSON and protobuf on one port), keeps the sessions,
and turns each request into mprpc calls to the chat services (chat-service) found in ZooKeeper.
Presence (user → gateway) lives in Redis; the message service publishes each push on the
channel of the gateway holding the recipient.

Gateway options:
  --zookeeper HOSTS        ZooKeeper connect string                   (required)
  --registry-root PATH     registry root of the unit's providers      (/mprpc)
  --rpc-timeout MS         deadline of each service call              (5000)
  --wait-services SECONDS  how long to wait for every service at start (30)
  --redis URL              presence and push routing                  (required)

Every option of chat-server's connection side applies (--db and --workers do not):
${SERVER_HELP.split('\n').slice(4).join('\n')}`;

async function serve(
  config: ServerConfig,
  gateway: { zookeeper: string; registryRoot: string; rpcTimeoutMs: number; waitMs: number },
  logger: Logger,
): Promise<number> {
  const serverId = config.serverId ?? `${config.host}:${config.port}`;
  const channel = new RpcChannel({
    zookeeper: gateway.zookeeper,
    registryRoot: gateway.registryRoot,
    defaultTimeoutMs: gateway.rpcTimeoutMs,
  });
  try {
    await Promise.all(
      SERVICE_KINDS.map((kind) => channel.waitForProviders(SERVICE_NAMES[kind], 1, gateway.waitMs)),
    );
  } catch (error) {
    process.stderr.write(`chat-gateway: services not found in ZooKeeper: ${describe(error)}\n`);
    await channel.close();
    return 1;
  }
  const services = createRemoteServices(channel, { callTimeoutMs: gateway.rpcTimeoutMs });
  const cluster = new RedisCluster({
    url: config.redis!,
    serverId,
    prefix: config.redisPrefix,
    onServerGone: (id) => services.users.resetServer(id),
    log: (level, message) => logger.log(level, message),
  });
  try {
    await cluster.start();
  } catch (error) {
    process.stderr.write(
      `chat-gateway: cannot reach redis at ${withoutPassword(config.redis!)}: ${describe(error)}\n`,
    );
    await cluster.stop();
    await channel.close();
    return 1;
  }
  const metrics =
    config.metricsPort === undefined
      ? undefined
      : new ChatMetrics({ redisConnected: () => cluster.connected });
  const server = new ChatServer(() => services, {
    ...connectionOptionsOf(config, serverId),
    presence: cluster,
    logger,
    ...(metrics === undefined ? {} : { metrics }),
  });
  let listen: string;
  try {
    listen = (await server.start()).toIpPort();
  } catch (error) {
    process.stderr.write(
      `chat-gateway: cannot listen on ${config.host}:${config.port}: ${describe(error)}\n`,
    );
    await cluster.stop();
    await channel.close();
    return 1;
  }
  let endpoint: MetricsEndpoint | null = null;
  if (metrics !== undefined && config.metricsPort !== undefined) {
    try {
      endpoint = await startMetricsEndpoint(metrics, config.metricsHost, config.metricsPort);
    } catch (error) {
      process.stderr.write(`chat-gateway: cannot serve metrics: ${describe(error)}\n`);
      await server.stop();
      await cluster.stop();
      await channel.close();
      return 1;
    }
  }
  process.stdout.write(`listening on ${listen}\n`);
  if (endpoint !== null)
    process.stdout.write(`metrics on http://${endpoint.host}:${endpoint.port}/metrics\n`);
  logger.log('info', 'chat gateway started', {
    server: serverId,
    listen,
    zookeeper: gateway.zookeeper,
    redis: withoutPassword(config.redis!),
  });
  return untilSignal(logger, async () => {
    await server.stop();
    await endpoint?.close();
    await cluster.stop();
    await channel.close();
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(GATEWAY_HELP);
    return 0;
  }
  const own = takeFlags(argv, ['--zookeeper', '--registry-root', '--rpc-timeout', '--wait-services']);
  if (own.error !== undefined) {
    process.stderr.write(`chat-gateway: ${own.error}\n`);
    return 2;
  }
  const parsed = parseServerArgs(own.rest, process.env);
  if ('error' in parsed) {
    process.stderr.write(`chat-gateway: ${parsed.error}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(GATEWAY_HELP);
    return 0;
  }
  const config = parsed.config;
  const zookeeper = own.taken.get('--zookeeper');
  const problem =
    zookeeper === undefined
      ? '--zookeeper is required (see --help)'
      : config.redis === undefined
        ? '--redis is required (presence and push routing across gateways)'
        : config.db !== undefined || (config.workers ?? 0) > 0
          ? '--db and --workers (above 0) are chat-server options: the gateway has no store and serves from one process'
          : null;
  const rpcTimeoutMs = Number(own.taken.get('--rpc-timeout') ?? '5000');
  const waitSeconds = Number(own.taken.get('--wait-services') ?? '30');
  if (problem !== null || !(rpcTimeoutMs > 0) || !(waitSeconds > 0)) {
    process.stderr.write(`chat-gateway: ${problem ?? 'bad --rpc-timeout or --wait-services'}\n`);
    return 2;
  }
  // The default server id is HOST:PORT with the port actually bound: choose it now.
  if (config.port === 0 && config.serverId === undefined) config.port = await freePort(config.host);
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  return serve(
    config,
    {
      zookeeper: zookeeper!,
      registryRoot: own.taken.get('--registry-root') ?? '/mprpc',
      rpcTimeoutMs,
      waitMs: waitSeconds * 1000,
    },
    logger,
  );
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chat-gateway: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  },
);
