/** What a stub needs from a channel, and request encoding shared by both channels. */
import protobuf from 'protobufjs';
import { RpcError } from '../errors.js';
import type { MethodDescriptor } from '../proto.js';
import type { RpcController } from '../RpcController.js';
import type { CallOptions } from '../types.js';
import { copyBytes } from '../wire/copyBytes.js';

export interface RpcCaller {
  call<Res extends object = Record<string, unknown>>(
    method: MethodDescriptor,
    request: object,
    options?: CallOptions | RpcController,
  ): Promise<Res>;
}

const writer = protobuf.Writer.create();

/** The request's bytes, or BAD_REQUEST when it does not fit the request type. */
export function encodeRequest(
  method: MethodDescriptor,
  request: object,
  verify: boolean,
): Uint8Array | RpcError {
  const type = method.requestType;
  if (typeof request !== 'object' || request === null) {
    return new RpcError('BAD_REQUEST', `${method.fullName}: request must be an object`, {
      mayHaveExecuted: false,
    });
  }
  const message = request as Record<string, unknown>;
  if (verify) {
    const problem = type.verify(message);
    if (problem !== null) {
      return new RpcError('BAD_REQUEST', `${method.fullName}: bad ${type.name}: ${problem}`, {
        mayHaveExecuted: false,
      });
    }
  }
  writer.pos = 0;
  writer.states = null;
  try {
    type.encode(message, writer);
  } catch (cause) {
    return new RpcError('BAD_REQUEST', `${method.fullName}: cannot encode ${type.name}: ${String(cause)}`, {
      cause,
      mayHaveExecuted: false,
    });
  }
  // An owned copy: it is kept for retries.
  const body = globalThis.Buffer.allocUnsafe(writer.pos);
  copyBytes(writer.buf, 0, writer.pos, body, 0);
  return body;
}
