import { DEFAULT_TRUSTED_ADDRESSES } from './ConnectionLimits.js';
import { isLogFormat, isLogLevel, type LogFormat, type LogLevel } from './logger.js';

export interface ServerConfig {
  host: string;
  port: number;
  /** Store URL; undefined = embedded SQLite at ./data/chat.db. */
  db: string | undefined;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Serve Prometheus metrics on this port (`/metrics`); undefined = off. */
  metricsPort: number | undefined;
  metricsHost: string;
  idleTimeoutMs: number;
  serverId: string | undefined;
  highWaterMarkBytes: number;
  maxMessageBytes: number;
  messagesPerSecond: number;
  /** A started message must be complete within this long (every codec); 0 = no deadline. */
  messageTimeoutMs: number;
  /** Bytes all connections together may hold for unfinished messages. */
  maxInputBytes: number;
  /** Bytes one legacy connection may hold for an unfinished message. */
  maxLegacyMessageBytes: number;
  /** Connections in total; above it a new one is refused. */
  maxConnections: number;
  /** Connections per source address (trusted addresses exempt); 0 = no limit. */
  maxConnectionsPerIp: number;
  /** Connections that are silent or not logged in; above it the oldest is closed. */
  maxAnonymousConnections: number;
  /** Addresses exempt from per-address limits (a local proxy, the tests, the benches). */
  trustedAddresses: string[];
  /** Least time between two writes to one classic session (ms). */
  legacyGapMs: number;
  /** Largest write to a classic session, `\0` included. */
  legacyWriteBytes: number;
  /** Redis URL: join a cluster of servers sharing one store. */
  redis: string | undefined;
  /** Key/channel prefix in Redis. */
  redisPrefix: string;
  /** Worker processes; undefined = one per core with --redis, else 0 (this process serves). */
  workers: number | undefined;
}

export const SERVER_HELP = `Usage: chat-server [options]

Runs the chat server (docs/PROTOCOL.md: legacy JSON, framed JSON and protobuf on one port).

Options (each also read from the environment variable shown):
  --host HOST              listen address                      CHAT_HOST      (127.0.0.1)
  --port PORT              listen port, 0 = any free port      CHAT_PORT      (6000)
  --db URL                 store: a SQLite file path or         CHAT_DB        (./data/chat.db)
                           sqlite:PATH, or mysql://user:pass@host:port/db
  --log-level LEVEL        debug | info | warn | error | silent CHAT_LOG_LEVEL (info)
  --log-format FORMAT      text (one readable line per event) or CHAT_LOG_FORMAT (text)
                           json (one JSON object per line)
  --metrics-port PORT      serve Prometheus metrics on          CHAT_METRICS_PORT (off)
                           http://METRICS_HOST:PORT/metrics, 0 = any free port
  --metrics-host HOST      address of the metrics endpoint      CHAT_METRICS_HOST (127.0.0.1)
  --idle-timeout SECONDS   close silent framed connections, 0 = never
                                                               CHAT_IDLE_TIMEOUT (90)
  --server-id ID           this server's name in the store      CHAT_SERVER_ID (HOST:PORT,
                           and in Redis; unique per server,      the port actually bound)
                           at most 50 characters, no '|'
  --high-water-mark BYTES  pending output that disconnects a slow reader
                                                               CHAT_HIGH_WATER_MARK (8388608)
  --max-message BYTES      largest frame / legacy message       CHAT_MAX_MESSAGE (1048576)
  --rate MSGS              chat messages per second per session CHAT_RATE (2000)
  --message-timeout SECONDS a message that has started must be complete within this,
                           every codec; 0 = no deadline            CHAT_MESSAGE_TIMEOUT (5)
  --max-input BYTES        bytes all connections may hold for unfinished messages; past it the
                           connections holding the most are closed CHAT_MAX_INPUT (16777216)
  --max-legacy-message BYTES  largest classic (legacy) message     CHAT_MAX_LEGACY_MESSAGE (65536)
  --max-connections N      connections in total (also kept below the descriptor limit);
                           over it a new one is refused (framed: ERROR errno 8 first)
                                                               CHAT_MAX_CONNECTIONS (100000)
  --max-connections-per-ip N  connections per source address, 0 = no limit
                                                               CHAT_MAX_CONNECTIONS_PER_IP (256)
  --max-anonymous N        connections silent or not logged in; over it the oldest is closed
                                                               CHAT_MAX_ANONYMOUS (4096)
  --trusted-addresses LIST comma-separated addresses exempt from the per-address limits
                           (connections, failed logins, registrations): a local proxy
                                                               CHAT_TRUSTED_ADDRESSES
                           (127.0.0.1,::1,::ffff:127.0.0.1; '' = none)
  --legacy-gap-ms MS       least time between two writes to one classic client, so that
                           each recv gets one message (1-1000)  CHAT_LEGACY_GAP_MS (2)
  --legacy-write-bytes N   largest write to a classic client, its \0 included: the classic
                           client's recv buffer (1024-1048576)  CHAT_LEGACY_WRITE_BYTES (1024)
  --redis URL              join a cluster: redis://host:port    CHAT_REDIS     (none: single node)
  --redis-prefix PREFIX    Redis key/channel prefix             CHAT_REDIS_PREFIX (chat)
  --workers N              worker processes sharing the port    CHAT_WORKERS
                           (default: one per core with --redis, else 0 = serve from this process;
                           more than one needs --redis and a store all of them can reach)
  -h, --help               show this help

Limits a client sees (docs/PROTOCOL.md §6): a chat message is at most 4096 bytes of UTF-8;
names and passwords 50 characters, a group description 200; --rate and --max-message above.

On start it prints "listening on HOST:PORT" on stdout (and "metrics on http://HOST:PORT/metrics"
with --metrics-port); logs go to stderr. SIGTERM / SIGINT stop it gracefully.
`;

