/**
 * bench/chat: the real chat-server process under N logged-in clients sending one-to-one
 * messages to online peers, on the SQLite and the MySQL store, next to a minimal baseline
 * server written directly on node:net (JSON frames, no persistence) in the same run; then the
 * server's memory per idle logged-in connection.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { parseArgs, positiveInt } from '../lib/args.js';
import { runJson, spawnReady, stopChild } from '../lib/spawn.js';

const help = `usage: npm run bench:chat -- [options]
  --clients 100,1000     comma-separated client counts
  --seconds 5            measured seconds per run (after 1 s warm-up)
  --window 8             messages in flight per client
  --targets baseline,sqlite,mysql
  --rounds 3             rounds per client count, each starting with another target; the
                         median round is reported
  --settle 2             seconds of pause before each run (background I/O of the last one)
  --idle 10000           idle logged-in connections for the memory figure (0 = skip)
  --mysql mysql://root@127.0.0.1:3306
`;
const args = parseArgs(
  process.argv.slice(2),
  {
    clients: '100,1000',
    seconds: '5',
    window: '8',
    targets: 'baseline,sqlite,mysql',
    idle: '10000',
    rounds: '3',
    settle: '2',
    mysql: 'mysql://root@127.0.0.1:3306',
  },
  help,
);
const clientCounts = args.clients!.split(',').map((s) => positiveInt(s, 'clients'));
const targets = args.targets!.split(',');
const idle = Number(args.idle);
const roundCount = positiveInt(args.rounds!, 'rounds');
const settleMs = Number(args.settle) * 1000;
const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const serverBin = fileURLToPath(new URL('../../src/app/bin/chat-server.js', import.meta.url));

interface LoadResult {
  clients: number;
  deliveredPerSec: number;
  ackedPerSec: number;
  failed: number;
  p50: number;
  p99: number;
}

interface Target {
  script: string;
  args: string[];
  cleanup: () => Promise<void>;
}

async function makeTarget(kind: string): Promise<Target> {
  if (kind === 'baseline') return { script: here('baselineServer.js'), args: [], cleanup: async () => {} };
  const common = ['--port', '0', '--log-level', 'warn', '--rate', '1000000', '--idle-timeout', '0'];
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'bench-chat-'));
    return {
      script: serverBin,
      args: [...common, '--db', join(dir, 'chat.db')],
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `bench_chat_${process.pid}_${Date.now()}`;
  const admin = await mysql.createConnection(args.mysql!);
  await admin.end();
  return {
    script: serverBin,
    args: [...common, '--db', `${args.mysql}/${name}`],
    cleanup: async () => {
      const conn = await mysql.createConnection(args.mysql!);
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

async function runLoad(kind: string, clients: number): Promise<LoadResult> {
  const target = await makeTarget(kind);
  const { child, line } = await spawnReady(target.script, target.args, 'listening on', 60_000);
  try {
    const port = line.split(':').pop()!;
    return await runJson<LoadResult>(here('load.js'), [
      '--port',
      port,
      '--clients',
      String(clients),
      '--seconds',
      args.seconds!,
      '--window',
      args.window!,
    ]);
  } finally {
    await stopChild(child);
    await target.cleanup();
  }
}

async function idleMemory(kind: string, count: number): Promise<{ perConnKiB: number; totalMiB: number }> {
  const target = await makeTarget(kind);
  const { child, line } = await spawnReady(target.script, target.args, 'listening on', 60_000);
  const port = line.split(':').pop()!;
  const before = rssKiB(child.pid!);
  const load = await spawnReady(
    here('load.js'),
    ['--port', port, '--clients', String(count), '--seconds', '0', '--connect', '500'],
    '{"ready"',
    600_000,
  );
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssKiB(child.pid!);
  await stopChild(load.child);
  await stopChild(child);
  await target.cleanup();
  return { perConnKiB: (after - before) / count, totalMiB: after / 1024 };
}

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');
console.log(
  `bench/chat: ${args.seconds}s per run, window ${args.window}, node ${process.version}, 2-core machine`,
);
/** Lets background work of the previous run (writeback, a dropped database) finish first. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, settleMs));

for (const clients of clientCounts) {
  const rounds: Record<string, LoadResult[]> = Object.fromEntries(targets.map((t) => [t, []]));
  for (let round = 0; round < roundCount; round++) {
    // Each round starts with a different target, so none always runs right after another.
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    for (const kind of order) {
      console.error(`${kind}, ${clients} clients, round ${round + 1}/${roundCount}`);
      await settle();
      const r = await runLoad(kind, clients);
      rounds[kind]!.push(r);
      console.log(
        `  ${kind.padEnd(8)} clients=${clients} round ${round + 1}: ${fmt(r.deliveredPerSec, 0)} msgs/s delivered ` +
          `(${fmt(r.ackedPerSec, 0)} acked), latency p50 ${fmt(r.p50, 2)} ms p99 ${fmt(r.p99, 2)} ms, failed ${r.failed}`,
      );
    }
  }
  const results: Record<string, LoadResult> = {};
  for (const kind of targets) {
    const runs = rounds[kind]!;
    // The median round by throughput, with its own latencies.
    const sorted = [...runs].sort((a, b) => a.deliveredPerSec - b.deliveredPerSec);
    const r = sorted[(sorted.length - 1) >> 1]!;
    results[kind] = r;
    console.log(
      `  ${kind.padEnd(8)} clients=${clients} median of ${runs.length}: ${fmt(r.deliveredPerSec, 0)} msgs/s, ` +
        `p50 ${fmt(r.p50, 2)} ms p99 ${fmt(r.p99, 2)} ms (rounds: ${runs.map((x) => fmt(x.deliveredPerSec, 0)).join(' / ')} msgs/s, ` +
        `p99 ${runs.map((x) => fmt(x.p99, 1)).join(' / ')} ms)`,
    );
  }
  const base = results.baseline;
  if (base) {
    for (const kind of targets.filter((t) => t !== 'baseline')) {
      const r = results[kind]!;
      console.log(
        `  ${kind} / baseline at ${clients} clients: ${fmt(r.deliveredPerSec / base.deliveredPerSec, 2)}x throughput`,
      );
    }
  }
}
if (idle > 0) {
  for (const kind of ['baseline', 'sqlite']) {
    console.error(`memory: ${idle} idle logged-in connections on ${kind}`);
    const m = await idleMemory(kind, idle);
    console.log(
      `  memory ${kind}: ${fmt(m.perConnKiB, 2)} KiB per idle logged-in connection (${idle} connections, RSS ${fmt(m.totalMiB)} MiB)`,
    );
  }
}
