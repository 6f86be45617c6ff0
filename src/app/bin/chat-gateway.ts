#!/usr/bin/env node
/**
 * chat-gateway: the client-facing process of the distributed chat server (the seed's
 * ProxyService). It is a ChatServer — same connections, codecs, sessions and guarantees as
 * chat-server — whose ChatService calls the business services over mprpc, found in ZooKeeper.
 */
import { hostname } from 'node:os';
import { parseHostPort, parseZkHosts, RpcChannel, ZkSession } from '../../rpc/index.js';
import { GatewayRegistrar, gatewayIdProblem } from '../distributed/GatewayRegistry.js';
import { newEpoch, watchGatewayLiveness } from '../distributed/gatewayLiveness.js';
import { createRemoteServices } from '../distributed/RemoteServices.js';
import { SERVICE_KINDS, SERVICE_NAMES } from '../distributed/serviceProto.js';
import { ChatServer } from '../server/ChatServer.js';
import { parseServerArgs, SERVER_HELP, type ServerConfig, serverIdProblem } from '../server/config.js';
import { createLogger, type Logger } from '../server/logger.js';
import { ChatMetrics } from '../server/metrics.js';
import { type MetricsEndpoint, startMetricsEndpoint } from '../server/metricsEndpoint.js';
import { connectionOptionsOf } from '../server/serverOptions.js';
import {
  describe,
  freePort,
  startRedisCluster,
  takeFlags,
  untilSignal,
  withoutPassword,
} from './lifecycle.js';

const GATEWAY_HELP = `Usage: chat-gateway --zookeeper HOSTS --redis URL [options]

The client-facing process of the distributed chat server: speaks the chat wire of chat-server
(docs/PROTOCOL.md §1–4: legacy JSON, framed JSON and protobuf on one port), keeps the sessions,
and turns each request into mprpc calls to the chat services (chat-service) found in ZooKeeper.
Presence (user → gateway) lives in Redis; the message service publishes each push on the
channel of the gateway holding the recipient. The gateway registers itself in ZooKeeper
(ephemeral <registry-root>/gateways/<server id>: client address and connection count), where
discovering clients (chat-client --discover) pick the least-loaded gateway.

Gateway options:
  --zookeeper HOSTS        ZooKeeper connect string, HOST:PORT[,HOST:PORT…] (required)
  --registry-root PATH     registry root of the unit's providers and gateways (/mprpc)
  --advertise HOST:PORT    client address written in the registry   (the listen address;
                           the host name when listening on 0.0.0.0 or ::)
  --zk-session-timeout MS  session of the gateway's registration: how long a dead gateway
                           stays listed                               (4000)
  --report-interval MS     shortest time between connection-count reports (1000)
  --rpc-timeout MS         deadline of each service call              (5000)
  --wait-services SECONDS  how long to wait for every service at start (30)
  --redis URL              presence and push routing                  (required)

Every option of chat-server's connection side applies (--db and --workers do not):
${SERVER_HELP.split('\n').slice(4).join('\n')}`;

interface GatewayFlags {
  zookeeper: string;
  registryRoot: string;
  rpcTimeoutMs: number;
  waitMs: number;
  advertise: { host: string; port: number } | null;
  zkSessionTimeoutMs: number;
  reportIntervalMs: number;
}

/** Where clients reach this gateway: --advertise, else the bound address (a wildcard: the host name). */
function advertised(
  flags: GatewayFlags,
  listen: { host: string; port: number },
): { host: string; port: number } {
  if (flags.advertise !== null) return flags.advertise;
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::' || listen.host === '';
  return { host: wildcard ? hostname() : listen.host, port: listen.port };
}