interface Flag {
  env: string;
  key: keyof ServerConfig;
  parse: (raw: string) => ServerConfig[keyof ServerConfig] | Error;
}

function integer(min: number, max: number, scale = 1): (raw: string) => number | Error {
  return (raw) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      return new Error(`expected an integer from ${min} to ${max}, got '${raw}'`);
    }
    return n * scale;
  };
}

const text = (raw: string): string | Error => (raw === '' ? new Error('must not be empty') : raw);

const addressList = (raw: string): string[] =>
  raw
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');

const FLAGS: Readonly<Record<string, Flag>> = {
  '--host': { env: 'CHAT_HOST', key: 'host', parse: text },
  '--port': { env: 'CHAT_PORT', key: 'port', parse: integer(0, 65535) },
  '--db': { env: 'CHAT_DB', key: 'db', parse: text },
  '--log-level': {
    env: 'CHAT_LOG_LEVEL',
    key: 'logLevel',
    parse: (raw) => (isLogLevel(raw) ? raw : new Error(`unknown log level '${raw}'`)),
  },
  '--log-format': {
    env: 'CHAT_LOG_FORMAT',
    key: 'logFormat',
    parse: (raw) => (isLogFormat(raw) ? raw : new Error(`expected text or json, got '${raw}'`)),
  },
  '--metrics-port': { env: 'CHAT_METRICS_PORT', key: 'metricsPort', parse: integer(0, 65535) },
  '--metrics-host': { env: 'CHAT_METRICS_HOST', key: 'metricsHost', parse: text },
  '--idle-timeout': { env: 'CHAT_IDLE_TIMEOUT', key: 'idleTimeoutMs', parse: integer(0, 86_400, 1000) },
  '--server-id': {
    env: 'CHAT_SERVER_ID',
    key: 'serverId',
    parse: (raw) => {
      const problem = serverIdProblem(raw);
      return problem === null ? raw : new Error(problem);
    },
  },
  '--high-water-mark': {
    env: 'CHAT_HIGH_WATER_MARK',
    key: 'highWaterMarkBytes',
    parse: integer(1024, 2 ** 31),
  },
  '--max-message': { env: 'CHAT_MAX_MESSAGE', key: 'maxMessageBytes', parse: integer(64, 64 * 1024 * 1024) },
  '--rate': { env: 'CHAT_RATE', key: 'messagesPerSecond', parse: integer(1, 10_000_000) },
  '--message-timeout': {
    env: 'CHAT_MESSAGE_TIMEOUT',
    key: 'messageTimeoutMs',
    parse: integer(0, 3600, 1000),
  },
  '--max-input': { env: 'CHAT_MAX_INPUT', key: 'maxInputBytes', parse: integer(64 * 1024, 2 ** 40) },
  '--max-legacy-message': {
    env: 'CHAT_MAX_LEGACY_MESSAGE',
    key: 'maxLegacyMessageBytes',
    parse: integer(1024, 64 * 1024 * 1024),
  },
  '--max-connections': { env: 'CHAT_MAX_CONNECTIONS', key: 'maxConnections', parse: integer(1, 10_000_000) },
  '--max-connections-per-ip': {
    env: 'CHAT_MAX_CONNECTIONS_PER_IP',
    key: 'maxConnectionsPerIp',
    parse: integer(0, 10_000_000),
  },
  '--max-anonymous': {
    env: 'CHAT_MAX_ANONYMOUS',
    key: 'maxAnonymousConnections',
    parse: integer(1, 10_000_000),
  },
  '--trusted-addresses': { env: 'CHAT_TRUSTED_ADDRESSES', key: 'trustedAddresses', parse: addressList },
  '--legacy-gap-ms': { env: 'CHAT_LEGACY_GAP_MS', key: 'legacyGapMs', parse: integer(1, 1000) },
  '--legacy-write-bytes': {
    env: 'CHAT_LEGACY_WRITE_BYTES',
    key: 'legacyWriteBytes',
    parse: integer(1024, 1024 * 1024),
  },
  '--redis': { env: 'CHAT_REDIS', key: 'redis', parse: text },
  '--redis-prefix': { env: 'CHAT_REDIS_PREFIX', key: 'redisPrefix', parse: text },
  '--workers': { env: 'CHAT_WORKERS', key: 'workers', parse: integer(0, 256) },
};

