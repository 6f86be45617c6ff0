/** Shared pieces of the RPC tests: the test services, their implementations, small waits. */
import { readFileSync } from 'node:fs';
import type protobuf from 'protobufjs';
import { parseProto } from '../../src/rpc/proto.js';
import type { MethodTypes, ServiceImpl } from '../../src/rpc/types.js';

export const HOST = '127.0.0.1';

export const TEST_PROTO = fileURLPath('./fixtures/test.proto');
export const root: protobuf.Root = parseProto(readFileSync(TEST_PROTO, 'utf8'));
export const clientViewRoot: protobuf.Root = parseProto(
  readFileSync(fileURLPath('./fixtures/client-view.proto'), 'utf8'),
);
export const userService = root.lookupService('fixbug.UserServiceRpc');
export const echoService = root.lookupService('fixbug.EchoService');

function fileURLPath(relative: string): string {
  return new URL(relative, import.meta.url).pathname;
}

export interface EchoRequest {
  payload?: Uint8Array;
  delay_ms?: number;
  fail?: string;
  seq?: number;
}
export interface EchoResponse {
  payload: Uint8Array;
  served_by: string;
  seq: number;
}
export interface LoginRequest {
  name?: Uint8Array;
  pwd?: Uint8Array;
}
export interface LoginResponse {
  result?: { errcode?: number; errmsg?: Uint8Array };
  success?: boolean;
}

export interface EchoShape {
  Echo: MethodTypes<EchoRequest, EchoResponse>;
  Append: MethodTypes<EchoRequest, EchoResponse>;
}
export interface UserShape {
  Login: MethodTypes<LoginRequest, LoginResponse>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Echo handlers that report `name` as the provider, honour delay_ms and fail on request. */
export function echoImpl(name: string, counter?: { calls: number; appends: number }): ServiceImpl<EchoShape> {
  const handle = async (request: EchoRequest): Promise<EchoResponse> => {
    if (request.delay_ms) await sleep(request.delay_ms);
    if (request.fail) throw new Error(request.fail);
    return { payload: request.payload ?? new Uint8Array(0), served_by: name, seq: request.seq ?? 0 };
  };
  return {
    Echo: (request) => {
      if (counter) counter.calls++;
      // Immediate answers for plain echoes: the synchronous path of the provider.
      if (!request.delay_ms && !request.fail) {
        return { payload: request.payload ?? new Uint8Array(0), served_by: name, seq: request.seq ?? 0 };
      }
      return handle(request);
    },
    Append: (request) => {
      if (counter) counter.appends++;
      return handle(request);
    },
  };
}

/** The classic example's Login: succeeds for zhang san / 123456. */
export const userImpl: ServiceImpl<UserShape> = {
  Login: (request) => {
    const ok =
      Buffer.from(request.name ?? []).toString() === 'zhang san' &&
      Buffer.from(request.pwd ?? []).toString() === '123456';
    return { result: { errcode: ok ? 0 : 1, errmsg: Buffer.from(ok ? '' : 'bad password') }, success: ok };
  },
};

/** Expects `promise` to reject with an RpcError of `code`; returns the error. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; mayHaveExecuted: boolean }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; mayHaveExecuted: boolean };
  }
  throw new Error('expected the call to fail');
}
