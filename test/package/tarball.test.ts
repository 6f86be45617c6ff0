/**
 * The package as a user gets it: `npm pack` (of the build `npm test` has just made), the tarball
 * installed into a fresh project in a temporary directory, the README's echo example type-checked
 * and run exactly as the README shows it, and every bin's `--help` run from the installed package.
 * The registry is reached through npm's cache (`--prefer-offline`), for typescript and @types/node
 * at the versions this repository already uses, and the package's dependencies.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/app/cluster/paths.js';

const run = promisify(execFile);
const ROOT = packageRoot();
const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};
const installedVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string })
    .version;

/** The README's echo example: the first ```ts block that imports from 'muduo-ts/net'. */
function readmeEchoExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const match of readme.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const code = match[1] ?? '';
    if (code.includes("from 'muduo-ts/net'") && code.includes('new TcpServer')) return code;
  }
  throw new Error('README.md has no ```ts block with the echo example');
}

interface PackedFile {
  path: string;
}

let work: string;
let project: string;
let tarball: string;
let packedFiles: string[];
let installLog: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'muduo-ts-pack-'));
  // --ignore-scripts: the build is already fresh (npm test builds before vitest runs).
  const packed = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: ROOT,
  });
  const [report] = JSON.parse(packed.stdout) as [{ filename: string; files: PackedFile[] }];
  tarball = join(work, report.filename);
  packedFiles = report.files.map((file) => file.path);

  project = join(work, 'user-project');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({
      name: 'user-project',
      private: true,
      type: 'module',
      // What the README tells users; better-sqlite3's native build is left out here (the echo
      // example and --help do not load it, and its build takes minutes).
      allowScripts: { 'better-sqlite3': false, protobufjs: false },
    }),
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        types: ['node'],
        skipLibCheck: false,
      },
      files: ['echo.ts', 'entries.ts'],
    }),
  );
  writeFileSync(join(project, 'echo.ts'), readmeEchoExample());
  // The other two entry points, used the way their READMEs show.
  writeFileSync(
    join(project, 'entries.ts'),
    [
      "import { ChatClient, type ChatClientOptions } from 'muduo-ts/client';",
      "import { RpcChannel, RpcError, type RpcErrorCode } from 'muduo-ts/rpc';",
      "const options: ChatClientOptions = { host: '127.0.0.1', port: 6000 };",
      "const code: RpcErrorCode = 'UNAVAILABLE';",
      'export const entries = [ChatClient.connect, RpcChannel, new RpcError(code, "x"), options] as const;',
      '',
    ].join('\n'),
  );
  const installed = await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      tarball,
      `typescript@${installedVersion('typescript')}`,
      `@types/node@${installedVersion('@types/node')}`,
    ],
    { cwd: project },
  );
  installLog = installed.stdout + installed.stderr;
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the license, README, protocol doc, compiled library with types, and the scripts the bins need', () => {
    for (const needed of [
      'LICENSE',
      'README.md',
      'package.json',
      'docs/PROTOCOL.md',
      'scripts/ensure-nginx.sh',
      'scripts/zookeeper.sh',
      'dist/app/distributed/chat_services.proto',
      'dist/net/index.js',
      'dist/net/index.d.ts',
      'dist/rpc/index.js',
      'dist/rpc/index.d.ts',
      'dist/app/client/index.d.ts',
      'dist/app/protocol/chat.proto',
      ...Object.values(rootPackage.bin),
    ]) {
      expect(packedFiles, needed).toContain(needed);
    }
  });

  it('holds no benches, tests, sources, source maps or stale build output', () => {
    const isTypeScriptSource = (path: string): boolean => path.endsWith('.ts') && !path.endsWith('.d.ts');
    const unwanted = packedFiles.filter((path) => path.endsWith('.map') || isTypeScriptSource(path));
    expect(unwanted).toEqual([]);
    // Everything else lives in the three library directories, scripts/ or docs/, or at the top.
    const outside = packedFiles.filter(
      (path) => path.includes('/') && !/^(dist\/(net|rpc|app)|scripts|docs)\//.test(path),
    );
    expect(outside).toEqual([]);
  });

  it('installs without npm warning about install scripts', () => {
    expect(installLog).not.toMatch(/not yet covered by allowScripts/);
  });

  it("type-checks the README's echo example against the installed package's types", async () => {
    const tsc = join(project, 'node_modules/.bin/tsc');
    const result = await run(tsc, ['-p', 'tsconfig.json'], { cwd: project }).catch(
      (error: { stdout?: string; stderr?: string }) => ({
        stdout: error.stdout ?? '',
        stderr: error.stderr ?? 'tsc failed',
      }),
    );
    expect(result.stdout + result.stderr).toBe('');
    expect(readFileSync(join(project, 'echo.js'), 'utf8')).toContain("from 'muduo-ts/net'");
  });

  it('loads muduo-ts/rpc and muduo-ts/client at run time', async () => {
    const { stdout } = await run(
      process.execPath,
      ['-e', "import('./entries.js').then((m) => console.log(m.entries.length))"],
      {
        cwd: project,
      },
    );
    expect(stdout.trim()).toBe('4');
  });

  it('runs the compiled echo example: a client gets its bytes back', async () => {
    const server: ChildProcess = spawn(process.execPath, ['echo.js'], {
      cwd: project,
      env: { ...process.env, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const lines = createInterface({ input: server.stdout! });
      const seen: string[] = [];
      let stderr = '';
      server.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const waitForLine = (pattern: RegExp): Promise<RegExpMatchArray> =>
        new Promise((resolve, reject) => {
          const check = (line: string): void => {
            const match = line.match(pattern);
            if (match) {
              lines.off('line', check);
              resolve(match);
            }
          };
          for (const line of seen) {
            const match = line.match(pattern);
            if (match) return resolve(match);
          }
          lines.on('line', check);
          server.once('exit', (code) => reject(new Error(`echo example exited (${code}): ${stderr}`)));
        });
      lines.on('line', (line) => seen.push(line));

      const [, port] = await waitForLine(/^echo server listening on 127\.0\.0\.1:(\d+)$/);
      const socket = connect({ host: '127.0.0.1', port: Number(port) });
      const echoed = await new Promise<string>((resolve, reject) => {
        let received = '';
        socket.on('error', reject);
        socket.on('data', (chunk) => {
          received += chunk.toString();
          if (received.length >= 'hello, muduo-ts'.length) resolve(received);
        });
        socket.write('hello, muduo-ts');
      });
      expect(echoed).toBe('hello, muduo-ts');
      await waitForLine(/^127\.0\.0\.1:\d+ is up$/);
      socket.end();
      await waitForLine(/^127\.0\.0\.1:\d+ is down$/);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('runs every bin with --help from the installed package', async () => {
    const bins = Object.keys(rootPackage.bin);
    expect(bins.sort()).toEqual([
      'chat-client',
      'chat-cluster',
      'chat-distributed',
      'chat-gateway',
      'chat-server',
      'chat-service',
      'mprpc',
    ]);
    for (const bin of bins) {
      const { stdout } = await run(join(project, 'node_modules/.bin', bin), ['--help'], { cwd: project });
      expect(stdout, bin).toMatch(/usage/i);
    }
  });

  it('resolves the package root, and so the script chat-cluster runs, inside the installed package', async () => {
    const installedRoot = join(project, 'node_modules', rootPackage.name);
    const paths = join(installedRoot, 'dist/app/cluster/paths.js');
    const script = `const m = await import(${JSON.stringify(paths)}); console.log(m.packageRoot());`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: project });
    expect(stdout.trim()).toBe(installedRoot);
    expect(readFileSync(join(installedRoot, 'scripts/ensure-nginx.sh'), 'utf8')).toMatch(/nginx/);
  });
});
