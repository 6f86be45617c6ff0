/**
 * Pingpong client. `--mode stream`: each session sends one block, then echoes whatever it
 * reads (muduo's protocol; throughput = bytes read / seconds). `--mode latency`: each session
 * waits for its whole block to come back, records the round trip, and sends it again.
 * Prints one JSON line: { bytesRead, seconds, rttMs: [p50, p99] }.
 */
import { connect, type Socket } from 'node:net';
import { TcpClient, type TcpConnection } from '../../src/net/index.js';
import { parseArgs, positiveInt } from '../lib/args.js';
import { percentile } from '../lib/stats.js';

const args = parseArgs(
  process.argv.slice(2),
  { impl: 'lib', port: '0', sessions: '100', block: '16384', seconds: '5', mode: 'stream' },
  'usage: client --impl lib|plain --port N [--sessions 100] [--block 16384] [--seconds 5] [--mode stream|latency]\n',
);
const port = positiveInt(args.port, 'port');
const sessions = positiveInt(args.sessions, 'sessions');
const blockSize = positiveInt(args.block, 'block');
const seconds = Number(args.seconds);
const latencyMode = args.mode === 'latency';
const block = Buffer.alloc(blockSize, 'x');

let measuring = false;
let bytesRead = 0;
const rtts: number[] = [];
let connected = 0;
let startedAt = 0;
const closers: (() => void)[] = [];

function onAllConnected(): void {
  startedAt = performance.now();
  measuring = true;
  setTimeout(finish, seconds * 1000);
}

function finish(): void {
  measuring = false;
  const elapsed = (performance.now() - startedAt) / 1000;
  const result = { bytesRead, seconds: elapsed, rttMs: [percentile(rtts, 50), percentile(rtts, 99)] };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const close of closers) close();
  process.exit(0);
}

function sessionUp(): void {
  if (++connected === sessions) onAllConnected();
}

if (args.impl === 'lib') {
  for (let i = 0; i < sessions; i++) {
    const client = new TcpClient({ host: '127.0.0.1', port, noDelay: true });
    let sentAt = 0;
    client.setConnectionCallback((conn: TcpConnection) => {
      if (!conn.connected) return;
      sentAt = performance.now();
      conn.send(block);
      sessionUp();
    });
    client.setMessageCallback((conn, buffer) => {
      if (latencyMode) {
        if (buffer.readableBytes() < blockSize) return;
        if (measuring) rtts.push(performance.now() - sentAt);
        buffer.retrieve(blockSize);
        sentAt = performance.now();
        conn.send(block);
        return;
      }
      if (measuring) bytesRead += buffer.readableBytes();
      conn.send(buffer);
    });
    client.setConnectFailedCallback((error) => {
      process.stderr.write(`connect failed: ${error.message}\n`);
      process.exit(1);
    });
    client.connect();
    closers.push(() => client.connection?.forceClose());
  }
} else {
  for (let i = 0; i < sessions; i++) {
    const socket: Socket = connect({ host: '127.0.0.1', port, noDelay: true });
    let sentAt = 0;
    let pending = 0;
    socket.on('connect', () => {
      sentAt = performance.now();
      socket.write(block);
      sessionUp();
    });
    socket.on('data', (data: Buffer) => {
      if (latencyMode) {
        pending += data.length;
        if (pending < blockSize) return;
        pending -= blockSize;
        if (measuring) rtts.push(performance.now() - sentAt);
        sentAt = performance.now();
        socket.write(block);
        return;
      }
      if (measuring) bytesRead += data.length;
      socket.write(data);
    });
    socket.on('error', (error) => {
      process.stderr.write(`socket error: ${error.message}\n`);
      process.exit(1);
    });
    closers.push(() => socket.destroy());
  }
}
