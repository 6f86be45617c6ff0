/** What a stub needs from a channel, and request encoding shared by both channels. */
import { RpcError } from '../errors.js';
import type { MethodDescriptor } from '../proto.js';
import type { RpcController } from '../RpcController.js';
import type { CallOptions } from '../types.js';
import { encodeOwned } from '../wire/messageWriter.js';

export interface RpcCaller {
  call<Res extends object = Record<string, unknown>>(
    method: MethodDescriptor,
    request: object,
    options?: CallOptions | RpcController,
  ): Promise<Res>;
}

/** BAD_REQUEST when `request` is not an object or (with `verify`) does not fit the request type. */
export function checkRequest(method: MethodDescriptor, request: object, verify: boolean): RpcError | null {
  if (typeof request !== 'object' || request === null) {
    return new RpcError('BAD_REQUEST', `${method.fullName}: request must be an object`, {
      mayHaveExecuted: false,
    });
  }
  if (verify) {
    const problem = method.requestType.verify(request as Record<string, unknown>);
    if (problem !== null) {
      return new RpcError('BAD_REQUEST', `${method.fullName}: bad ${method.requestType.name}: ${problem}`, {
        mayHaveExecuted: false,
      });
    }
  }
  return null;
}

/** The BAD_REQUEST for a request protobufjs could not encode. */
export function unencodable(method: MethodDescriptor, cause: unknown): RpcError {
  return new RpcError(
    'BAD_REQUEST',
    `${method.fullName}: cannot encode ${method.requestType.name}: ${String(cause)}`,
    { cause, mayHaveExecuted: false },
  );
}

/** The request's bytes (an owned copy), or BAD_REQUEST when it does not fit the request type. */
export function encodeRequest(
  method: MethodDescriptor,
  request: object,
  verify: boolean,
): Uint8Array | RpcError {
  const problem = checkRequest(method, request, verify);
  if (problem !== null) return problem;
  try {
    return encodeOwned(method.requestType, request);
  } catch (cause) {
    return unencodable(method, cause);
  }
}
