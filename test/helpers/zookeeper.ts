/**
 * A private ZooKeeper for a test file: a standalone server on a free port with its data in a
 * temp dir, started through scripts/zookeeper.sh. `npm test` installs ZooKeeper first
 * (`bash scripts/zookeeper.sh install` in pretest); without it, startZooKeeper() fails saying so.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/zookeeper.sh', import.meta.url));
const HOST = '127.0.0.1';

export interface ZooKeeperHandle {
  readonly port: number;
  /** "127.0.0.1:port", for node-zookeeper-client and our options. */
  readonly connectString: string;
  readonly dataDir: string;
  /** Stops the server (SIGKILL when `hard`), keeping its data for `start`/`restart`. */
  stop(options?: { hard?: boolean }): Promise<void>;
  /** Starts it again on the same port and data (sessions survive if back within their timeout). */
  start(): Promise<void>;
  /** stop + wait `downMs` + start. */
  restart(options?: { downMs?: number; hard?: boolean }): Promise<void>;
  /** Stops it for good and deletes its data. */
  dispose(): Promise<void>;
}

function installed(): boolean {
  if (existsSync('/usr/share/java/zookeeper.jar')) return true;
  try {
    return readdirSync('/usr/share/zookeeper').some((name) => name.endsWith('.jar'));
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One `ruok` four-letter-word probe: true when the server answers `imok`. */
function ruok(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let text = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('ruok'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('imok')) done(true);
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(text.includes('imok')));
  });
}

const children = new Set<ChildProcess>();
let exitHook = false;

function killAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL');
  });
}

export interface StartZooKeeperOptions {
  /** How long to wait for `ruok` after each start. Default 30 000 ms. */
  startTimeoutMs?: number;
  /** ZooKeeper's tick: sessions may last 2 to 20 ticks. Default 500 ms (1 to 10 s sessions). */
  tickMs?: number;
}

export async function startZooKeeper(options: StartZooKeeperOptions = {}): Promise<ZooKeeperHandle> {
  if (!installed()) {
    throw new Error(
      'ZooKeeper is not installed: run `bash scripts/zookeeper.sh install` (npm test does it first)',
    );
  }
  killAllOnExit();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'mprpc-zk-'));
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  let child: ChildProcess | null = null;
  let log = '';

  const start = async (): Promise<void> => {
    if (child !== null) return;
    const proc = spawn('bash', [SCRIPT, 'start', String(port), dataDir, String(options.tickMs ?? 500)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    children.add(proc);
    log = '';
    const keep = (chunk: Buffer): void => {
      log = (log + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.once('exit', () => {
      children.delete(proc);
      if (child === proc) child = null;
    });
    const until = Date.now() + startTimeoutMs;
    // The JVM takes from half a second to a few seconds to answer.
    while (!(await ruok(port))) {
      if (child !== proc) throw new Error(`ZooKeeper exited while starting on ${port}:\n${log}`);
      if (Date.now() > until) {
        proc.kill('SIGKILL');
        throw new Error(`ZooKeeper did not answer ruok on ${port} within ${startTimeoutMs} ms:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stop = async (stopOptions: { hard?: boolean } = {}): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    child = null;
    const exited = new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    proc.kill(stopOptions.hard ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    port,
    connectString: `${HOST}:${port}`,
    dataDir,
    stop,
    start,
    async restart(restartOptions = {}) {
      await stop({ hard: restartOptions.hard });
      if (restartOptions.downMs) await new Promise((r) => setTimeout(r, restartOptions.downMs));
      await start();
    },
    async dispose() {
      await stop({ hard: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
