import { once } from 'node:events';
import { connect as netConnect, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Connector, kInitRetryDelayMs, kMaxRetryDelayMs } from '../../src/net/Connector.js';
import { EventLoop } from '../../src/net/EventLoop.js';
import { TcpClient, type TcpClientOptions } from '../../src/net/TcpClient.js';
import type { TcpServer } from '../../src/net/TcpServer.js';
import { deferred, freePort, HOST, sleep, startServer, waitFor, withTimeout } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(setup: (s: TcpServer) => void = () => {}, port = 0) {
  const started = await startServer({ name: 'Srv', port }, setup);
  cleanups.push(() => started.server.stop({ graceMs: 200 }));
  return started;
}

function makeClient(options: Partial<TcpClientOptions> & { port: number }) {
  const loop = options.loop ?? new EventLoop();
  const client = new TcpClient({ host: HOST, name: 'Cli', ...options, loop });
  const events: string[] = [];
  const failures: Array<{ error: Error; retryInMs: number | null; at: number }> = [];
  client.setConnectionCallback((conn) => events.push(conn.connected ? 'up' : 'down'));
  client.setConnectFailedCallback((error, retryInMs) => failures.push({ error, retryInMs, at: Date.now() }));
  cleanups.push(() => {
    client.stop();
    client.connection?.forceClose();
  });
  return { client, loop, events, failures };
}

