/** Typed stubs: one async function per method of a .proto service, bound to a channel. */
import protobuf from 'protobufjs';
import type { RpcCaller } from './client/RpcCaller.js';
import { describeService, type ServiceDescriptor } from './proto.js';
import type { ServiceShape, Stub, UntypedService } from './types.js';

/**
 * `createStub<UserService>(channel, root.lookupService('fixbug.UserServiceRpc'))` →
 * `stub.Login(request, { timeoutMs })`. The type parameter describes the messages (see
 * `MethodTypes`); the method set comes from the .proto.
 */
export function createStub<S extends ServiceShape<S> = UntypedService>(
  channel: RpcCaller,
  service: protobuf.Service | ServiceDescriptor,
): Stub<S> {
  const descriptor = service instanceof protobuf.Service ? describeService(service) : service;
  const stub: Record<string, unknown> = Object.create(null);
  for (const [name, method] of descriptor.methods) {
    stub[name] = (request: object, options?: Parameters<RpcCaller['call']>[2]) =>
      channel.call(method, request, options);
  }
  return Object.freeze(stub) as Stub<S>;
}