export type ParsedArgs = { help: true } | { help: false; config: ServerConfig } | { error: string };

/** Flags win over environment variables, which win over defaults. */
export function parseServerArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const config: ServerConfig = {
    host: '127.0.0.1',
    port: 6000,
    db: undefined,
    logLevel: 'info',
    logFormat: 'text',
    metricsPort: undefined,
    metricsHost: '127.0.0.1',
    idleTimeoutMs: 90_000,
    serverId: undefined,
    highWaterMarkBytes: 8 * 1024 * 1024,
    maxMessageBytes: 1024 * 1024,
    messagesPerSecond: 2000,
    messageTimeoutMs: 5000,
    maxInputBytes: 16 * 1024 * 1024,
    maxLegacyMessageBytes: 64 * 1024,
    maxConnections: 100_000,
    maxConnectionsPerIp: 256,
    maxAnonymousConnections: 4096,
    trustedAddresses: [...DEFAULT_TRUSTED_ADDRESSES],
    legacyGapMs: 2,
    legacyWriteBytes: 1024,
    redis: undefined,
    redisPrefix: 'chat',
    workers: undefined,
  };
  const assign = (flag: Flag, raw: string, source: string): string | null => {
    const value = flag.parse(raw);
    if (value instanceof Error) return `${source}: ${value.message}`;
    (config as unknown as Record<string, unknown>)[flag.key] = value;
    return null;
  };
  for (const flag of Object.values(FLAGS)) {
    const raw = env[flag.env];
    if (raw === undefined) continue;
    const error = assign(flag, raw, flag.env);
    if (error !== null) return { error };
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') return { help: true };
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const flag = FLAGS[name];
    if (flag === undefined) return { error: `unknown option '${arg}' (see --help)` };
    const raw = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (raw === undefined) return { error: `option ${name} needs a value` };
    const error = assign(flag, raw, name);
    if (error !== null) return { error };
  }
  if ((config.workers ?? 0) > 1 && config.redis === undefined) {
    return { error: '--workers above 1 needs --redis (workers deliver to each other through it)' };
  }
  if (config.redis !== undefined && !/^rediss?:\/\//.test(config.redis)) {
    return { error: `--redis must be a redis:// URL, got '${config.redis}'` };
  }
  return { help: false, config };
}

/**
 * Longest server id: the store records `serverId|epoch` (12 hex digits, UserModel.holderOf) in a
 * 64-character column.
 */
export const MAX_SERVER_ID_LENGTH = 50;

/** Why `id` cannot name a server (null when it can). */
export function serverIdProblem(id: string): string | null {
  if (id === '' || id.length > MAX_SERVER_ID_LENGTH || id.includes('|')) {
    return `server id '${id}' must be 1 to ${MAX_SERVER_ID_LENGTH} characters without '|'`;
  }
  return null;
}