async function serve(config: ServerConfig, gateway: GatewayFlags, logger: Logger): Promise<number> {
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
  const cluster = await startRedisCluster('chat-gateway', {
    url: config.redis!,
    serverId,
    epoch: newEpoch(),
    prefix: config.redisPrefix,
    // One incarnation at a time: the users who logged in again through its next one stay online.
    onServerGone: (id, epoch) => services.users.resetServer(id, epoch),
    log: (level, message) => logger.log(level, message),
  });
  if (cluster === null) {
    await channel.close();
    return 1;
  }
  // Its own session (registry node, liveness), short so that a dead gateway is noticed soon.
  const registrySession = new ZkSession({
    connect: gateway.zookeeper,
    sessionTimeoutMs: gateway.zkSessionTimeoutMs,
  });
  const metrics =
    config.metricsPort === undefined
      ? undefined
      : new ChatMetrics({
          redisConnected: () => cluster.connected,
          zookeeperConnected: () => registrySession.connected,
          providers: () =>
            Object.fromEntries(
              SERVICE_KINDS.map((kind) => [kind, channel.providers(SERVICE_NAMES[kind]).length]),
            ),
        });
  const server = new ChatServer(() => services, {
    ...connectionOptionsOf(config, serverId),
    presence: cluster,
    logger,
    ...(metrics === undefined ? {} : { metrics }),
  });
  let listen: string;
  let bound: { host: string; port: number };
  try {
    const address = await server.start();
    listen = address.toIpPort();
    bound = { host: address.ip, port: address.port };
  } catch (error) {
    process.stderr.write(
      `chat-gateway: cannot listen on ${config.host}:${config.port}: ${describe(error)}\n`,
    );
    await cluster.stop();
    await channel.close();
    return 1;
  }
  // Registered once it serves: a discovering client may connect the moment the node appears.
  const client = advertised(gateway, bound);
  const registrar = new GatewayRegistrar({
    session: registrySession,
    root: gateway.registryRoot,
    id: serverId,
    host: client.host,
    port: client.port,
    connections: () => server.connectionCount,
    reportIntervalMs: gateway.reportIntervalMs,
    epoch: () => cluster.epoch,
    onError: (error) => logger.log('warn', `gateway registration: ${describe(error)}`),
  });
  const liveness = watchGatewayLiveness({
    session: registrySession,
    root: gateway.registryRoot,
    cluster,
    channel,
    log: (level, message) => logger.log(level, message),
  });
  try {
    await registrar.start(gateway.waitMs);
  } catch (error) {
    process.stderr.write(`chat-gateway: cannot register in ZooKeeper: ${describe(error)}\n`);
    liveness.close();
    await registrySession.close();
    await server.stop();
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
      liveness.close();
      await registrar.stop();
      await registrySession.close();
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
    advertise: `${client.host}:${client.port}`,
    zookeeper: gateway.zookeeper,
    redis: withoutPassword(config.redis!),
  });
  return untilSignal(logger, async () => {
    // Fenced by ourselves, so the survivors that see us leave do not judge our users offline
    // while we log them out; then unlisted, so that discovering clients stop choosing us.
    liveness.close();
    await cluster.retire();
    await registrar.stop();
    await server.stop();
    await registrySession.close();
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
  const own = takeFlags(argv, [
    '--zookeeper',
    '--registry-root',
    '--rpc-timeout',
    '--wait-services',
    '--advertise',
    '--zk-session-timeout',
    '--report-interval',
  ]);
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
  const advertise = own.taken.get('--advertise');
  const problem =
    zookeeper === undefined
      ? '--zookeeper is required (see --help)'
      : parseZkHosts(zookeeper) === null
        ? `bad --zookeeper '${zookeeper}' (want HOST:PORT[,HOST:PORT…])`
        : advertise !== undefined && parseHostPort(advertise) === null
          ? `bad --advertise '${advertise}' (want HOST:PORT)`
          : config.redis === undefined
            ? '--redis is required (presence and push routing across gateways)'
            : config.db !== undefined || (config.workers ?? 0) > 0
              ? '--db and --workers (above 0) are chat-server options: the gateway has no store and serves from one process'
              : null;
  const rpcTimeoutMs = Number(own.taken.get('--rpc-timeout') ?? '5000');
  const waitSeconds = Number(own.taken.get('--wait-services') ?? '30');
  const zkSessionTimeoutMs = Number(own.taken.get('--zk-session-timeout') ?? '4000');
  const reportIntervalMs = Number(own.taken.get('--report-interval') ?? '1000');
  const numbers = [rpcTimeoutMs, waitSeconds, zkSessionTimeoutMs, reportIntervalMs];
  if (problem !== null || !numbers.every((n) => Number.isFinite(n) && n > 0)) {
    process.stderr.write(
      `chat-gateway: ${problem ?? 'bad --rpc-timeout, --wait-services, --zk-session-timeout or --report-interval (positive numbers)'}\n`,
    );
    return 2;
  }
  // The default server id is HOST:PORT with the port actually bound: choose it now.
  if (config.port === 0 && config.serverId === undefined) config.port = await freePort(config.host);
  const id = config.serverId ?? `${config.host}:${config.port}`;
  const idProblem = gatewayIdProblem(id) ?? serverIdProblem(id);
  if (idProblem !== null) {
    process.stderr.write(`chat-gateway: --server-id: ${idProblem}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  return serve(
    config,
    {
      zookeeper: zookeeper!,
      registryRoot: own.taken.get('--registry-root') ?? '/mprpc',
      rpcTimeoutMs,
      waitMs: waitSeconds * 1000,
      advertise: advertise === undefined ? null : parseHostPort(advertise),
      zkSessionTimeoutMs,
      reportIntervalMs,
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