describe('TcpClient', () => {
  it('connects, exchanges data, disconnects, and can connect again', async () => {
    const serverEvents: string[] = [];
    const { port, server: srv } = await server((s) => {
      s.setConnectionCallback((c) => serverEvents.push(c.connected ? 'up' : 'down'));
      s.setMessageCallback((c, buf) => c.send(buf.retrieveAllAsString().toUpperCase()));
    });
    const { client, events, loop } = makeClient({ port, noDelay: true });
    const replies: string[] = [];
    client.setMessageCallback((_c, buf) => replies.push(buf.retrieveAllAsString()));
    client.setConnectionCallback((conn) => {
      events.push(conn.connected ? 'up' : 'down');
      if (conn.connected) conn.send('hello');
    });
    expect(client.connection).toBeNull();
    expect(client.retryEnabled).toBe(false);
    expect(client.loop).toBe(loop);
    client.connect();
    await waitFor(() => replies.join('') === 'HELLO', 5000, 'reply');
    expect(events).toEqual(['up']);
    expect(client.connection?.connected).toBe(true);
    expect(srv.connectionCount).toBe(1);

    client.disconnect();
    await waitFor(() => events.length === 2 && serverEvents.length === 2, 5000, 'down');
    expect(client.connection).toBeNull();
    expect(srv.connectionCount).toBe(0);

    // Connecting again after a disconnect makes a fresh connection.
    client.connect();
    await waitFor(() => events.length === 3, 5000, 'second up');
    await waitFor(() => replies.join('') === 'HELLOHELLO', 5000, 'second reply');
    expect(client.connection?.name).toBe(`Cli-${HOST}:${port}#2`);
    expect(events).toEqual(['up', 'down', 'up']);
    client.disconnect();
    await waitFor(() => events.length === 4, 5000, 'second down');
    await sleep(50);
    expect(events).toEqual(['up', 'down', 'up', 'down']);
    expect(loop.timerCount()).toBe(0);
  });

  it('connect() right after disconnect() reconnects once the old connection is down', async () => {
    const { port, server: srv } = await server();
    const { client, events } = makeClient({ port });
    client.connect();
    await waitFor(() => events.length === 1, 5000, 'up');
    client.disconnect();
    client.connect(); // the first connection is still closing
    await waitFor(() => events.length === 3, 5000, 'down, then up again');
    expect(events).toEqual(['up', 'down', 'up']);
    expect(client.connection?.connected).toBe(true);
    await waitFor(() => srv.connectionCount === 1, 5000, 'one server-side connection');
    // disconnect() then connect() then disconnect() again: stays down.
    client.disconnect();
    client.connect();
    client.disconnect();
    await waitFor(() => events.length === 4, 5000, 'down');
    await sleep(100);
    expect(events).toEqual(['up', 'down', 'up', 'down']);
  });

  it('without retry, connect() after the server dropped the connection connects again', async () => {
    let accepted = 0;
    const { port } = await server((s) =>
      s.setConnectionCallback((c) => {
        if (c.connected && ++accepted === 1) c.shutdown();
      }),
    );
    const { client, events } = makeClient({ port });
    client.connect();
    await waitFor(() => events.length === 2, 5000, 'up, down');
    await sleep(50);
    expect(events).toEqual(['up', 'down']); // no automatic reconnect without retry
    client.connect();
    await waitFor(() => events.length === 3, 5000, 'up again');
    expect(accepted).toBe(2);
  });

  it('reports a refused connect once, with retryInMs null, when retry is off', async () => {
    const port = await freePort();
    const { client, events, failures, loop } = makeClient({ port });
    client.connect();
    await waitFor(() => failures.length === 1, 5000, 'connect failed');
    await sleep(100);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.retryInMs).toBeNull();
    expect((failures[0]!.error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(events).toEqual([]);
    expect(client.connection).toBeNull();
    expect(loop.timerCount()).toBe(0);
  });

  it('uses a 500 ms initial and 30 s maximum back-off by default', async () => {
    expect(kInitRetryDelayMs).toBe(500);
    expect(kMaxRetryDelayMs).toBe(30_000);
    const port = await freePort();
    const { client, failures, loop } = makeClient({ port });
    client.enableRetry();
    client.connect();
    await waitFor(() => failures.length === 1, 5000, 'first failure');
    expect(failures[0]!.retryInMs).toBe(500);
    expect(loop.timerCount()).toBe(1);
    client.stop();
    expect(loop.timerCount()).toBe(0);
  });

  it('with enableRetry, reaches a server that starts ~1.2 s late, backing off exponentially', async () => {
    const port = await freePort();
    const { client, events, failures } = makeClient({ port, initRetryDelayMs: 50, maxRetryDelayMs: 400 });
    client.enableRetry();
    expect(client.retryEnabled).toBe(true);
    const t0 = Date.now();
    client.connect();
    await sleep(1200);
    expect(events).toEqual([]);
    const serverUp = deferred();
    await server((s) => s.setConnectionCallback((c) => c.connected && serverUp.resolve()), port);
    await withTimeout(serverUp.promise, 5000, 'server saw the client');
    await waitFor(() => events.length === 1, 5000, 'client up');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
    const delays = failures.map((f) => f.retryInMs);
    // 50, 100, 200, 400, 400, … : doubling, capped.
    expect(delays.slice(0, 4)).toEqual([50, 100, 200, 400]);
    expect(delays.every((d) => d !== null && d <= 400)).toBe(true);
    expect(failures.length).toBeGreaterThanOrEqual(4);
    expect(client.connection?.connected).toBe(true);
  });

  it('with enableRetry, reconnects after the server drops the connection', async () => {
    let accepted = 0;
    const { port } = await server((s) =>
      s.setConnectionCallback((c) => {
        if (!c.connected) return;
        accepted += 1;
        if (accepted === 1) c.forceClose(); // drop the first connection only
      }),
    );
    const { client, events, loop } = makeClient({ port, initRetryDelayMs: 20 });
    client.enableRetry();
    client.connect();
    await waitFor(() => events.length === 3, 5000, 'up, down, up');
    expect(events).toEqual(['up', 'down', 'up']);
    expect(accepted).toBe(2);
    expect(client.connection?.connected).toBe(true);
    // A deliberate disconnect does not trigger another reconnect.
    client.disconnect();
    await waitFor(() => events.length === 4, 5000, 'down');
    await sleep(200);
    expect(events).toEqual(['up', 'down', 'up', 'down']);
    expect(accepted).toBe(2);
    expect(loop.timerCount()).toBe(0);
  });

  it('stop() stops retrying', async () => {
    const port = await freePort();
    const { client, failures, loop } = makeClient({ port, initRetryDelayMs: 20, maxRetryDelayMs: 20 });
    client.enableRetry();
    client.connect();
    await waitFor(() => failures.length >= 2, 5000, 'two failures');
    client.stop();
    const seen = failures.length;
    expect(loop.timerCount()).toBe(0);
    await sleep(200);
    expect(failures.length).toBe(seen);
  });

  it('stop() called from the connect-failed callback leaves no retry timer behind', async () => {
    const port = await freePort();
    const { client, loop } = makeClient({ port, initRetryDelayMs: 10_000 });
    const failed = deferred();
    client.setConnectFailedCallback(() => {
      client.stop();
      failed.resolve();
    });
    client.enableRetry();
    client.connect();
    await withTimeout(failed.promise, 5000, 'failure');
    expect(loop.timerCount()).toBe(0);
  });

  it('stop() abandons a connect in progress', async () => {
    const { port } = await server();
    const { client, events, failures } = makeClient({ port });
    client.connect();
    client.stop();
    await sleep(100);
    expect(events).toEqual([]);
    expect(failures).toEqual([]);
    expect(client.connection).toBeNull();
  });

  it('leaves an established connection alone on stop()', async () => {
    const { port } = await server();
    const { client, events } = makeClient({ port });
    client.connect();
    await waitFor(() => events.length === 1, 5000, 'up');
    client.stop();
    await sleep(50);
    expect(client.connection?.connected).toBe(true);
  });
});

describe('self-connect rejection', () => {
  /**
   * A client connecting to an unused loopback port can, with small odds, be given that very port
   * as its ephemeral port, and TCP simultaneous open then connects the socket to itself. Waiting
   * for that to happen naturally takes thousands of attempts, so the test forces the kernel's
   * choice: it binds the client's socket to the destination port (Node's `localPort` option)
   * by wrapping `Socket.prototype.connect` for that one port. The self-connect itself is real.
   */
  it('a socket bound to the destination port really connects to itself on this OS', async () => {
    const port = await freePort();
    const socket = netConnect({ host: HOST, port, localAddress: HOST, localPort: port });
    socket.on('error', () => {});
    await withTimeout(once(socket, 'connect'), 5000, 'self connect');
    expect(socket.localPort).toBe(port);
    expect(socket.remotePort).toBe(port);
    socket.destroy();
  });

  it('the Connector rejects a self-connect and reports it as a connect failure', async () => {
    const port = await freePort();
    const original = Socket.prototype.connect;
    const patched = function (this: Socket, ...args: unknown[]): Socket {
      const [options] = args;
      if (typeof options === 'object' && options !== null && (options as { port?: number }).port === port) {
        args[0] = { ...options, localAddress: HOST, localPort: port };
      }
      return (original as (...a: unknown[]) => Socket).apply(this, args);
    };
    Socket.prototype.connect = patched as unknown as typeof original;
    cleanups.push(() => {
      Socket.prototype.connect = original;
    });
    const { client, events, failures } = makeClient({ port });
    client.connect();
    await waitFor(() => failures.length === 1, 5000, 'self-connect failure');
    expect(failures[0]!.error.message).toMatch(new RegExp(`self connect on ${HOST}:${port}`));
    expect(failures[0]!.retryInMs).toBeNull();
    await sleep(50);
    expect(events).toEqual([]);
    expect(client.connection).toBeNull();
  });

  it('a bare Connector reports the self-connect too, and retries it when asked', async () => {
    const port = await freePort();
    const original = Socket.prototype.connect;
    const patched = function (this: Socket, ...args: unknown[]): Socket {
      const [options] = args;
      if (typeof options === 'object' && options !== null && (options as { port?: number }).port === port) {
        args[0] = { ...options, localAddress: HOST, localPort: port };
      }
      return (original as (...a: unknown[]) => Socket).apply(this, args);
    };
    Socket.prototype.connect = patched as unknown as typeof original;
    cleanups.push(() => {
      Socket.prototype.connect = original;
    });
    const loop = new EventLoop();
    const connector = new Connector({ host: HOST, port, loop, retry: true, initRetryDelayMs: 30 });
    cleanups.push(() => connector.stop());
    const got: Array<number | null> = [];
    let sockets = 0;
    connector.setNewSocketCallback((socket) => {
      sockets += 1;
      socket.destroy();
    });
    connector.setConnectFailedCallback((error, retryInMs) => {
      if (/self connect/.test(error.message)) got.push(retryInMs);
    });
    connector.start();
    expect(connector.state).toBe('connecting');
    await waitFor(() => got.length >= 2, 5000, 'two self-connect rejections');
    connector.stop();
    expect(connector.state).toBe('disconnected');
    expect(got.slice(0, 2)).toEqual([30, 60]);
    expect(sockets).toBe(0);
    expect(loop.timerCount()).toBe(0);
  });
});
