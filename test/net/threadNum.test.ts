import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpServer } from '../../src/net/TcpServer.js';
import { HOST, sleep, waitFor, withTimeout } from './helpers.js';

const fixture = fileURLToPath(new URL('../fixtures/net/pidEchoServer.mjs', import.meta.url));

let child: ChildProcess | null = null;
afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = null;
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Opens a connection, sends one byte, and resolves with the pid line the server answers. */
function askPid(port: number): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      const socket = connect({ host: HOST, port });
      let text = '';
      socket.on('error', reject);
      socket.on('connect', () => socket.write('?'));
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) {
          socket.end();
          resolve(Number(text.trim()));
        }
      });
    }),
    10_000,
    'pid reply',
  );
}

describe('TcpServer.setThreadNum', () => {
  it('validates its argument', () => {
    const server = new TcpServer();
    expect(() => server.setThreadNum(-1)).toThrow(RangeError);
    expect(() => server.setThreadNum(1.5)).toThrow(RangeError);
    expect(() => server.setThreadNum(0)).not.toThrow();
    expect(server.isSupervisor).toBe(false);
  });

  it('serves from 2 worker processes and stops them all on SIGTERM', async () => {
    const proc = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const lines = createInterface({ input: proc.stdout! });
    const portLine = await withTimeout(
      new Promise<string>((resolve, reject) => {
        lines.on('line', (line) => line.startsWith('port ') && resolve(line));
        proc.once('exit', (code) => reject(new Error(`fixture exited early (${code}): ${stderr}`)));
      }),
      20_000,
      'fixture to print its port',
    );
    const port = Number(portLine.slice('port '.length));
    expect(port).toBeGreaterThan(0);

    const pids: number[] = [];
    // Two waves of 10 concurrent connections.
    for (let wave = 0; wave < 2; wave++) {
      pids.push(...(await Promise.all(Array.from({ length: 10 }, () => askPid(port)))));
    }
    expect(pids).toHaveLength(20);
    const distinct = new Set(pids);
    expect(distinct.size).toBe(2);
    expect(distinct.has(proc.pid!)).toBe(false); // the supervisor serves nothing itself
    for (const pid of distinct) {
      expect(Number.isInteger(pid) && pid > 0).toBe(true);
      expect(alive(pid)).toBe(true);
    }

    await sleep(50); // let the clients' FINs reach the workers
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const [code, signal] = await withTimeout(exited, 15_000, 'fixture exit after SIGTERM');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // The workers went down with it.
    await waitFor(() => [...distinct].every((pid) => !alive(pid)), 10_000, 'workers to exit');
  }, 60_000);
});
