/**
 * chat-cluster as an operator runs it: N servers behind Nginx, with --metrics-port giving each
 * server its own metrics endpoint, printed at start; SIGINT stops it all.
 */
import { afterAll, expect, test } from 'vitest';
import { clusterMetricsPort } from '../../src/app/cluster/localCluster.js';
import { distPath } from '../../src/app/cluster/paths.js';
import { within } from '../e2e/support.js';
import { createTestMysqlUrl, type TestDatabase } from '../helpers/db.js';
import { freePorts, interruptLaunched, launch } from '../helpers/launcher.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  await interruptLaunched();
  for (const db of databases) await db.drop().catch(() => {});
}, 60_000);

test('--metrics-port: one endpoint per server, printed at start and serving; SIGINT stops the cluster', async () => {
  const db = await createTestMysqlUrl();
  databases.push(db);
  const [port, metricsPort] = [await freePorts(1), await freePorts(2)];
  const launched = await launch(
    distPath('app/bin/chat-cluster.js'),
    [
      ...['--servers', '2', '--base-port', '0', '--port', String(port), '--db', db.url],
      ...['--redis-prefix', `cluster-launcher-${process.pid}`, '--log-level', 'warn'],
      ...['--metrics-port', String(metricsPort)],
    ],
    'press Ctrl-C',
  );
  try {
    const urls = [0, 1].map((i) => `http://127.0.0.1:${metricsPort + i}/metrics`);
    expect(launched.out()).toContain(`metrics: ${urls.join(', ')}`);
    for (const url of urls) expect(await (await fetch(url)).text()).toMatch(/^chat_redis_up 1$/m);
  } finally {
    launched.proc.kill('SIGINT');
  }
  expect(await within(launched.exited, 30_000, 'chat-cluster to exit')).toBe(0);
}, 120_000);

test('servers with workers leave a port per worker: server i starts at P + i × workers', () => {
  expect(clusterMetricsPort({ metricsPort: 9000, workersPerServer: 0 }, 2)).toBe(9002);
  expect(clusterMetricsPort({ metricsPort: 9000, workersPerServer: 3 }, 2)).toBe(9006);
  expect(clusterMetricsPort({ workersPerServer: 3 }, 2)).toBeUndefined();
});
