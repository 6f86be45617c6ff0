import { parseZkHosts } from '../../rpc/index.js';
import { isLogFormat, isLogLevel, type LogFormat, type LogLevel } from '../server/logger.js';
import { SERVICE_KINDS, type ServiceKind } from './serviceProto.js';

export interface ServiceConfig {
  services: ServiceKind[];
  zookeeper: string;
  registryRoot: string;
  /** Session of the registration: how long a dead node stays listed. */
  zkSessionTimeoutMs: number;
  db: string | undefined;
  redis: string | undefined;
  redisPrefix: string;
  host: string;
  port: number;
  serviceId: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Seconds between the message service's append statistics at info; 0 = never. */
  statsIntervalSec: number;
}

export const SERVICE_HELP = `Usage: chat-service --services LIST --zookeeper HOSTS [options]

Serves the chat server's business services over mprpc (src/rpc, protobuf: chat_services.proto)
and registers them in ZooKeeper, where chat-gateway finds them. Any subset per process: one
machine can run everything in one process, a large deployment one service per process, N each.

Options:
  --services LIST        comma-separated: user,friend,group,message (or all)   (required)
  --zookeeper HOSTS      ZooKeeper connect string, HOST:PORT[,HOST:PORT…]      (required)
  --registry-root PATH   registry root of the unit's providers                 (/mprpc)
  --zk-session-timeout MS
                         ZooKeeper session: how long a killed node stays listed (4000)
  --db URL               store: SQLite path or mysql://user:pass@host:port/db  (./data/chat.db)
                         (with more than one process, every one must reach the same store: MySQL)
  --redis URL            redis://host:port: the message service routes pushes to the gateway
                         holding each recipient (required with the message service)
  --redis-prefix PREFIX  Redis key/channel prefix, as given to the gateways   (chat)
  --host HOST            listen address                                        (127.0.0.1)
  --port PORT            listen port, 0 = any free port                        (0)
  --service-id ID        name in logs (default HOST:PORT) and, for the message service,
                         the owner recorded for the inbox partitions it takes (default
                         hostname:pid)
  --log-level LEVEL      debug | info | warn | error | silent                  (info)
  --log-format FORMAT    text | json                                           (text)
  --stats-interval SEC   log the message service's appends every SEC seconds at info:
                         messages/s, batch size, commit time, predicted/reading runs,
                         missed predictions, fenced appends, partitions held; 0 = off (0)
  -h, --help             show this help

On start it prints "listening on HOST:PORT" on stdout. SIGTERM / SIGINT: unregister, answer the
calls already received, commit every accepted message, close the store.
`;

const kFlags = [
  '--services',
  '--zookeeper',
  '--registry-root',
  '--zk-session-timeout',
  '--db',
  '--redis',
  '--redis-prefix',
  '--host',
  '--port',
  '--service-id',
  '--log-level',
  '--log-format',
  '--stats-interval',
] as const;

export type ParsedServiceArgs = { help: true } | { help: false; config: ServiceConfig } | { error: string };

export function parseServiceArgs(argv: readonly string[]): ParsedServiceArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { help: true };
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!(kFlags as readonly string[]).includes(name))
      return { error: `unknown option '${arg}' (see --help)` };
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') return { error: `option ${name} needs a value` };
    values.set(name, value);
  }
  const list = values.get('--services');
  if (list === undefined) return { error: '--services is required (see --help)' };
  const services: ServiceKind[] = [];
  for (const name of list === 'all' ? SERVICE_KINDS : list.split(',')) {
    const kind = SERVICE_KINDS.find((k) => k === name.trim());
    if (kind === undefined) return { error: `unknown service '${name}' (user, friend, group, message)` };
    if (!services.includes(kind)) services.push(kind);
  }
  const zookeeper = values.get('--zookeeper');
  if (zookeeper === undefined) return { error: '--zookeeper is required (see --help)' };
  if (parseZkHosts(zookeeper) === null) {
    return { error: `bad --zookeeper '${zookeeper}' (want HOST:PORT[,HOST:PORT…])` };
  }
  const redis = values.get('--redis');
  if (services.includes('message') && redis === undefined) {
    return { error: 'the message service needs --redis (it routes pushes to the gateways)' };
  }
  if (redis !== undefined && !/^rediss?:\/\//.test(redis)) return { error: `--redis must be a redis:// URL` };
  const port = Number(values.get('--port') ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) return { error: `bad --port` };
  const zkSessionTimeoutMs = Number(values.get('--zk-session-timeout') ?? '4000');
  if (!Number.isInteger(zkSessionTimeoutMs) || zkSessionTimeoutMs <= 0) {
    return { error: 'bad --zk-session-timeout (a positive number of ms)' };
  }
  const logLevel = values.get('--log-level') ?? 'info';
  if (!isLogLevel(logLevel)) return { error: `unknown log level '${logLevel}'` };
  const logFormat = values.get('--log-format') ?? 'text';
  if (!isLogFormat(logFormat)) return { error: `expected text or json, got '${logFormat}'` };
  const statsInterval = Number(values.get('--stats-interval') ?? '0');
  if (!Number.isInteger(statsInterval) || statsInterval < 0 || statsInterval > 86_400)
    return { error: '--stats-interval must be a whole number of seconds (0 = off)' };
  return {
    help: false,
    config: {
      services,
      zookeeper,
      registryRoot: values.get('--registry-root') ?? '/mprpc',
      zkSessionTimeoutMs,
      db: values.get('--db'),
      redis,
      redisPrefix: values.get('--redis-prefix') ?? 'chat',
      host: values.get('--host') ?? '127.0.0.1',
      port,
      serviceId: values.get('--service-id'),
      logLevel,
      logFormat,
      statsIntervalSec: statsInterval,
    },
  };
}
