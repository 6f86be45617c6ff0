import type { ChatServerOptions } from './ChatServer.js';
import type { ServerConfig } from './config.js';

/**
 * The connection side of a ChatServer from the command line: chat-server and chat-gateway take
 * the same flags, so they build their ChatServer options here, once.
 */
export function connectionOptionsOf(
  config: ServerConfig,
  serverId: string,
): Omit<ChatServerOptions, 'logger' | 'presence' | 'router' | 'metrics' | 'loop'> {
  return {
    host: config.host,
    port: config.port,
    serverId,
    idleTimeoutMs: config.idleTimeoutMs,
    highWaterMarkBytes: config.highWaterMarkBytes,
    maxMessageBytes: config.maxMessageBytes,
    messagesPerSecond: config.messagesPerSecond,
    messageTimeoutMs: config.messageTimeoutMs,
    maxInputBytes: config.maxInputBytes,
    maxLegacyMessageBytes: config.maxLegacyMessageBytes,
    connectionLimits: {
      maxConnections: config.maxConnections,
      maxPerAddress: config.maxConnectionsPerIp,
      trustedAddresses: config.trustedAddresses,
    },
    maxAnonymousConnections: config.maxAnonymousConnections,
    legacyGapMs: config.legacyGapMs,
    legacyWriteBytes: config.legacyWriteBytes,
  };
}
