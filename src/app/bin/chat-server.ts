#!/usr/bin/env node
/** chat-server: the chat server binary. `chat-server --help` lists the options. */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { TcpServer } from '../../net/index.js';
import { RedisCluster } from '../cluster/RedisCluster.js';
import type { ChatStore } from '../model/ChatStore.js';
import { ChatServer } from '../server/ChatServer.js';
import { parseServerArgs, SERVER_HELP, type ServerConfig } from '../server/config.js';
import { createLogger, type Logger } from '../server/logger.js';
import { openStore } from '../store/openStore.js';

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Resolves with the exit code once SIGTERM/SIGINT has run `stop`. */
function untilSignal(logger: Logger, stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.log('info', `${signal}: stopping`);
      stop().then(
        () => resolve(0),
        (error: unknown) => {
          logger.log('error', `stop failed: ${describe(error)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
}

/** `--workers N`: this process only supervises N workers that share the listen socket. */
async function supervise(config: ServerConfig, workers: number, logger: Logger): Promise<number> {
  const supervisor = new TcpServer({ name: 'chat', host: config.host, port: config.port });
  supervisor.setThreadNum(workers);
  const address = await supervisor.start();
  process.stdout.write(`listening on ${address.toIpPort()}\n`);
  logger.log('info', `${workers} workers`);
  return untilSignal(logger, () => supervisor.stop({ graceMs: 10_000 }));
}

async function serve(config: ServerConfig, logger: Logger): Promise<number> {
  const worker = TcpServer.workerIndex();
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
    redis = new RedisCluster({
      url: config.redis,
      serverId,
      prefix: config.redisPrefix,
      // A server that died without logging its users out: show them offline (state column).
      onServerGone: (id) => store.users.resetServer(id),
      log: (level, message) => logger.log(level, message),
    });
    try {
      await redis.start();
    } catch (error) {
      process.stderr.write(`chat-server: cannot reach redis at ${config.redis}: ${describe(error)}\n`);
      await redis.stop();
      await store.close();
      return 1;
    }
  }
  const cluster = redis;
  const server = new ChatServer(store, {
    host: config.host,
    port: config.port,
    serverId,
    idleTimeoutMs: config.idleTimeoutMs,
    highWaterMarkBytes: config.highWaterMarkBytes,
    maxMessageBytes: config.maxMessageBytes,
    messagesPerSecond: config.messagesPerSecond,
    legacyGapMs: config.legacyGapMs,
    legacyWriteBytes: config.legacyWriteBytes,
    ...(cluster === null ? {} : { presence: cluster, router: () => cluster }),
    logger,
  });
  try {
    const address = await server.start();
    if (worker === null) process.stdout.write(`listening on ${address.toIpPort()}\n`);
  } catch (error) {
    process.stderr.write(`chat-server: cannot listen on ${config.host}:${config.port}: ${describe(error)}\n`);
    await cluster?.stop();
    await store.close();
    return 1;
  }
  logger.log(
    'info',
    `store: ${store.dialect}; server id ${serverId}${cluster ? `; redis ${config.redis}` : ''}`,
  );
  return untilSignal(logger, async () => {
    await server.stop();
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
  const workers = config.workers ?? (config.redis === undefined ? 0 : availableParallelism());
  const role = cluster.isWorker ? `[w${TcpServer.workerIndex()}] ` : '';
  const logger = createLogger(config.logLevel, role);
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
