/**
 * Runs once before the suite: fails fast, with a clear message, when a service the tests
 * need is down (MariaDB and Redis are started by the machine; ZooKeeper and Nginx by the
 * project's own scripts), and builds dist/ when it is older than src/ (the end-to-end suites
 * spawn the compiled server: `npx vitest run` must never test stale code). After the suite it
 * stops every private ZooKeeper this run started that is still running.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { ensureFreshDist } from './helpers/distFreshness.js';
import { killRunZooKeepers, TEST_RUN_ENV } from './helpers/testRun.js';

function probe(port: number, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(3000);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    const fail = (): void => {
      socket.destroy();
      reject(new Error(`${name} is not reachable on 127.0.0.1:${port}; start it (see README "Tests")`));
    };
    socket.once('error', fail);
    socket.once('timeout', fail);
  });
}

export async function setup(): Promise<void> {
  await probe(3306, 'MariaDB');
  await probe(6379, 'Redis');
  ensureFreshDist(resolve(import.meta.dirname, '..'));
  // Inherited by the test processes: their ZooKeeper data directories carry it (testRun.ts).
  process.env[TEST_RUN_ENV] ??= randomBytes(4).toString('hex');
}

/**
 * A test process's shared ZooKeeper (the e2e 'distributed' target) is killed by an exit hook,
 * which does not run when the test runner ends its worker with a signal: this one does.
 */
export function teardown(): void {
  killRunZooKeepers(process.env[TEST_RUN_ENV]);
}
