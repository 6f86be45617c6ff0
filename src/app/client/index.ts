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
export { LegacyClient, type LegacyClientOptions, type LegacyMessage } from './LegacyClient.js';
export { classicTime } from './time.js';
export type * from './types.js';
export { ProtocolViolation } from './types.js';
