/**
 * bench/codec: encode + decode of one chat message (a ONE_CHAT push, the message the server
 * sends most) as a framed JSON payload vs a framed protobuf payload (muduo's layout with its
 * type name and Adler-32), in the same run. Also prints each encoding's size.
 * Run with `npm run bench:codec`.
 */
import { Bench } from 'tinybench';
import { jsonCodec, protobufCodec } from '../../src/app/protocol/codecs.js';

const push = {
  msgid: 6,
  mid: 1_234_567,
  seq: 4321,
  id: 1001,
  name: 'zhang san',
  toid: 1002,
  msg: 'hello, are we still meeting at noon? 你好，中午见吗？',
  time: '2026-11-26 12:00:00',
};

let sink = 0;
const bench = new Bench({ time: 1500, warmupTime: 300 });
bench
  .add('framed JSON: encode + decode', () => {
    const wire = jsonCodec.encode(push);
    const back = jsonCodec.decodePayload(wire.subarray(4)) as { seq: number };
    sink += back.seq;
  })
  .add('framed protobuf: encode + decode', () => {
    const wire = protobufCodec.encode(push);
    const back = protobufCodec.decodePayload(wire.subarray(4)) as { seq: number };
    sink += back.seq;
  });
await bench.run();

const jsonBytes = jsonCodec.encode(push).length;
const protoBytes = protobufCodec.encode(push).length;
const rows = bench.tasks.map((task) => {
  const result = task.result;
  if (result.state !== 'completed') throw new Error(`${task.name}: ${result.state}`);
  return { name: task.name, hz: 1000 / result.period };
});
const json = rows[0]!.hz;
console.log(`bench/codec: one ONE_CHAT push, node ${process.version}`);
for (const row of rows) {
  const size = row.name.startsWith('framed JSON') ? jsonBytes : protoBytes;
  console.log(
    `  ${row.name.padEnd(34)} ${Math.round(row.hz).toLocaleString('en').padStart(10)} ops/s  ` +
      `${String(size).padStart(4)} bytes on the wire  ${(row.hz / json).toFixed(2)}x JSON`,
  );
}
if (sink === 42) console.log('');
