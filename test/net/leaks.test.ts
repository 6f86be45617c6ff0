import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { TcpClient } from '../../src/net/TcpClient.js';
import { HOST, sleep, startServer, waitFor } from './helpers.js';

/** Active libuv resources by kind, e.g. { TCPSocketWrap: 2, Timeout: 1 }. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

/**
 * Kinds with more live resources now than at `baseline`. Fewer is fine: the test runner's own
 * timers come and go.
 */
function extra(baseline: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [kind, count] of Object.entries(resources())) {
    if (count > (baseline[kind] ?? 0)) out[kind] = count - (baseline[kind] ?? 0);
  }
  return out;
}

type CloseMode = 'end' | 'destroy' | 'reset' | 'serverShutdown';
const modes: CloseMode[] = ['end', 'destroy', 'reset', 'serverShutdown'];

/** One raw client: connect, ping/pong, then close in the given way; resolves on 'close'. */
function oneConnection(port: number, mode: CloseMode): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: HOST, port });
    let replied = false;
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset or a racing close may surface as ECONNRESET/EPIPE; anything else is a failure.
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    socket.on('close', () => resolve());
    socket.on('connect', () => socket.write(mode === 'serverShutdown' ? 'bye' : 'ping'));
    socket.on('data', () => {
      if (replied) return;
      replied = true;
      if (mode === 'end') socket.end();
      else if (mode === 'destroy') socket.destroy();
      else if (mode === 'reset') socket.resetAndDestroy();
      // 'serverShutdown': the server half-closes; we answer its FIN by ending too (default).
    });
  });
}

describe('resource leaks', () => {
  it('10k connections opened and closed leave no connections, timers or handles behind', async () => {
    const baseline = resources();
    const loop = new EventLoop();
    let ups = 0;
    let downs = 0;
    const { server, port } = await startServer({ name: 'Leak', loop, backlog: 1024 }, (s) => {
      s.setConnectionCallback((conn) => {
        if (conn.connected) {
          ups += 1;
          // An idle timeout on every connection: each must be cancelled when it closes.
          conn.forceCloseWithDelay(60);
        } else {
          downs += 1;
        }
      });
      s.setMessageCallback((conn, buf) => {
        const text = buf.retrieveAllAsString();
        if (text === 'bye') {
          conn.send('bye');
          conn.shutdown();
        } else {
          conn.send('pong');
        }
      });
    });
    const total = 10_000;
    const batch = 500;
    const t0 = Date.now();
    for (let start = 0; start < total; start += batch) {
      await Promise.all(
        Array.from({ length: batch }, (_, i) => oneConnection(port, modes[(start + i) % modes.length]!)),
      );
    }
    await waitFor(() => downs === total, 10_000, 'every down callback');
    expect(ups).toBe(total);
    expect(server.connectionCount).toBe(0);
    expect(loop.timerCount()).toBe(0);
    // While listening, the only extra handle is the listen socket (which shows the check can see one).
    await waitFor(() => extra(baseline).TCPSocketWrap === undefined, 5000, 'sockets').catch(() => {});
    expect(extra(baseline).TCPSocketWrap).toBeUndefined();
    expect(extra(baseline).TCPServerWrap).toBe(1);
    await server.stop({ graceMs: 100 });
    await waitFor(() => Object.keys(extra(baseline)).length === 0, 5000, 'handles').catch(() => {});
    expect(extra(baseline)).toEqual({});
    // Generous: it normally takes a few seconds.
    expect(Date.now() - t0).toBeLessThan(25_000);
  }, 40_000);

  it('1000 TcpClients connecting and disconnecting leave no timers or handles behind', async () => {
    const baseline = resources();
    const serverLoop = new EventLoop();
    const clientLoop = new EventLoop();
    const { server, port } = await startServer({ name: 'LeakC', loop: serverLoop }, (s) =>
      s.setMessageCallback((conn, buf) => conn.send(buf.retrieveAllAsString())),
    );
    let downs = 0;
    for (let start = 0; start < 1000; start += 250) {
      const clients = Array.from({ length: 250 }, () => {
        const client = new TcpClient({ host: HOST, port, loop: clientLoop });
        client.enableRetry(); // retry on, yet a deliberate disconnect must not reconnect
        client.setConnectionCallback((conn) => {
          if (conn.connected) conn.send('hi');
          else downs += 1;
        });
        client.setMessageCallback((conn, buf) => {
          buf.retrieveAll();
          conn.loop.queueInLoop(() => client.disconnect());
        });
        client.connect();
        return client;
      });
      await waitFor(() => downs === start + 250, 15_000, 'clients down');
      expect(clients.every((c) => c.connection === null)).toBe(true);
    }
    await waitFor(() => server.connectionCount === 0, 5000, 'server side closed');
    await sleep(50);
    expect(downs).toBe(1000);
    expect(clientLoop.timerCount()).toBe(0);
    expect(serverLoop.timerCount()).toBe(0);
    await server.stop({ graceMs: 100 });
    await waitFor(() => Object.keys(extra(baseline)).length === 0, 5000, 'handles').catch(() => {});
    expect(extra(baseline)).toEqual({});
  }, 40_000);
});
