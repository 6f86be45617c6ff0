/**
 * chat-cluster as an operator runs it: N servers behind Nginx, with --metrics-port giving each
 * server its own metrics endpoint, printed at start; SIGINT stops it all.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { afterAll, expect, test } from 'vitest';
import { clusterMetricsPort } from '../../src/app/cluster/localCluster.js';
import { distPath } from '../../src/app/cluster/paths.js';
import { within } from '../e2e/support.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop().catch(() => {});
});

const listenable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A free port followed by `count - 1` free ports. */
async function freePorts(count: number): Promise<number> {
  for (;;) {
    const first = 20_000 + Math.floor(Math.random() * 40_000);
    const all = await Promise.all(Array.from({ length: count }, (_, k) => listenable(first + k)));
    if (all.every(Boolean)) return first;
  }
}

test('--metrics-port: one endpoint per server, printed at start and serving; SIGINT stops the cluster', async () => {
  const db = await createTestMysqlUrl();
  databases.push(db);
  const [port, metricsPort] = [await freePorts(1), await freePorts(2)];
  const proc = spawn(
    process.execPath,
    [
      distPath('app/bin/chat-cluster.js'),
      ...['--servers', '2', '--base-port', '0', '--port', String(port), '--db', db.url],
      ...['--redis-prefix', `cluster-launcher-${process.pid}`, '--log-level', 'warn'],
      ...['--metrics-port', String(metricsPort)],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  try {
    await within(
      (async () => {
        while (!out.includes('press Ctrl-C')) {
          if (proc.exitCode !== null) throw new Error(`exited early:\n${err}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      })(),
      60_000,
      `chat-cluster to be ready:\n${err}`,
    );
    const urls = [0, 1].map((i) => `http://127.0.0.1:${metricsPort + i}/metrics`);
    expect(out).toContain(`metrics: ${urls.join(', ')}`);
    for (const url of urls) expect(await (await fetch(url)).text()).toMatch(/^chat_redis_up 1$/m);
  } finally {
    proc.kill('SIGINT');
  }
  expect(await within(exited, 30_000, 'chat-cluster to exit')).toBe(0);
}, 120_000);

test('servers with workers leave a port per worker: server i starts at P + i × workers', () => {
  expect(clusterMetricsPort({ metricsPort: 9000, workersPerServer: 0 }, 2)).toBe(9002);
  expect(clusterMetricsPort({ metricsPort: 9000, workersPerServer: 3 }, 2)).toBe(9006);
  expect(clusterMetricsPort({ workersPerServer: 3 }, 2)).toBeUndefined();
});
