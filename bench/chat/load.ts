/**
 * The load generator of bench/chat (one process): N clients register and log in, then each
 * sends one-to-one messages to the next client (a ring), keeping `window` messages in flight.
 * With `--group-size G`, clients also form groups of G consecutive clients and `--group-share`
 * percent of the sends are group messages to the sender's group (one push per other member).
 * Latency is end to end: from the sender's send to the recipient's push, both in this process.
 * With `--seconds 0` the clients just stay logged in and idle until SIGTERM (memory mode).
 * Prints progress to stderr and one JSON line of results to stdout.
 */
import { ChatClient } from '../../src/app/client/index.js';
import { parseArgs, positiveInt } from '../lib/args.js';
import { LatencyHistogram } from '../lib/stats.js';

const args = parseArgs(
  process.argv.slice(2),
  {
    port: '0',
    clients: '100',
    seconds: '5',
    window: '8',
    warmup: '1',
    prefix: 'u',
    connect: '200',
    'group-size': '0',
    'group-share': '20',
  },
  'usage: load --port N[,N…] (client i uses the (i mod count)-th) [--clients 100] [--seconds 5] [--window 8] [--warmup 1] [--prefix u] [--connect 200]\n' +
    '            [--group-size 0 (no groups)] [--group-share 20 (percent of sends)]\n',
);
// Several ports: clients spread evenly over them, as discovering clients spread over gateways.
const ports = args.port!.split(',').map((p) => positiveInt(p, 'port'));
const clientCount = positiveInt(args.clients, 'clients');
const seconds = Number(args.seconds);
const windowSize = positiveInt(args.window, 'window');
const connectBatch = positiveInt(args.connect, 'connect');
const groupSize = Number(args['group-size']);
const groupShare = Number(args['group-share']);
if (!Number.isInteger(groupSize) || groupSize < 0 || groupSize === 1 || groupSize > clientCount) {
  throw new Error('--group-size must be 0 or 2 to --clients');
}
if (!(groupShare >= 0 && groupShare <= 100)) throw new Error('--group-share must be 0 to 100');

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
    const port = ports[i % ports.length]!;
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

// Groups of `groupSize` consecutive clients: the first creates it, the others join.
const groupOf: number[] = [];
if (groupSize > 0) {
  const leaders = Array.from({ length: Math.ceil(clientCount / groupSize) }, (_, g) => g * groupSize);
  const groupIds = await inBatches(
    leaders.length,
    async (g) => {
      const reply = await clients[leaders[g]!]!.createGroup(`${stamp}-g${g}`, 'bench');
      if (reply.errno !== 0 || reply.groupid === 0)
        throw new Error(`create group failed: errno ${reply.errno}`);
      return reply.groupid;
    },
    'create groups',
  );
  for (let i = 0; i < clientCount; i++) groupOf[i] = groupIds[Math.floor(i / groupSize)]!;
  await inBatches(
    clientCount,
    async (i) => {
      if (i % groupSize === 0) return;
      const reply = await clients[i]!.joinGroup(groupOf[i]!);
      if (reply.errno !== 0) throw new Error(`join group failed: errno ${reply.errno}`);
    },
    'join groups',
  );
}

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
  // Every (100 / share)-th send goes to the group, spread evenly (no randomness between runs).
  let sent = 0;
  let groupCredit = 0;
  const sendOne = (): void => {
    if (!running) return;
    sent++;
    const toGroup = groupSize > 0 && Math.floor((sent * groupShare) / 100) > groupCredit;
    if (toGroup) groupCredit++;
    const body = String(performance.now());
    const send = toGroup ? client.groupChat(groupOf[i]!, body) : client.sendChat(to, body);
    send.then(
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
  groupSize,
  groupShare: groupSize > 0 ? groupShare : 0,
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
