/**
 * Spawns the real chat server (the compiled `dist/app/bin/chat-server.js`; `npm run build`
 * makes it) on a free port with a throwaway SQLite file, and stops it afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chatServerBin, distPath } from '../../../src/app/cluster/paths.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../../..');
export const SERVER_BIN = chatServerBin();
export const CLIENT_BIN = distPath('app/bin/chat-client.js');

export interface RunningServer {
  host: string;
  port: number;
  /** Everything the server printed so far (stdout + stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the database directory. */
  stop(): Promise<void>;
  /** SIGKILL at once (a crash); removes the database directory. */
  kill(): Promise<void>;
}

export async function startServer(extraArgs: readonly string[] = []): Promise<RunningServer> {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`${SERVER_BIN} is missing: run 'npm run build' first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'chat-client-test-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      SERVER_BIN,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--db',
      join(dir, 'chat.db'),
      '--log-level',
      'warn',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const listening = new Promise<{ host: string; port: number }>((resolveListen, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 15 s:\n${output}`)), 15_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const m = /listening on (\S+):(\d+)/.exec(output);
      if (m !== null) {
        clearTimeout(timer);
        resolveListen({ host: m[1]!, port: Number(m[2]) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening:\n${output}`));
    });
  });
  let address: { host: string; port: number };
  try {
    address = await listening;
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    ...address,
    output: () => output,
    stop: () => stopWith('SIGTERM'),
    kill: () => stopWith('SIGKILL'),
  };
}

let counter = 0;

/** A user name unique within the test run (names must be unique on the server). */
export function uniqueName(prefix = 'u'): string {
  counter++;
  return `${prefix}${process.pid.toString(36)}${counter}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(
    0,
    50,
  );
}
