/**
 * The load generator of bench/chat (one process): N clients register and log in, then each
 * sends one-to-one messages to the next client (a ring), keeping `window` messages in flight.
 * Latency is end to end: from the sender's send to the recipient's push, both in this process.
 * With `--seconds 0` the clients just stay logged in and idle until SIGTERM (memory mode).
 * Prints progress to stderr and one JSON line of results to stdout.
 */
import { ChatClient } from '../../src/app/client/index.js';
import { parseArgs, positiveInt } from '../lib/args.js';
import { LatencyHistogram } from '../lib/stats.js';

const args = parseArgs(
  process.argv.slice(2),
  { port: '0', clients: '100', seconds: '5', window: '8', warmup: '1', prefix: 'u', connect: '200' },
  'usage: load --port N [--clients 100] [--seconds 5] [--window 8] [--warmup 1] [--prefix u] [--connect 200]\n',
);
const port = positiveInt(args.port, 'port');
const clientCount = positiveInt(args.clients, 'clients');
const seconds = Number(args.seconds);
const windowSize = positiveInt(args.window, 'window');
const connectBatch = positiveInt(args.connect, 'connect');

const clients: ChatClient[] = [];
const ids: number[] = [];
const stamp = `${args.prefix}${process.pid}x${Date.now().toString(36)}`;

async function inBatches<T>(count: number, fn: (i: number) => Promise<T>, label: string): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < count; start += connectBatch) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + connectBatch); i++) batch.push(fn(i));
    out.push(...(await Promise.all(batch)));
    process.stderr.write(`\r  ${label}: ${out.length}/${count}`);
  }
  process.stderr.write('\n');
  return out;
}

await inBatches(
  clientCount,
  async (i) => {
    const client = await ChatClient.connect({ host: '127.0.0.1', port, autoAck: true });
    clients[i] = client;
    const reg = await client.register(`${stamp}-${i}`, 'pw');
    if (reg.errno !== 0) throw new Error(`register failed: errno ${reg.errno} ${reg.errmsg}`);
    ids[i] = reg.id;
    const login = await client.login(reg.id, 'pw');
    if (login.errno !== 0) throw new Error(`login failed: errno ${login.errno} ${login.errmsg}`);
  },
  'register+login',
);

if (seconds === 0) {
  process.stdout.write(`${JSON.stringify({ ready: clientCount })}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', resolve));
  process.exit(0);
}

let measuring = false;
let delivered = 0;
let acked = 0;
let failed = 0;
const latencies = new LatencyHistogram();
let running = true;

for (let i = 0; i < clientCount; i++) {
  clients[i]!.onPush((push) => {
    if (!measuring) return;
    delivered++;
    const sentAt = Number(push.msg);
    latencies.record(performance.now() - sentAt);
  });
}

function pump(i: number): void {
  const client = clients[i]!;
  const to = ids[(i + 1) % clientCount]!;
  const sendOne = (): void => {
    if (!running) return;
    client.sendChat(to, String(performance.now())).then(
      (ack) => {
        if (ack.errno === 0) {
          if (measuring) acked++;
        } else failed++;
        sendOne();
      },
      () => {
        failed++;
      },
    );
  };
  for (let w = 0; w < windowSize; w++) sendOne();
}

for (let i = 0; i < clientCount; i++) pump(i);
await new Promise((r) => setTimeout(r, Number(args.warmup) * 1000));
measuring = true;
// Marks of the measured window, for a parent that samples CPU time (bench/lib/processCpu.ts).
process.stderr.write('  measuring\n');
const started = performance.now();
const cpuAtStart = process.cpuUsage();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const cpu = process.cpuUsage(cpuAtStart);
process.stderr.write('  measured\n');
const elapsed = (performance.now() - started) / 1000;
running = false;
const result = {
  clients: clientCount,
  seconds: elapsed,
  deliveredPerSec: delivered / elapsed,
  ackedPerSec: acked / elapsed,
  failed,
  p50: latencies.percentile(50),
  p99: latencies.percentile(99),
  /** This process's CPU time over the measured window (it may exit before a parent samples it). */
  loadCpuMs: (cpu.user + cpu.system) / 1000,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
for (const client of clients) client.destroy();
process.exit(0);
