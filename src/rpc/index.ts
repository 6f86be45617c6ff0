/** mprpc for TypeScript: protobuf services over the muduo-style net library (README.md beside this file). */
export { formatHostPort, type HostPort, parseHostPort, parseZkHosts } from './address.js';
export { ClassicRpcChannel, type ClassicRpcChannelOptions } from './client/ClassicRpcChannel.js';
export type { RpcCaller } from './client/RpcCaller.js';
export { RpcChannel, type RpcChannelOptions } from './client/RpcChannel.js';
export { loadRpcConfig, parseRpcConfig, type RpcConfig } from './config.js';
export { isRpcError, RpcError, type RpcErrorCode, type RpcErrorOptions } from './errors.js';
export {
  type DescribeOptions,
  describeService,
  loadProto,
  lookupService,
  type MethodDescriptor,
  parseProto,
  type ServiceDescriptor,
} from './proto.js';
export { RpcController } from './RpcController.js';
export {
  type ChildChange,
  type ChildDecoder,
  type ChildListener,
  ChildWatch,
} from './registry/ChildWatch.js';
export { putEphemeral } from './registry/ephemeral.js';
export {
  classicMethodPath,
  classicServicePath,
  DEFAULT_REGISTRY_ROOT,
  decodeJsonNode,
  decodeRecord,
  encodeJsonNode,
  type ProviderRecord,
  providerPath,
  providersPath,
} from './registry/layout.js';
export { ProviderDirectory, type ProviderInfo } from './registry/ProviderDirectory.js';
export { RegistrationUpkeep, type RegistrationUpkeepOptions } from './registry/RegistrationUpkeep.js';
export { ZkSession, type ZkSessionOptions } from './registry/ZkSession.js';
export type { ProviderStats } from './server/ProviderStats.js';
export { RpcProvider, type RpcProviderOptions } from './server/RpcProvider.js';
export { createStub } from './stub.js';
export type {
  CallContext,
  CallOptions,
  Handler,
  MethodTypes,
  RequestOf,
  ResponseOf,
  ServiceImpl,
  ServiceShape,
  Stub,
  UntypedService,
} from './types.js';
export { CLASSIC_HEADER_PROTO, NATIVE_META_PROTO } from './wire/protoSources.js';
