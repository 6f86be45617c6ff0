/**
 * The `mprpc` command (src/rpc/cli/mprpcCli.ts), run in this process against real providers and a
 * private ZooKeeper: calls over both wire formats, listing, and every kind of bad input.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { distPath } from '../../src/app/cluster/paths.js';
import { EventLoop } from '../../src/net/EventLoop.js';
import { MPRPC_USAGE, runMprpc } from '../../src/rpc/cli/mprpcCli.js';
import { RpcProvider } from '../../src/rpc/server/RpcProvider.js';
import { startZooKeeper, type ZooKeeperHandle } from '../helpers/zookeeper.js';
import { assertDistFresh } from './childProvider.js';
import { type EchoShape, echoImpl, echoService, HOST, TEST_PROTO, userImpl, userService } from './helpers.js';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function mprpc(args: string[], stdinText?: string): Promise<Outcome> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  if (stdinText !== undefined) stdin.end(stdinText);
  const code = await runMprpc(args, { stdin, stdout, stderr });
  return { code, stdout: out, stderr: err };
}

let zk: ZooKeeperHandle;
let provider: RpcProvider;
let port = 0;

beforeAll(async () => {
  zk = await startZooKeeper();
  provider = new RpcProvider({ host: HOST, loop: new EventLoop(), zookeeper: zk.connectString });
  provider.notifyService<EchoShape>(echoService, echoImpl('cli-provider'));
  provider.notifyService(userService, userImpl);
  port = (await provider.run()).port;
});

afterAll(async () => {
  await provider?.stop({ graceMs: 200 });
  await zk?.dispose();
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** `mprpc call METHOD JSON` straight to the test provider, then `more`. */
const callDirect = (method: string, json: string, ...more: string[]): string[] => [
  'call',
  method,
  json,
  '--proto',
  TEST_PROTO,
  '--provider',
  `${HOST}:${port}`,
  ...more,
];

