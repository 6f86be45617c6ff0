/** Providers in child processes (so that a test can SIGKILL one), built from dist/. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { distPath } from '../../src/app/cluster/paths.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/providerChild.mjs', import.meta.url));
const SRC = fileURLToPath(new URL('../../src/rpc', import.meta.url));
const DIST_INDEX = distPath('rpc/index.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The child runs the compiled library: refuse to test stale code. */
export function assertDistFresh(): void {
  let built: number;
  try {
    built = statSync(DIST_INDEX).mtimeMs;
  } catch {
    throw new Error('dist/rpc is missing: run `npm run build` first (npm test does)');
  }
  if (newestMtime(SRC) > built + 1000) {
    throw new Error('dist/rpc is older than src/rpc: run `npm run build` first (npm test does)');
  }
}

export interface ChildProvider {
  readonly name: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** "Method seq" of every handler run, in order. */
  readonly ran: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startChildProvider(
  zookeeper: string,
  name: string,
  sessionTimeoutMs = 2000,
): Promise<ChildProvider> {
  const child = spawn(process.execPath, [FIXTURE, zookeeper, name, String(sessionTimeoutMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ran: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready in 15 s: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      if (line.startsWith('ready ')) {
        clearTimeout(timer);
        resolve(Number(line.slice(6)));
      } else if (line.startsWith('ran ')) {
        ran.push(line.slice(4));
      }
    });
  });
  return {
    name,
    port,
    process: child,
    ran,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      await exited;
    },
  };
}
