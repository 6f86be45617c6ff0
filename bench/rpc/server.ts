/**
 * bench/rpc server: serves bench.EchoService with one implementation and prints "ready <port>".
 *   native, classic  our RpcProvider (one process serves both formats; the client picks)
 *   grpc             @grpc/grpc-js with the same .proto
 *   plain            node:net, uint32 BE length-framed echo of the same bytes (the floor)
 * Exits on SIGTERM.
 */
import { createServer, type Socket } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { parseProto } from '../../src/rpc/proto.js';
import { RpcProvider } from '../../src/rpc/server/RpcProvider.js';
import { parseArgs } from '../lib/args.js';
import { ECHO_PROTO, isImpl, SERVICE_NAME } from './echoProto.js';

const args = parseArgs(
  process.argv.slice(2),
  { impl: 'native' },
  'usage: server.js --impl native|classic|grpc|plain\n',
);
const impl = args.impl;
if (!isImpl(impl)) throw new Error(`unknown impl ${impl}`);

interface EchoMessage {
  payload?: Uint8Array;
}

async function startOurs(): Promise<number> {
  const root = parseProto(ECHO_PROTO);
  const provider = new RpcProvider({ host: '127.0.0.1', port: 0 });
  provider.notifyService(root.lookupService(SERVICE_NAME), {
    Echo: (request: EchoMessage) => ({ payload: request.payload }),
  });
  const address = await provider.run();
  return address.port;
}

/** Loaded only for this implementation (see bench/rpc/client.ts, grpcClient). */
async function startGrpc(): Promise<number> {
  const grpc = await import('@grpc/grpc-js');
  const protoLoader = await import('@grpc/proto-loader');
  const json = parseProto(ECHO_PROTO).toJSON();
  const definition = protoLoader.fromJSON(json, { keepCase: true, defaults: false });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    bench: { EchoService: grpc.ServiceClientConstructor };
  };
  const server = new grpc.Server();
  server.addService(pkg.bench.EchoService.service, {
    Echo: (
      call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>,
      callback: grpc.sendUnaryData<EchoMessage>,
    ) => {
      callback(null, { payload: call.request.payload });
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    );
  });
}

/** Echoes every complete frame of a read back in one write. */
function startPlain(): Promise<number> {
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    let pending: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      const data: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
      let end = 0;
      while (data.length - end >= 4) {
        const len = data.readUInt32BE(end);
        if (data.length - end - 4 < len) break;
        end += 4 + len;
      }
      if (end > 0) socket.write(data.subarray(0, end));
      pending = end < data.length ? Buffer.from(data.subarray(end)) : null;
    });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

const port = impl === 'grpc' ? await startGrpc() : impl === 'plain' ? await startPlain() : await startOurs();
process.on('SIGTERM', () => process.exit(0));
console.log(`ready ${port}`);
