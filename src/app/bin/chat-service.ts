#!/usr/bin/env node
/** chat-service: serves some of the chat business services over mprpc. `--help` lists the options. */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { createStub, RpcChannel, RpcProvider } from '../../rpc/index.js';
import { RedisPushPublisher } from '../cluster/RedisPushPublisher.js';
import { FanoutDriver } from '../distributed/FanoutDriver.js';
import { MessageStatsLog } from '../distributed/messageStats.js';
import { friendProvider, groupProvider, messageProvider, userProvider } from '../distributed/providers.js';
import { parseServiceArgs, SERVICE_HELP, type ServiceConfig } from '../distributed/serviceConfig.js';
import { chatServiceDefinition, SERVICE_NAMES } from '../distributed/serviceProto.js';
import type { MessageServiceRpc } from '../distributed/wireTypes.js';
import type { ChatStore } from '../model/ChatStore.js';
import { createLogger, type Logger } from '../server/logger.js';
import { LocalMessageService } from '../services/LocalMessageService.js';
import { openStore } from '../store/openStore.js';
import { partitionKey } from '../store/partitions.js';
import { describe, untilSignal, withoutPassword } from './lifecycle.js';

/** Mids a message node takes from the shared counter at once. */
const MID_BLOCK = 4096;

async function serve(config: ServiceConfig, logger: Logger): Promise<number> {
  let store: ChatStore;
  try {
    // A message node shares the store with the other message nodes: mids in blocks, and it
    // writes only the inbox partitions it owns (docs/DISTRIBUTED.md, "Scaling the message service").
    const writer = config.services.includes('message')
      ? { midBlock: MID_BLOCK, partitionOwner: config.serviceId ?? `${hostname()}:${process.pid}` }
      : {};
    store = await openStore(config.db, { messages: writer });
  } catch (error) {
    process.stderr.write(`chat-service: cannot open the store: ${describe(error)}\n`);
    return 1;
  }
  let redis: Redis | null = null;
  if (config.redis !== undefined) {
    redis = new Redis(config.redis, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(n * 200, 2000),
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
    } catch (error) {
      process.stderr.write(
        `chat-service: cannot reach redis at ${withoutPassword(config.redis)}: ${describe(error)}\n`,
      );
      redis.disconnect();
      await store.close();
      return 1;
    }
  }
  const provider = new RpcProvider({
    host: config.host,
    port: config.port,
    zookeeper: config.zookeeper,
    registryRoot: config.registryRoot,
    zkSessionTimeoutMs: config.zkSessionTimeoutMs,
    name: 'chat-service',
    onError: (error) => logger.log('warn', `rpc: ${error.message}`),
  });
  let messages: LocalMessageService | null = null;
  let stats: MessageStatsLog | null = null;
  // A message node's own client of the message service: its group messages' fan-outs go to the
  // owners of their members' partitions (itself included), routed as the gateways route submits.
  let fanoutChannel = null as RpcChannel | null;
  let fanout = null as FanoutDriver | null;
  for (const kind of config.services) {
    const definition = chatServiceDefinition(kind);
    if (kind === 'user') provider.notifyService(definition, userProvider(store.users));
    else if (kind === 'friend') provider.notifyService(definition, friendProvider(store.friends));
    else if (kind === 'group') provider.notifyService(definition, groupProvider(store.groups));
    else {
      const publisher = new RedisPushPublisher(redis!, {
        prefix: config.redisPrefix,
        log: (level, message) => logger.log(level, message),
      });
      stats =
        config.statsIntervalSec > 0
          ? new MessageStatsLog(store.messages, logger, config.statsIntervalSec * 1000)
          : null;
      const channel = new RpcChannel({
        zookeeper: config.zookeeper,
        registryRoot: config.registryRoot,
        zkSessionTimeoutMs: config.zkSessionTimeoutMs,
      });
      fanoutChannel = channel;
      const model = store.messages;
      // Where the routing sends a partition now, as the gateways see it: the members of a group
      // message in partitions this node holds and is sent get their entries in the message's
      // own transaction, and fan-outs sent back here skip the RPC round trip.
      const routedHere = (part: number): boolean =>
        channel.affinityProvider(SERVICE_NAMES.message, partitionKey(part)) === provider.advertisedAddress;
      model.routeLocally(routedHere);
      const hold = process.env.CHAT_TEST_FANOUT_HOLD === '1';
      if (hold) logger.log('warn', 'CHAT_TEST_FANOUT_HOLD: this node drives no group fan-out (tests only)');
      fanout = new FanoutDriver(
        createStub<MessageServiceRpc>(channel, definition),
        {
          pendingFanouts: (before, limit) => model.pendingFanouts(before, limit),
          heldPartitions: () => model.fence?.epochs() ?? new Map(),
        },
        {
          hold,
          log: (level, message) => logger.log(level, message),
          local: { service: { fanout: (job) => local.fanout(job) }, isOwner: routedHere },
        },
      );
      stats?.watchFanout(fanout);
      const local = new LocalMessageService(store, {
        router: publisher,
        onBatch: stats?.onBatch,
        fanout,
      });
      messages = local;
      provider.notifyService(definition, messageProvider(messages, messages));
    }
  }
  let listen: string;
  try {
    listen = (await provider.run()).toIpPort();
  } catch (error) {
    process.stderr.write(`chat-service: cannot serve: ${describe(error)}\n`);
    await provider.stop().catch(() => {});
    await fanoutChannel?.close();
    redis?.disconnect();
    await store.close();
    return 1;
  }
  if (fanoutChannel !== null) {
    // Our own routing view lists us before we say we serve: a group message's members routed
    // here are then appended in its transaction from the first one on (a single node never
    // fans out), instead of fanned out while the view is still empty.
    const self = provider.advertisedAddress;
    const listed = (): boolean => fanoutChannel!.providers(SERVICE_NAMES.message).some((p) => p.key === self);
    fanoutChannel.affinityProvider(SERVICE_NAMES.message, partitionKey(0)); // starts the watch
    for (const until = Date.now() + config.zkSessionTimeoutMs * 2; !listed() && Date.now() < until; )
      await new Promise((r) => setTimeout(r, 20));
  }
  fanout?.start();
  process.stdout.write(`listening on ${listen}\n`);
  logger.log('info', 'chat service started', {
    service: config.serviceId ?? listen,
    services: config.services.join(','),
    listen,
    zookeeper: config.zookeeper,
    store: `${store.dialect} ${withoutPassword(config.db ?? './data/chat.db')}`,
  });
  return untilSignal(logger, async () => {
    // Unregister and answer what was received, then commit what was accepted.
    await provider.stop({ graceMs: 10_000 });
    await messages?.drain();
    // Fan-outs of what was just committed; any left are another node's to sweep.
    await fanout?.stop();
    await fanoutChannel?.close();
    stats?.stop();
    redis?.disconnect();
    await store.close();
  });
}

async function main(): Promise<number> {
  const parsed = parseServiceArgs(process.argv.slice(2));
  if ('error' in parsed) {
    process.stderr.write(`chat-service: ${parsed.error}\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(SERVICE_HELP);
    return 0;
  }
  const logger = createLogger({ level: parsed.config.logLevel, format: parsed.config.logFormat });
  return serve(parsed.config, logger);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chat-service: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  },
);
