/**
 * bench/rpc: calls/s and p50/p99 latency of a 64-byte echo at several in-flight counts, for
 *   native   this library's native protocol (persistent multiplexed connection)
 *   grpc     @grpc/grpc-js serving the same .proto
 *   classic  the classic mprpc format (one connection per call), served by our provider
 *   plain    node:net length-framed echo of the same bytes: the floor
 * Each measurement runs a fresh server process and a client process; rounds alternate the
 * order of the implementations, and the table shows the median round.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs, positiveInt } from '../lib/args.js';
import { spawnReady, stopChild } from '../lib/spawn.js';
import { median } from '../lib/stats.js';
import { processCpuUs } from './cpuTime.js';
import { IMPLS, type Impl, isImpl } from './echoProto.js';

const help = `usage: npm run bench:rpc -- [options]
  --seconds 2          measured seconds per (implementation, concurrency)
  --rounds 2           rounds; the median is reported
  --concurrency 1,16,256
  --impls native,grpc,classic,plain
  --warmup 0.5         unmeasured seconds before each measurement
`;
const args = parseArgs(
  process.argv.slice(2),
  { seconds: '2', rounds: '2', concurrency: '1,16,256', impls: IMPLS.join(','), warmup: '0.5' },
  help,
);
const rounds = positiveInt(args.rounds, 'rounds');
const concurrencies = args.concurrency!.split(',').map((c) => positiveInt(c, 'concurrency'));
const impls = args.impls!.split(',').filter(isImpl);
const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

interface ClientResult {
  calls: number;
  seconds: number;
  p50Us: number;
  p99Us: number;
  cpuUs: number;
}
interface Cell {
  rate: number[];
  p50: number[];
  p99: number[];
  /** Client + server CPU µs per call (NaN where /proc is missing). */
  cpu: number[];
}

/** Runs the client; samples the server's CPU time over the client's measured window. */
async function runClient(
  args: string[],
  serverPid: number,
): Promise<{ result: ClientResult; serverCpuUs: number }> {
  const child = spawn(process.execPath, [here('client.js'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let startCpu: number | null = null;
  let serverCpuUs = Number.NaN;
  let last = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'measure start') startCpu = processCpuUs(serverPid);
    else if (line === 'measure end') {
      const end = processCpuUs(serverPid);
      if (startCpu !== null && end !== null) serverCpuUs = end - startCpu;
    } else last = line;
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`client exited with ${code}`);
  return { result: JSON.parse(last) as ClientResult, serverCpuUs };
}

const results = new Map<string, Cell>();
const cell = (impl: Impl, c: number): Cell => {
  const key = `${impl}/${c}`;
  let value = results.get(key);
  if (value === undefined) {
    value = { rate: [], p50: [], p99: [], cpu: [] };
    results.set(key, value);
  }
  return value;
};

async function measure(impl: Impl): Promise<void> {
  const { child, line } = await spawnReady(here('server.js'), ['--impl', impl], 'ready');
  try {
    const port = line.split(' ')[1]!;
    for (const c of concurrencies) {
      const { result: r, serverCpuUs } = await runClient(
        [
          '--impl',
          impl,
          '--port',
          port,
          '--concurrency',
          String(c),
          '--seconds',
          args.seconds!,
          '--warmup',
          args.warmup!,
        ],
        child.pid!,
      );
      const rate = r.calls / r.seconds;
      const cpuPerCall = (r.cpuUs + serverCpuUs) / r.calls;
      const target = cell(impl, c);
      target.rate.push(rate);
      target.p50.push(r.p50Us);
      target.p99.push(r.p99Us);
      target.cpu.push(cpuPerCall);
      console.log(
        `  ${impl.padEnd(8)} in-flight ${String(c).padStart(4)}: ${Math.round(rate).toLocaleString('en-US').padStart(9)} calls/s  p50 ${r.p50Us.toFixed(0).padStart(6)} us  p99 ${r.p99Us.toFixed(0).padStart(6)} us  cpu ${cpuPerCall.toFixed(1)} us/call`,
      );
    }
  } finally {
    await stopChild(child);
  }
}

console.log(
  `rpc bench: 64-byte echo, ${rounds} round(s) x ${args.seconds}s per cell, node ${process.version}, server and client in separate processes`,
);
for (let round = 1; round <= rounds; round++) {
  console.log(`round ${round}`);
  const order = round % 2 === 1 ? impls : [...impls].reverse();
  for (const impl of order) await measure(impl);
}

const fmtRate = (x: number): string => Math.round(x).toLocaleString('en-US');
const fmtUs = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(1)} ms` : `${x.toFixed(0)} us`);
const rows: string[][] = [['impl', 'in-flight', 'calls/s', 'p50', 'p99', 'CPU/call (client+server)']];
for (const impl of impls) {
  for (const c of concurrencies) {
    const v = cell(impl, c);
    rows.push([
      impl,
      String(c),
      fmtRate(median(v.rate)),
      fmtUs(median(v.p50)),
      fmtUs(median(v.p99)),
      `${median(v.cpu).toFixed(1)} us`,
    ]);
  }
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const printRow = (r: string[]): void =>
  console.log(`| ${r.map((x, i) => x.padStart(widths[i]!)).join(' | ')} |`);
console.log('');
printRow(rows[0]!);
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows.slice(1)) printRow(r);

if (impls.includes('native')) {
  console.log('');
  for (const c of concurrencies) {
    const ours = cell('native', c);
    const parts: string[] = [];
    for (const other of ['grpc', 'plain', 'classic'] as const) {
      if (!impls.includes(other)) continue;
      const them = cell(other, c);
      parts.push(
        `vs ${other}: ${(median(ours.rate) / median(them.rate)).toFixed(2)}x calls/s, p99 ${(median(ours.p99) / median(them.p99)).toFixed(2)}x`,
      );
    }
    console.log(`native @ ${String(c).padStart(3)} in flight  ${parts.join('  |  ')}`);
  }
}
