/**
 * Private ZooKeeper for a test file, on src/app/cluster/localZooKeeper.ts (scripts/zookeeper.sh):
 * a standalone server (`startZooKeeper`) or a three-node ensemble (`startZooKeeperEnsemble`)
 * whose members can be stopped and started one by one, on free ports with data in a temp dir.
 * `npm test` installs ZooKeeper first (`bash scripts/zookeeper.sh install` in pretest); without
 * it, both fail saying so.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type LocalZooKeeper,
  startLocalZooKeeper,
  type ZooKeeperServer,
  zooKeeperServing,
} from '../../src/app/cluster/localZooKeeper.js';
import { zooKeeperDirPrefix } from './testRun.js';

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

export interface ZooKeeperEnsembleHandle {
  /** "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3". */
  readonly connectString: string;
  /** Members 1..3: `stop({hard})` and `start()` one at a time ("stop one of three", "kill two"). */
  readonly members: readonly ZooKeeperServer[];
  /** Whether member `i` (0-based) serves requests right now (false without a quorum). */
  serving(i: number): Promise<boolean>;
  /** Stops every member and deletes the data. */
  dispose(): Promise<void>;
}

export interface StartZooKeeperOptions {
  /** How long to wait for a server to serve after each start. Default 30 000 ms. */
  startTimeoutMs?: number;
  /** ZooKeeper's tick: sessions may last 2 to 20 ticks. Default 500 ms (1 to 10 s sessions). */
  tickMs?: number;
}

function installed(): boolean {
  if (existsSync('/usr/share/java/zookeeper.jar')) return true;
  try {
    return readdirSync('/usr/share/zookeeper').some((name) => name.endsWith('.jar'));
  } catch {
    return false;
  }
}

async function start(
  size: number,
  options: StartZooKeeperOptions,
): Promise<{ zk: LocalZooKeeper; dir: string }> {
  if (!installed()) {
    throw new Error(
      'ZooKeeper is not installed: run `bash scripts/zookeeper.sh install` (npm test does it first)',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), zooKeeperDirPrefix()));
  try {
    const zk = await startLocalZooKeeper({
      size,
      dir,
      tickMs: options.tickMs ?? 500,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
    });
    return { zk, dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export async function startZooKeeper(options: StartZooKeeperOptions = {}): Promise<ZooKeeperHandle> {
  const { zk, dir } = await start(1, options);
  const server = zk.servers[0]!;
  return {
    port: server.port,
    connectString: zk.connectString,
    dataDir: dir,
    stop: (stopOptions) => server.stop(stopOptions),
    start: () => server.start(),
    async restart(restartOptions = {}) {
      await server.stop({ hard: restartOptions.hard });
      if (restartOptions.downMs) await new Promise((r) => setTimeout(r, restartOptions.downMs));
      await server.start();
    },
    async dispose() {
      await zk.stop({ hard: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A three-node ensemble (odd `size` accepted); resolves once every member serves. */
export async function startZooKeeperEnsemble(
  options: StartZooKeeperOptions & { size?: number } = {},
): Promise<ZooKeeperEnsembleHandle> {
  const { zk, dir } = await start(options.size ?? 3, options);
  return {
    connectString: zk.connectString,
    members: zk.servers,
    serving: (i) => zooKeeperServing(zk.servers[i]!.port),
    async dispose() {
      await zk.stop({ hard: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
