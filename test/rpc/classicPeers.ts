/**
 * An independent implementation of the classic C++ mprpc side, written from docs/PROTOCOL.md §10
 * with raw node:net sockets and protobufjs (playing libprotobuf's part): nothing here comes
 * from src/rpc. It stands in for the unmodified C++ consumer and provider.
 *
 *   request:  uint32 headerSize (little-endian) | mprpc.RpcHeader | args
 *   response: the bare serialized response; the provider then closes the connection
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import protobuf from 'protobufjs';

const HEADER_PROTO = `
syntax = "proto3";
package mprpc;
message RpcHeader {
  bytes service_name = 1;
  bytes method_name = 2;
  uint32 args_size = 3;
}`;
const RpcHeader = protobuf.parse(HEADER_PROTO, { keepCase: true }).root.lookupType('mprpc.RpcHeader');

/** What MprpcChannel::CallMethod would see. */
export type ClassicOutcome =
  | { kind: 'response'; bytes: Buffer }
  /** recv() failed: the C++ consumer's controller reports "recv error". */
  | { kind: 'error'; code: string }
  /** Nothing within the wait (the C++ consumer would block in recv()). */
  | { kind: 'hang' };

export function classicRequestBytes(service: string, method: string, args: Uint8Array): Buffer {
  const header = RpcHeader.encode({
    service_name: Buffer.from(service),
    method_name: Buffer.from(method),
    args_size: args.length,
  }).finish();
  const size = Buffer.alloc(4);
  size.writeUInt32LE(header.length, 0); // x86 host order, as the C++ consumer writes it
  return Buffer.concat([size, header, args]);
}

/** One classic call: connect, send header and args, read until the provider closes. */
export function classicCall(
  host: string,
  port: number,
  service: string,
  method: string,
  args: Uint8Array,
  waitMs = 3000,
): Promise<ClassicOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (outcome: ClassicOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'hang' }), waitMs);
    socket.on('connect', () => socket.write(classicRequestBytes(service, method, args)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish({ kind: 'response', bytes: Buffer.concat(chunks) }));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish({ kind: 'error', code: error.code ?? 'error' }),
    );
  });
}

export type ClassicHandler = (args: Buffer) => Buffer | 'reset';

/**
 * A classic provider: reads one request per connection and answers with the bare response, then
 * closes. Like the C++ provider, an unknown service or method gets no answer and no close.
 */
export async function startClassicProvider(
  handlers: Record<string, ClassicHandler>,
): Promise<{ port: number; calls: string[]; close: () => Promise<void> }> {
  const calls: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let input = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      input = Buffer.concat([input, chunk]);
      if (input.length < 4) return;
      const size = input.readUInt32LE(0);
      if (input.length < 4 + size) return;
      const header = RpcHeader.decode(input.subarray(4, 4 + size)) as unknown as {
        service_name: Uint8Array;
        method_name: Uint8Array;
        args_size: number;
      };
      if (input.length < 4 + size + header.args_size) return;
      const key = `${Buffer.from(header.service_name)}/${Buffer.from(header.method_name)}`;
      calls.push(key);
      const handler = handlers[key];
      if (handler === undefined) return; // "xxx is not exist!" and nothing else
      const result = handler(input.subarray(4 + size, 4 + size + header.args_size));
      if (result === 'reset') socket.resetAndDestroy();
      else socket.end(result);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    calls,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
