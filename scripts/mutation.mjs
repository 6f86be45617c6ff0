#!/usr/bin/env node
/**
 * `npm run test:mutation [-- GROUP...]`: StrykerJS over the modules where a silent bug loses data
 * or balance, one Stryker run per module group, each against only the unit tests that cover it
 * (Vitest via vitest.mutation.config.ts), then one score table per module. Reports land in
 * reports/mutation/GROUP.json. MUTATION_CONCURRENCY (default 2) sets Stryker's test processes.
 * `--typecheck` adds Stryker's TypeScript checker (on TypeScript 5, see scripts/strykerTypescript5.mjs):
 * mutants that do not compile are then left out of the score instead of being run.
 * Exit code 1 when a module scores below 80 %. See docs/MUTATION.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** name → files to mutate (a `:from-to` suffix limits a file to those lines) and the tests that cover them. */
const GROUPS = {
  'net-buffer': { mutate: ['src/net/Buffer.ts'], tests: ['test/net/Buffer.test.ts'] },
  'net-codec': { mutate: ['src/net/LengthHeaderCodec.ts'], tests: ['test/net/LengthHeaderCodec.test.ts'] },
  // TcpConnection's flush accounting only: sentBytes / flushedBytes / write reports (write,
  // noteFlushedBeforeClose, updateWriteReports, onWritten).
  'net-flush': {
    mutate: ['src/net/TcpConnection.ts:101-141', 'src/net/TcpConnection.ts:271-308'],
    tests: ['test/net/TcpConnection.test.ts'],
  },
  protocol: {
    mutate: [
      'src/app/protocol/LegacyFrameSplitter.ts',
      'src/app/protocol/legacyCodec.ts',
      'src/app/protocol/jsonCodec.ts',
      'src/app/protocol/codecs.ts',
      'src/app/protocol/legacyReplies.ts',
      'src/app/protocol/legacyFit.ts',
    ],
    tests: [
      'test/protocol/legacySplitter.test.ts',
      'test/protocol/codecs.test.ts',
      'test/protocol/legacyReplies.test.ts',
      'test/protocol/legacyFit.test.ts',
      'test/protocol/legacyGolden.test.ts',
      'test/protocol/properties.test.ts',
    ],
  },
  service: {
    mutate: [
      'src/app/service/GroupCommitter.ts',
      'src/app/service/InboxStream.ts',
      'src/app/service/AckWriter.ts',
    ],
    tests: [
      'test/service/GroupCommitter.test.ts',
      'test/service/GroupCommitter.store.test.ts',
      'test/service/InboxStream.test.ts',
      'test/service/AckWriter.test.ts',
    ],
  },
  model: {
    mutate: [
      'src/app/model/appendBatch.ts',
      'src/app/model/MessageModel.ts',
      'src/app/model/PartitionFence.ts',
      'src/app/model/MidBlock.ts',
    ],
    tests: [
      'test/store/groupFanout.test.ts',
      'test/store/messages.test.ts',
      'test/store/messageEdges.test.ts',
      'test/store/appendRuns.test.ts',
      'test/store/concurrency.test.ts',
      'test/store/partitionFence.test.ts',
      'test/store/messageStats.test.ts',
    ],
  },
  fanout: {
    mutate: ['src/app/model/groupFanout.ts'],
    tests: ['test/store/groupFanoutSplit.test.ts', 'test/store/groupFanout.test.ts'],
  },
  rpc: {
    mutate: ['src/rpc/client/Endpoint.ts', 'src/rpc/client/DeadlineQueue.ts'],
    tests: ['test/rpc/balancer.test.ts', 'test/rpc/affinity.test.ts', 'test/rpc/DeadlineQueue.test.ts'],
  },
};

const TARGET = 80;
// --report: only print the table (and survivors) from the reports the last runs left.
const reportOnly = process.argv.includes('--report');
const typecheck = process.argv.includes('--typecheck');
const wanted = process.argv.slice(2).filter((a) => a !== '--report' && a !== '--typecheck');
for (const name of wanted) {
  if (!(name in GROUPS)) {
    console.error(`unknown group ${name}; groups: ${Object.keys(GROUPS).join(', ')}`);
    process.exit(2);
  }
}
const names = wanted.length > 0 ? wanted : Object.keys(GROUPS);
mkdirSync('reports/mutation', { recursive: true });

/** Per file: killed (incl. timeouts), survived, no coverage, and the survivors' places. */
const rows = [];
const survivors = [];
for (const name of names) {
  const group = GROUPS[name];
  const tests = group.tests.filter((t) => existsSync(t));
  const report = `reports/mutation/${name}.json`;
  const started = Date.now();
  if (!reportOnly) {
    console.log(`\n=== ${name}: ${group.mutate.join(', ')} against ${tests.join(', ')}`);
    const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs', '--mutate', group.mutate.join(',')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, MUTATION_TESTS: tests.join(','), MUTATION_REPORT: report, ...checkerEnv() },
    });
    if (run.status !== 0 || !existsSync(report)) {
      console.error(`stryker failed for ${name} (exit ${run.status})`);
      process.exit(1);
    }
  } else if (!existsSync(report)) {
    console.error(`no report for ${name}: run npm run test:mutation -- ${name}`);
    continue;
  }
  const seconds = reportOnly ? 0 : Math.round((Date.now() - started) / 1000);
  const { files } = JSON.parse(readFileSync(report, 'utf8'));
  for (const [file, { mutants, source }] of Object.entries(files)) {
    const count = (...statuses) => mutants.filter((m) => statuses.includes(m.status)).length;
    const lines = source.split('\n');
    for (const m of mutants) {
      if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
      const line = m.location.start.line;
      survivors.push(
        `- ${file}:${line}:${m.location.start.column} ${m.status} ${m.mutatorName}: \`${lines[line - 1].trim()}\` → \`${m.replacement}\``,
      );
    }
    const killed = count('Killed', 'Timeout');
    const survived = count('Survived');
    const noCoverage = count('NoCoverage');
    const valid = killed + survived + noCoverage;
    // Left out of the score: found not to compile (--typecheck only) or crashing the test run.
    const errors = count('CompileError', 'RuntimeError');
    rows.push({ group: name, file, killed, survived, noCoverage, errors, valid, seconds });
  }
}

/** With --typecheck: Stryker (and its checker processes) load the TypeScript 5 API; stryker.config.mjs adds the checker. */
function checkerEnv() {
  if (!typecheck) return {};
  const hook = fileURLToPath(new URL('./strykerTypescript5.mjs', import.meta.url));
  return { MUTATION_TYPECHECK: '1', NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${hook}`.trim() };
}

const pct = (r) => (r.valid === 0 ? 100 : (100 * r.killed) / r.valid);
console.log('\nMutation score per module (killed incl. timeouts / valid mutants):\n');
console.log('| group | module | score | killed | survived | no coverage | errors | group time |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(
    `| ${r.group} | ${r.file} | ${pct(r).toFixed(1)} % | ${r.killed} | ${r.survived} | ${r.noCoverage} | ${r.errors} | ${r.seconds} s |`,
  );
}
writeFileSync('reports/mutation/survivors.md', `${survivors.join('\n')}\n`);
console.log(`\n${survivors.length} surviving mutants listed in reports/mutation/survivors.md`);
const below = rows.filter((r) => pct(r) < TARGET);
if (below.length > 0) {
  console.log(`\nBelow ${TARGET} %: ${below.map((r) => r.file).join(', ')}`);
  process.exit(1);
}
