import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Starts `node script args…` and resolves with the child once it prints a line starting with `ready`. */
export async function spawnReady(
  script: string,
  args: string[],
  readyPrefix: string,
  timeoutMs = 20_000,
): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => reject(new Error(`${script} exited early with ${code}`)));
    lines.on('line', (text) => {
      if (text.startsWith(readyPrefix)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
  return { child, line };
}

/**
 * Runs `node script args…` to completion and returns its last stdout line parsed as JSON. Its
 * stderr goes to ours; `onStderrLine` also sees each line.
 */
export async function runJson<T>(
  script: string,
  args: string[],
  onStderrLine?: (line: string) => void,
): Promise<T> {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', onStderrLine === undefined ? 'inherit' : 'pipe'],
  });
  if (onStderrLine !== undefined) {
    child.stderr!.pipe(process.stderr);
    createInterface({ input: child.stderr! }).on('line', onStderrLine);
  }
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  const last = out.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}
