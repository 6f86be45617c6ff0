#!/usr/bin/env node
/** chat-server: the chat server binary. `chat-server --help` lists the options. */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { TcpServer } from '../../net/index.js';
import type { RedisCluster } from '../cluster/RedisCluster.js';
import type { ChatStore } from '../model/ChatStore.js';
import { ChatServer } from '../server/ChatServer.js';
import { parseServerArgs, SERVER_HELP, type ServerConfig } from '../server/config.js';
import { createLogger, type Logger } from '../server/logger.js';
import { ChatMetrics } from '../server/metrics.js';
import { type MetricsEndpoint, startMetricsEndpoint } from '../server/metricsEndpoint.js';
import { connectionOptionsOf } from '../server/serverOptions.js';
import { createLocalServices } from '../services/LocalMessageService.js';
import { openStore } from '../store/openStore.js';
import { describe, freePort, startRedisCluster, untilSignal, withoutPassword } from './lifecycle.js';

/** `--workers N`: this process only supervises N workers that share the listen socket. */
async function supervise(config: ServerConfig, workers: number, logger: Logger): Promise<number> {
  const supervisor = new TcpServer({ name: 'chat', host: config.host, port: config.port });
  supervisor.setThreadNum(workers);
  let address: Awaited<ReturnType<TcpServer['start']>>;
  try {
    address = await supervisor.start();
  } catch (error) {
    // A worker that could not start said why on stderr already; this is the summary, not a trace.
    process.stderr.write(`chat-server: not started: ${describe(error)}\n`);
    return 1;
  }
  process.stdout.write(`listening on ${address.toIpPort()}\n`);
  logger.log('info', 'supervisor started', { listen: address.toIpPort(), workers });
  return untilSignal(logger, () => supervisor.stop({ graceMs: 10_000 }));
}

async function serve(config: ServerConfig, logger: Logger): Promise<number> {
  const worker = TcpServer.workerIndex();
  // config.port is the real port here (main() resolves port 0 first), so ids stay unique.
  const baseId = config.serverId ?? `${config.host}:${config.port}`;
  const serverId = worker === null ? baseId : `${baseId}/w${worker}`;
  let store: ChatStore;
  try {
    store = await openStore(config.db);
  } catch (error) {
    process.stderr.write(`chat-server: cannot open the store: ${describe(error)}\n`);
    return 1;
  }
  let redis: RedisCluster | null = null;
  if (config.redis !== undefined) {
    redis = await startRedisCluster('chat-server', {
      url: config.redis,
      serverId,
      prefix: config.redisPrefix,
      // A server that died without logging its users out: show them offline (state column).
      onServerGone: (id, epoch) => store.users.resetServer(id, epoch),
      log: (level, message) => logger.log(level, message),
    });
    if (redis === null) {
      await store.close();
      return 1;
    }
  }
  const cluster = redis;
  const metrics =
    config.metricsPort === undefined
      ? undefined
      : new ChatMetrics(cluster === null ? {} : { redisConnected: () => cluster.connected });
  const server = new ChatServer(({ onBatch }) => createLocalServices(store, { onBatch }), {
    ...connectionOptionsOf(config, serverId),
    ...(cluster === null ? {} : { presence: cluster, router: () => cluster }),
    logger,
    ...(metrics === undefined ? {} : { metrics }),
  });
  let listen: string;
  try {
    listen = (await server.start()).toIpPort();
  } catch (error) {
    process.stderr.write(`chat-server: cannot listen on ${config.host}:${config.port}: ${describe(error)}\n`);
    await cluster?.stop();
    await store.close();
    return 1;
  }
  let endpoint: MetricsEndpoint | null = null;
  if (metrics !== undefined && config.metricsPort !== undefined) {
    // Workers share the chat port but not an HTTP port: worker k serves on METRICS_PORT + k.
    const port =
      config.metricsPort === 0 || worker === null ? config.metricsPort : config.metricsPort + worker;
    try {
      endpoint = await startMetricsEndpoint(metrics, config.metricsHost, port);
    } catch (error) {
      process.stderr.write(
        `chat-server: cannot serve metrics on ${config.metricsHost}:${port}: ${describe(error)}\n`,
      );
      await server.stop();
      await cluster?.stop();
      await store.close();
      return 1;
    }
  }
  if (worker === null) process.stdout.write(`listening on ${listen}\n`);
  if (endpoint !== null)
    process.stdout.write(`metrics on http://${endpoint.host}:${endpoint.port}/metrics\n`);
  logger.log('info', 'chat server started', {
    server: serverId,
    listen,
    store: `${store.dialect} ${withoutPassword(config.db ?? './data/chat.db')}`,
    redis: config.redis === undefined ? 'none' : withoutPassword(config.redis),
    metrics: endpoint === null ? 'off' : `http://${endpoint.host}:${endpoint.port}/metrics`,
    idle_timeout_s: config.idleTimeoutMs / 1000,
    max_message_bytes: config.maxMessageBytes,
    rate_per_s: config.messagesPerSecond,
    high_water_mark_bytes: config.highWaterMarkBytes,
    message_timeout_ms: config.messageTimeoutMs,
    max_input_bytes: config.maxInputBytes,
    max_connections: config.maxConnections,
    max_connections_per_ip: config.maxConnectionsPerIp,
    max_anonymous: config.maxAnonymousConnections,
  });
  return untilSignal(logger, async () => {
    await server.stop();
    await endpoint?.close();
    await cluster?.stop();
    await store.close();
  });
}

async function main(): Promise<number> {
  const parsed = parseServerArgs(process.argv.slice(2), process.env);
  if ('error' in parsed) {
    process.stderr.write(`chat-server: ${parsed.error}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(SERVER_HELP);
    return 0;
  }
  const config = parsed.config;
  if (config.port === 0 && config.serverId === undefined && cluster.isPrimary) {
    // The default server id is HOST:PORT with the port actually bound: choose it now, and hand
    // it to any workers (they parse the same command line; a later --port wins).
    config.port = await freePort(config.host);
    cluster.setupPrimary({ args: [...process.argv.slice(2), '--port', String(config.port)] });
  }
  const workers = config.workers ?? (config.redis === undefined ? 0 : availableParallelism());
  const workerIndex = TcpServer.workerIndex();
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    ...(cluster.isWorker && workerIndex !== null ? { base: { worker: workerIndex } } : {}),
  });
  if (workers > 0 && cluster.isPrimary) return supervise(config, workers, logger);
  return serve(config, logger);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chat-server: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  },
);
