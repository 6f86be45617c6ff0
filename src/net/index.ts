/** muduo-ts/net: a muduo-style reactor network library on node:net. */
export { Buffer } from './Buffer.js';
export type {
  ConnectionCallback,
  ErrorCallback,
  Functor,
  HighWaterMarkCallback,
  MessageCallback,
  TimerCallback,
  WriteCompleteCallback,
} from './Callbacks.js';
export {
  type ConnectFailedCallback,
  Connector,
  type ConnectorState,
  kInitRetryDelayMs,
  kMaxRetryDelayMs,
} from './Connector.js';
export { Dispatcher } from './Dispatcher.js';
export { EventLoop } from './EventLoop.js';
export { NetError, type NetErrorCode } from './errors.js';
export { InetAddress } from './InetAddress.js';
export {
  type CodecErrorCallback,
  type FrameCallback,
  kDefaultMaxFrameSize,
  LengthHeaderCodec,
  type LengthHeaderCodecOptions,
} from './LengthHeaderCodec.js';
export { TcpClient, type TcpClientOptions } from './TcpClient.js';
export { type ConnectionState, kDefaultHighWaterMark, TcpConnection } from './TcpConnection.js';
export { type StopOptions, TcpServer, type TcpServerOptions } from './TcpServer.js';
export { TimerId } from './TimerQueue.js';
