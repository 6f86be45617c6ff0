/**
 * Micro benchmarks of the net library's hot paths, each next to a naive baseline in the same run:
 *
 *  1. Buffer: a stream of chunks (16 KiB, then 100 B) appended and consumed as 1000-byte records,
 *     vs accumulating with `Buffer.concat` and consuming with `subarray`.
 *  2. LengthHeaderCodec: a stream of 200-byte-payload frames arriving in 4 KiB chunks, decoded by
 *     the codec vs a naive decoder doing `Buffer.concat(pending, chunk)` and a slice per frame.
 *
 * Run with `npm run bench:micro`. Takes ~10 s.
 */
import { Bench } from 'tinybench';
import { Buffer as NetBuffer } from '../../src/net/Buffer.js';
import { LengthHeaderCodec } from '../../src/net/LengthHeaderCodec.js';
import type { TcpConnection } from '../../src/net/TcpConnection.js';

const RECORD = 1000;

interface Case {
  group: string;
  variant: 'muduo-ts' | 'naive';
  /** Units of work (chunks or frames) per call of `run`. */
  unitsPerRun: number;
  unit: string;
  bytesPerRun: number;
  run: () => void;
}

let sink = 0;

// ---- 1. Buffer append + retrieve ----

function bufferCases(chunkSize: number, chunksPerRun: number): Case[] {
  const chunks = Array.from({ length: 16 }, (_, i) => globalThis.Buffer.alloc(chunkSize, i));
  const group = `Buffer append+retrieve, ${chunkSize >= 1024 ? `${chunkSize / 1024} KiB` : `${chunkSize} B`} chunks`;

  const buf = new NetBuffer();
  const library = (): void => {
    for (let i = 0; i < chunksPerRun; i++) {
      buf.append(chunks[i & 15]!);
      while (buf.readableBytes() >= RECORD) {
        sink += buf.peek(RECORD)[0]!;
        buf.retrieve(RECORD);
      }
    }
  };

  let pending = globalThis.Buffer.alloc(0);
  const naive = (): void => {
    for (let i = 0; i < chunksPerRun; i++) {
      pending = globalThis.Buffer.concat([pending, chunks[i & 15]!]);
      while (pending.length >= RECORD) {
        sink += pending.subarray(0, RECORD)[0]!;
        pending = pending.subarray(RECORD);
      }
    }
  };

  const common = { group, unitsPerRun: chunksPerRun, unit: 'chunks', bytesPerRun: chunkSize * chunksPerRun };
  return [
    { ...common, variant: 'muduo-ts', run: library },
    { ...common, variant: 'naive', run: naive },
  ];
}

// ---- 2. LengthHeaderCodec decode ----

function codecCases(): Case[] {
  const payload = 200;
  const frames = 5000;
  const stream = globalThis.Buffer.concat(
    Array.from({ length: frames }, (_, i) => LengthHeaderCodec.encode(globalThis.Buffer.alloc(payload, i))),
  );
  const chunks: globalThis.Buffer[] = [];
  for (let off = 0; off < stream.length; off += 4096) chunks.push(stream.subarray(off, off + 4096));
  const group = `LengthHeaderCodec decode, ${payload} B frames in 4 KiB chunks`;

  let decoded = 0;
  const codec = new LengthHeaderCodec((_conn, frame) => {
    decoded += 1;
    sink += frame[0]!;
  });
  // A stand-in for the connection: the codec only reads `disconnected` and may call `forceClose`.
  const fakeConn = {
    disconnected: false,
    forceClose(): void {
      throw new Error('the benchmark stream is well-formed');
    },
  } as unknown as TcpConnection;
  const input = new NetBuffer();
  const library = (): void => {
    for (const chunk of chunks) {
      input.append(chunk);
      codec.onMessage(fakeConn, input, 0);
    }
  };

  let naiveDecoded = 0;
  let pending = globalThis.Buffer.alloc(0);
  const naive = (): void => {
    for (const chunk of chunks) {
      pending = globalThis.Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const len = pending.readInt32BE(0);
        if (pending.length < 4 + len) break;
        const frame = pending.slice(4, 4 + len);
        naiveDecoded += 1;
        sink += frame[0]!;
        pending = pending.slice(4 + len);
      }
    }
  };

  // Both decoders must agree before anything is timed.
  library();
  naive();
  if (decoded !== frames || naiveDecoded !== frames || input.readableBytes() !== 0 || pending.length !== 0) {
    throw new Error(`decoder mismatch: codec ${decoded}, naive ${naiveDecoded}, expected ${frames}`);
  }

  const common = { group, unitsPerRun: frames, unit: 'frames', bytesPerRun: stream.length };
  return [
    { ...common, variant: 'muduo-ts', run: library },
    { ...common, variant: 'naive', run: naive },
  ];
}

// ---- runner ----

function format(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(0);
}

async function main(): Promise<void> {
  const cases = [...bufferCases(16 * 1024, 64), ...bufferCases(100, 2000), ...codecCases()];
  const bench = new Bench({ name: 'net micro', time: 1000, warmupTime: 200 });
  for (const c of cases) bench.add(`${c.group} [${c.variant}]`, c.run);
  await bench.run();

  const rows = cases.map((c, i) => {
    const result = bench.tasks[i]!.result;
    if (result.state !== 'completed') throw new Error(`${c.group} [${c.variant}]: ${result.state}`);
    const runsPerSec = 1000 / result.period;
    return {
      c,
      opsPerSec: runsPerSec * c.unitsPerRun,
      mbPerSec: (runsPerSec * c.bytesPerRun) / (1024 * 1024),
      rme: result.latency.rme,
    };
  });

  const header = ['benchmark', 'variant', 'ops/s', 'unit', 'MiB/s', '±%', 'vs naive'];
  const table = rows.map(({ c, opsPerSec, mbPerSec, rme }) => {
    const naive = rows.find((r) => r.c.group === c.group && r.c.variant === 'naive')!;
    const ratio = c.variant === 'naive' ? '1.00x' : `${(opsPerSec / naive.opsPerSec).toFixed(2)}x`;
    return [c.group, c.variant, format(opsPerSec), c.unit, mbPerSec.toFixed(0), rme.toFixed(1), ratio];
  });
  const widths = header.map((h, col) => Math.max(h.length, ...table.map((row) => row[col]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, col) => (col >= 2 && col !== 3 ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!)))
      .join('  ');
  process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of table) process.stdout.write(`${line(row)}\n`);
  process.stdout.write(
    `\n(ops = chunks appended and consumed as ${RECORD}-byte records, or frames decoded; sink ${sink & 1})\n`,
  );
}

await main();
