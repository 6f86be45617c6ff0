/**
 * bench/rpc client: keeps `--concurrency` calls of a 64-byte echo in flight against one server
 * for `--seconds` (after `--warmup`), then prints one JSON line:
 *   {"calls": n, "seconds": s, "p50Us": x, "p99Us": y, "cpuUs": client CPU time while measuring}
 * preceded by "measure start" / "measure end" lines that bracket the measured window.
 * Every implementation is driven the same way: `concurrency` loops, each awaiting one call at a
 * time (a promise per call, plain included).
 */
import { connect, type Socket } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { ClassicRpcChannel } from '../../src/rpc/client/ClassicRpcChannel.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { parseProto } from '../../src/rpc/proto.js';
import { createStub } from '../../src/rpc/stub.js';
import type { MethodTypes } from '../../src/rpc/types.js';
import { parseArgs, positiveInt } from '../lib/args.js';
import { LatencyHistogram } from '../lib/stats.js';
import { ECHO_PROTO, isImpl, SERVICE_NAME } from './echoProto.js';

const args = parseArgs(
  process.argv.slice(2),
  { impl: 'native', port: '0', concurrency: '1', seconds: '2', warmup: '0.5', payload: '64' },
  'usage: client.js --impl I --port P [--concurrency 1] [--seconds 2] [--warmup 0.5] [--payload 64]\n',
);
const impl = args.impl;
if (!isImpl(impl)) throw new Error(`unknown impl ${impl}`);
const port = positiveInt(args.port, 'port');
const concurrency = positiveInt(args.concurrency, 'concurrency');
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const payload = Buffer.alloc(positiveInt(args.payload, 'payload'), 0x61);

interface EchoMessage {
  payload?: Uint8Array;
}
type Call = () => Promise<unknown>;

/** Our stub over either channel (native: persistent multiplexed; classic: a connection per call). */
function ours(channel: RpcChannel | ClassicRpcChannel): { call: Call; close: () => Promise<void> } {
  const stub = createStub<{ Echo: MethodTypes<EchoMessage, EchoMessage> }>(
    channel,
    parseProto(ECHO_PROTO).lookupService(SERVICE_NAME),
  );
  const request = { payload };
  return { call: () => stub.Echo(request), close: () => channel.close() };
}

/**
 * Loaded only for this implementation: merely importing @grpc/grpc-js slows every other client in
 * the process (measured: about half of each young-generation GC's objects then survive it).
 */
async function grpcClient(): Promise<{ call: Call; close: () => Promise<void> }> {
  const grpc = await import('@grpc/grpc-js');
  const protoLoader = await import('@grpc/proto-loader');
  const definition = protoLoader.fromJSON(parseProto(ECHO_PROTO).toJSON(), {
    keepCase: true,
    defaults: false,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    bench: { EchoService: grpc.ServiceClientConstructor };
  };
  const client = new pkg.bench.EchoService(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Echo: (
      request: EchoMessage,
      callback: (error: grpc.ServiceError | null, response?: EchoMessage) => void,
    ) => void;
  };
  const request = { payload };
  const call: Call = () =>
    new Promise((resolve, reject) =>
      client.Echo(request, (error, response) => (error ? reject(error) : resolve(response))),
    );
  return {
    call,
    close: async () => client.close(),
  };
}

/** A length-framed echo client: responses come back in order, so a FIFO of resolvers matches them. */
function plainClient(): { call: Call; close: () => Promise<void> } {
  const socket: Socket = connect({ host: '127.0.0.1', port, noDelay: true });
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  const waiting: ((value: Buffer) => void)[] = [];
  let head = 0;
  let pending: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    const data: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let p = 0;
    while (data.length - p >= 4) {
      const len = data.readUInt32BE(p);
      if (data.length - p - 4 < len) break;
      const body = data.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      const resolve = waiting[head++]!;
      resolve(body);
    }
    if (head > 1024 && head * 2 > waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
    pending = p < data.length ? Buffer.from(data.subarray(p)) : null;
  });
  // Writes made in one turn go out together, as the RPC implementations batch theirs.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  const call: Call = () =>
    new Promise<Buffer>((resolve) => {
      waiting.push(resolve);
      if (!corked) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      socket.write(frame);
    });
  return {
    call,
    close: async () => {
      socket.destroy();
    },
  };
}

const { call, close } =
  impl === 'native'
    ? ours(new RpcChannel({ host: '127.0.0.1', port }))
    : impl === 'classic'
      ? ours(new ClassicRpcChannel({ host: '127.0.0.1', port }))
      : impl === 'grpc'
        ? await grpcClient()
        : plainClient();

// Warm the connection and the JIT, then measure.
const latencies = new LatencyHistogram();
let calls = 0;
let measuring = false;
let running = true;

async function worker(): Promise<void> {
  while (running) {
    const t0 = performance.now();
    await call();
    if (measuring) {
      calls++;
      latencies.record((performance.now() - t0) * 1000);
    }
  }
}

const workers = Array.from({ length: concurrency }, () => worker());
await new Promise((r) => setTimeout(r, warmup * 1000));
// The orchestrator samples the server's CPU time between these two lines.
console.log('measure start');
measuring = true;
const cpu0 = process.cpuUsage();
const started = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const elapsed = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log('measure end');
running = false;
await Promise.all(workers);
await close();
console.log(
  JSON.stringify({
    calls,
    seconds: elapsed,
    p50Us: latencies.percentile(50),
    p99Us: latencies.percentile(99),
    cpuUs: cpu.user + cpu.system,
  }),
);
process.exit(0);
