/** Small helpers shared by the net tests: real sockets on 127.0.0.1, bounded waits. */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { EventLoop } from '../../src/net/EventLoop.js';
import { TcpServer, type TcpServerOptions } from '../../src/net/TcpServer.js';

export const HOST = '127.0.0.1';

/** The client's (nothing net about it; one copy for the repository). */
export { type Deferred, deferred } from '../../src/app/client/deferred.js';

/** Rejects if `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every few ms until it holds; rejects after `ms`. */
export async function waitFor(condition: () => boolean, ms: number, label: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a TcpServer on 127.0.0.1 with its own loop (unless given) and returns it with its port. */
export async function startServer(
  options: TcpServerOptions = {},
  setup: (server: TcpServer) => void = () => {},
): Promise<{ server: TcpServer; port: number; loop: EventLoop }> {
  const loop = options.loop ?? new EventLoop();
  const server = new TcpServer({ host: HOST, port: 0, ...options, loop });
  setup(server);
  const address = await server.start();
  return { server, port: address.port, loop };
}

/** A raw node:net client, resolved once connected. */
export async function rawConnect(port: number, allowHalfOpen = false): Promise<Socket> {
  const socket = connect({ host: HOST, port, allowHalfOpen });
  await withTimeout(once(socket, 'connect'), 5000, `raw connect to ${port}`);
  return socket;
}

/** Collects everything `socket` receives until EOF (or close). */
export function readUntilEnd(socket: Socket): Promise<globalThis.Buffer> {
  const chunks: globalThis.Buffer[] = [];
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: globalThis.Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(globalThis.Buffer.concat(chunks)));
    socket.once('close', () => resolve(globalThis.Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Deterministic, position-dependent bytes, so reordering or corruption is detectable. */
export function pattern(length: number, seed = 0): globalThis.Buffer {
  const out = globalThis.Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return out;
}
