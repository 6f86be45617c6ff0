#!/usr/bin/env node
import { ChatServer } from '../server/ChatServer.js';
import { parseServerArgs, SERVER_HELP } from '../server/config.js';
import { createLogger } from '../server/logger.js';
/** chat-server: the chat server binary. `chat-server --help` lists the options. */
import { openStore } from '../store/openStore.js';

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
  const logger = createLogger(config.logLevel);
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(config.db);
  } catch (error) {
    process.stderr.write(
      `chat-server: cannot open the store: ${error instanceof Error ? error.message : error}\n`,
    );
    return 1;
  }
  const server = new ChatServer(store, {
    host: config.host,
    port: config.port,
    serverId: config.serverId,
    idleTimeoutMs: config.idleTimeoutMs,
    highWaterMarkBytes: config.highWaterMarkBytes,
    maxMessageBytes: config.maxMessageBytes,
    messagesPerSecond: config.messagesPerSecond,
    logger,
  });
  let address: Awaited<ReturnType<ChatServer['start']>>;
  try {
    address = await server.start();
  } catch (error) {
    process.stderr.write(
      `chat-server: cannot listen on ${config.host}:${config.port}: ${error instanceof Error ? error.message : error}\n`,
    );
    await store.close();
    return 1;
  }
  process.stdout.write(`listening on ${address.toIpPort()}\n`);
  logger.log('info', `store: ${store.dialect}; server id ${server.serverId}`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.log('info', `${signal}: stopping`);
      server
        .stop()
        .then(() => store.close())
        .then(
          () => resolve(0),
          (error: unknown) => {
            logger.log('error', `stop failed: ${error instanceof Error ? error.message : error}`);
            resolve(1);
          },
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chat-server: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  },
);
