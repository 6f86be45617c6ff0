/**
 * bench/pingpong: this library vs plain node:net on muduo's pingpong protocol, in alternating
 * rounds of the same run. One server process and one client process per measurement.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs, positiveInt } from '../lib/args.js';
import { runJson, spawnReady, stopChild } from '../lib/spawn.js';
import { median } from '../lib/stats.js';

const help = `usage: npm run bench:pingpong -- [options]
  --sessions 100,1000   comma-separated session counts
  --block 16384         block size in bytes for the throughput runs
  --seconds 5           seconds per measurement
  --rounds 3            alternating (lib, plain) rounds per session count
  --latency-block 1024  block size for the echo latency runs
`;
const args = parseArgs(
  process.argv.slice(2),
  { sessions: '100,1000', block: '16384', seconds: '5', rounds: '3', 'latency-block': '1024' },
  help,
);
const sessionCounts = args.sessions!.split(',').map((s) => positiveInt(s, 'sessions'));
const rounds = positiveInt(args.rounds, 'rounds');
const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const impls = ['lib', 'plain'] as const;

interface ClientResult {
  bytesRead: number;
  seconds: number;
  rttMs: [number, number];
}

async function measure(impl: string, sessions: number, block: string, mode: string): Promise<ClientResult> {
  const { child, line } = await spawnReady(here('server.js'), ['--impl', impl], 'ready');
  try {
    const port = line.split(' ')[1]!;
    return await runJson<ClientResult>(here('client.js'), [
      '--impl',
      impl,
      '--port',
      port,
      '--sessions',
      String(sessions),
      '--block',
      block,
      '--seconds',
      args.seconds!,
      '--mode',
      mode,
    ]);
  } finally {
    await stopChild(child);
  }
}

const mib = (r: ClientResult): number => r.bytesRead / r.seconds / (1024 * 1024);
console.log(`pingpong: ${rounds} rounds x ${args.seconds}s, block ${args.block} B, node ${process.version}`);
for (const sessions of sessionCounts) {
  const samples: Record<string, number[]> = { lib: [], plain: [] };
  for (let round = 1; round <= rounds; round++) {
    // Alternate which goes first so drift on the machine does not favour one side.
    const order = round % 2 === 1 ? impls : [...impls].reverse();
    for (const impl of order) {
      const result = await measure(impl, sessions, args.block!, 'stream');
      samples[impl]!.push(mib(result));
      console.log(`  sessions=${sessions} round=${round} ${impl.padEnd(5)} ${mib(result).toFixed(1)} MiB/s`);
    }
  }
  const lat: Record<string, ClientResult> = {};
  for (const impl of impls) lat[impl] = await measure(impl, sessions, args['latency-block']!, 'latency');
  const lib = median(samples.lib!);
  const plain = median(samples.plain!);
  console.log(
    `sessions=${sessions}: lib ${lib.toFixed(1)} MiB/s, plain node:net ${plain.toFixed(1)} MiB/s, ratio ${(lib / plain).toFixed(2)}x` +
      ` | echo latency ${args['latency-block']} B p50/p99: lib ${lat.lib!.rttMs.map((x) => x.toFixed(2)).join('/')} ms,` +
      ` plain ${lat.plain!.rttMs.map((x) => x.toFixed(2)).join('/')} ms`,
  );
}
