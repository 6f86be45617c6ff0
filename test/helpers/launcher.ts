/**
 * The launchers (`npm run cluster`, `npm run distributed`) run as an operator runs them: spawned,
 * their output collected, ready once they print their ready line; stopped with Ctrl-C (SIGINT).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { within } from '../e2e/support.js';

export interface Launched {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

const started: ChildProcess[] = [];

/** Runs `bin` (a file under dist/) with `args` and waits until its stdout contains `ready`. */
export async function launch(bin: string, args: readonly string[], ready: string): Promise<Launched> {
  const proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await within(
    (async () => {
      while (!out.includes(ready)) {
        if (proc.exitCode !== null) throw new Error(`exited early:\n${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    })(),
    120_000,
    `${bin} to be ready:\n${err}`,
  );
  return { proc, out: () => out, err: () => err, exited };
}

/** For afterAll: Ctrl-C to what a failed test left running (it stops what it started); SIGKILL if that hangs. */
export async function interruptLaunched(): Promise<void> {
  for (const proc of started.splice(0)) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGINT');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await gone;
    clearTimeout(timer);
  }
}

const listenable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** The first of `count` consecutive free ports (one metrics port per server, say). */
export async function freePorts(count = 1): Promise<number> {
  for (;;) {
    const first = 20_000 + Math.floor(Math.random() * 40_000);
    const all = await Promise.all(Array.from({ length: count }, (_, k) => listenable(first + k)));
    if (all.every(Boolean)) return first;
  }
}
