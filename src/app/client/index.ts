export type { GatewayRecord } from '../distributed/GatewayRegistry.js';
export {
  ChatClient,
  type ChatClientEvents,
  type ChatClientOptions,
  type ChatClientStats,
  type CloseInfo,
  type SendChatOptions,
} from './ChatClient.js';
export { type ClientCodec, type CodecName, JsonClientCodec, loadClientCodec } from './codec.js';
export {
  ChatClientError,
  type ChatClientErrorCode,
  describeSocketError,
  isChatClientError,
} from './errors.js';
/** Types only: the locator (and the ZooKeeper client) is loaded when `discover` is used. */
export type { GatewayLocator, GatewayLocatorOptions } from './GatewayLocator.js';
export { LegacyClient, type LegacyClientOptions, type LegacyMessage } from './LegacyClient.js';
export {
  type ReconnectInfo,
  ReconnectingChatClient,
  type ReconnectingChatClientEvents,
  type ReconnectingChatClientOptions,
  type ReconnectingChatClientStats,
} from './ReconnectingChatClient.js';
export { classicTime } from './time.js';
export type * from './types.js';
export { ProtocolViolation } from './types.js';