describe('mprpc call', () => {
  it('calls a provider directly and prints the response as JSON (bytes as base64)', async () => {
    const result = await mprpc(
      callDirect('fixbug.EchoService.Echo', JSON.stringify({ payload: b64('hello'), seq: 7 })),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ payload: b64('hello'), served_by: 'cli-provider', seq: 7 });
  });

  it('finds the provider in ZooKeeper, and reads the request from stdin with -', async () => {
    const result = await mprpc(
      ['call', 'fixbug.EchoService.Echo', '-', '--proto', TEST_PROTO, '--zookeeper', zk.connectString],
      JSON.stringify({ seq: 9 }),
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ served_by: 'cli-provider', seq: 9 });
  });

  it('speaks the classic format with --classic, directly or through the classic ZooKeeper layout', async () => {
    const request = JSON.stringify({ name: b64('zhang san'), pwd: b64('123456') });
    for (const where of [
      ['--provider', `${HOST}:${port}`],
      ['--zookeeper', zk.connectString],
    ]) {
      const result = await mprpc([
        'call',
        'fixbug.UserServiceRpc.Login',
        request,
        '--proto',
        TEST_PROTO,
        '--classic',
        ...where,
      ]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ success: true, result: { errcode: 0 } });
    }
  });

  it('takes the provider or ZooKeeper from a classic config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mprpc-cli-'));
    const file = join(dir, 'test.conf');
    writeFileSync(file, `# provider to call\nrpcserverip=${HOST}\nrpcserverport=${port}\n`);
    const result = await mprpc([
      'call',
      'fixbug.EchoService.Echo',
      '{"seq":3}',
      '--proto',
      TEST_PROTO,
      '--config',
      file,
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).seq).toBe(3);
    writeFileSync(file, 'rpcserverport=notaport\n');
    const bad = await mprpc(['call', 'fixbug.EchoService.Echo', '--proto', TEST_PROTO, '--config', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/test\.conf:1/);
  });

  it('exits 1 with the error code when the call fails', async () => {
    const failing = await mprpc(callDirect('fixbug.EchoService.Append', '{"fail":"boom"}'));
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/^mprpc: HANDLER_ERROR: .*boom/);
    expect(failing.stdout).toBe('');
    const late = await mprpc(
      callDirect('fixbug.EchoService.Append', '{"delay_ms":2000}', '--timeout', '100'),
    );
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/DEADLINE_EXCEEDED/);
    const nobody = await mprpc([
      'call',
      'fixbug.EchoService.Echo',
      '--proto',
      TEST_PROTO,
      '--provider',
      '127.0.0.1:1',
    ]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/UNAVAILABLE/);
  });

  it('exits 2 with a clear message for every kind of bad usage or input', async () => {
    const target = ['--proto', TEST_PROTO, '--provider', `${HOST}:${port}`];
    const cases: [string[], RegExp][] = [
      [[], /a command is needed/],
      [['fly'], /unknown command 'fly'/],
      [['call', '--provider', `${HOST}:${port}`, '--proto', TEST_PROTO], /needs a method/],
      [['call', 'fixbug.EchoService.Echo', '--provider', `${HOST}:${port}`], /needs --proto/],
      [
        ['call', 'fixbug.EchoService.Echo', '--proto', TEST_PROTO],
        /needs --zookeeper, --provider or --config/,
      ],
      [['call', 'Echo', ...target], /not pkg\.Service\.Method/],
      [['call', 'fixbug.Nope.Echo', ...target], /no service 'fixbug\.Nope'/],
      [['call', 'fixbug.EchoService.Shout', ...target], /has no method 'Shout' \(it has: Echo, Append\)/],
      [['call', 'fixbug.EchoService.Echo', '{seq:1}', ...target], /not JSON/],
      [['call', 'fixbug.EchoService.Echo', '[1]', ...target], /must be a JSON object/],
      [
        ['call', 'fixbug.EchoService.Echo', '{"sequence":1}', ...target],
        /EchoRequest has no field 'sequence'/,
      ],
      [['call', 'fixbug.EchoService.Echo', '{}', 'extra', ...target], /unexpected 'extra'/],
      [['call', 'fixbug.EchoService.Echo', ...target, '--timeout', 'soon'], /bad --timeout 'soon'/],
      [['call', 'fixbug.EchoService.Echo', ...target, '--timeout=-5'], /bad --timeout '-5'/],
      [['call', 'fixbug.EchoService.Echo', '--proto', TEST_PROTO, '--provider', 'nohostport'], /bad address/],
      [
        ['call', 'fixbug.EchoService.Echo', '--proto', '/nonexistent.proto', '--provider', `${HOST}:${port}`],
        /cannot load/,
      ],
      [
        ['call', 'fixbug.EchoService.Echo', ...target, '--zookeeper', zk.connectString],
        /either --zookeeper or --provider/,
      ],
      [['list'], /list needs --zookeeper/],
      [['list', 'extra', '--zookeeper', zk.connectString], /list takes no arguments/],
      [['call', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const result = await mprpc(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(message);
      expect(result.stdout).toBe('');
    }
    const help = await mprpc(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(MPRPC_USAGE);
  });
});

describe('mprpc list', () => {
  it('lists services and their providers with load and methods, and the classic layout', async () => {
    const result = await mprpc(['list', '--zookeeper', zk.connectString, '--classic']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^fixbug\.EchoService {2}\(1 provider\)$/m);
    expect(result.stdout).toMatch(
      new RegExp(
        `^ {2}127\\.0\\.0\\.1:${port} {2}load \\d+ .*methods Echo,Append {2}protocols native,classic`,
        'm',
      ),
    );
    expect(result.stdout).toMatch(/^fixbug\.UserServiceRpc {2}\(1 provider\)$/m);
    expect(result.stdout).toMatch(
      new RegExp(`^classic /UserServiceRpc\\n {2}Login {2}127\\.0\\.0\\.1:${port}$`, 'm'),
    );
  });

  it('says so when nothing is registered under the root', async () => {
    const result = await mprpc(['list', '--zookeeper', zk.connectString, '--root', '/elsewhere']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('no providers registered\n');
  });

  it('exits 1 when ZooKeeper cannot be reached in time', async () => {
    const started = Date.now();
    const result = await mprpc(['list', '--zookeeper', '127.0.0.1:1', '--timeout', '300']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/UNAVAILABLE: ZooKeeper .* not reachable within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('the mprpc binary', () => {
  const bin = distPath('rpc/bin/mprpc.js');
  const run = (args: string[]): Promise<Outcome> =>
    new Promise((resolve) => {
      execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      });
    });

  it('prints the response and exits 0, or says why and exits 2', async () => {
    assertDistFresh();
    const ok = await run(callDirect('fixbug.EchoService.Echo', '{"seq":5}'));
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).seq).toBe(5);
    const bad = await run(['call']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/call needs a method/);
  });
});
