/**
 * Spawns the real chat server binary (`dist/app/bin/chat-server.js`; `npm run build` makes
 * it) on a free port over a fresh database (test/helpers/db.ts), for end-to-end tests.
 *
 *   const server = await startChatServer({ db: 'mysql', extraArgs: ['--rate', '5'] });
 *   …ChatClient.connect({ host: server.host, port: server.port })…
 *   await server.kill();     // a crash
 *   await server.restart();  // same database, same port when it is free again
 *   await server.cleanup();  // stops the process if needed and drops the database
 *
 * Every server gets its own `--server-id` that survives restarts (as a deployment's would), so
 * a restarted server recognises the sessions its predecessor left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { chatGatewayBin, chatServerBin, chatServiceBin } from '../../src/app/cluster/paths.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { openStore } from '../../src/app/store/openStore.js';
import { createTestDatabase, type StoreKind, type TestDatabase } from './db.js';
import { startZooKeeper, type ZooKeeperHandle } from './zookeeper.js';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CHAT_SERVER_BIN = chatServerBin();
export const CHAT_GATEWAY_BIN = chatGatewayBin();
export const CHAT_SERVICE_BIN = chatServiceBin();

/**
 * What the e2e suites run against: chat-server over one store, or 'distributed': a chat-gateway
 * in front of a chat-service process (all four services) over MySQL, found through a private
 * ZooKeeper, presence and pushes through Redis. The suites do not tell them apart.
 */
export type ServerTarget = StoreKind | 'distributed';

export interface StartChatServerOptions {
  db: ServerTarget;
  /** More command-line flags (e.g. `['--idle-timeout', '1']`). */
  extraArgs?: readonly string[];
  /** Environment additions; CHAT_* variables of the test's own environment are not inherited. */
  env?: Readonly<Record<string, string>>;
  /** Default 'warn' (slow readers, store failures and crashes show up in `output()`). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** How long to wait for "listening on". Default 30 s (the machine may be busy). */
  startTimeoutMs?: number;
  /** Runs the server under this descriptor limit (`ulimit -n`, through bash). Default: inherited. */
  maxOpenFiles?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChatServerProcess {
  readonly kind: ServerTarget;
  /** Address of the current run (a restart may move to another port if the old one is taken). */
  readonly host: string;
  readonly port: number;
  /** The store URL the server was given (`sqlite:/tmp/…` or `mysql://root@127.0.0.1:3306/…`). */
  readonly dbUrl: string;
  readonly serverId: string;
  readonly pid: number | undefined;
  /** Everything every run printed so far (stdout + stderr). */
  output(): string;
  /** True while the current run has not exited. */
  alive(): boolean;
  /** Resolves when the current run exits. */
  exited(): Promise<ExitInfo>;
  /** SIGTERM; resolves with the exit code (null when it had to be SIGKILLed after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL (a crash); resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same database (and port, when possible). */
  restart(extraArgs?: readonly string[]): Promise<void>;
  /** Opens the server's store from the test process (close it yourself). */
  openStore(): Promise<ChatStore>;
  /** Kills the process if it still runs, then drops the database. Safe to call twice. */
  cleanup(): Promise<void>;
}

/** Children still running, killed if the test process exits without cleaning up. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function childEnv(extra: Readonly<Record<string, string>> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CHAT_')) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  child: ChildProcess;
  exited: Promise<ExitInfo>;
  host: string;
  port: number;
}

/** The command line of one run on `port` (binary first), given the run's extra flags. */
type CommandLine = (port: number, extraArgs: readonly string[]) => string[];

class SpawnedChatServer implements ChatServerProcess {
  private run: Run | null = null;
  private log = '';
  private cleaned = false;

  constructor(
    readonly kind: ServerTarget,
    private readonly db: TestDatabase,
    readonly serverId: string,
    private readonly options: StartChatServerOptions,
    private readonly commandLine: CommandLine = (port, extraArgs) => [
      CHAT_SERVER_BIN,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--db',
      db.url,
      '--log-level',
      options.logLevel ?? 'warn',
      '--server-id',
      serverId,
      ...(options.extraArgs ?? []),
      ...extraArgs,
    ],
  ) {}

  get host(): string {
    return this.current().host;
  }

  get port(): number {
    return this.current().port;
  }

  get dbUrl(): string {
    return this.db.url;
  }

  get pid(): number | undefined {
    return this.run?.child.pid;
  }

  output(): string {
    return this.log;
  }

  alive(): boolean {
    const child = this.run?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  exited(): Promise<ExitInfo> {
    return this.current().exited;
  }

  private current(): Run {
    if (this.run === null) throw new Error('the chat server is not running');
    return this.run;
  }

  /** Spawns one run; rejects (after killing it) when it does not print "listening on" in time. */
  async spawnRun(port: number, extraArgs: readonly string[]): Promise<void> {
    const bin = this.commandLine(port, extraArgs)[0]!;
    if (!existsSync(bin)) {
      throw new Error(`${bin} is missing: run 'npm run build' first`);
    }
    installExitHook();
    // Other test runs on this machine may be rebuilding dist/ right now (`npm test` builds first):
    // a server that dies while loading half-written modules is started again a little later.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawnOnce(port, extraArgs);
        return;
      } catch (error) {
        const loading = /SyntaxError|ERR_MODULE_NOT_FOUND|Cannot find module/.test(String(error));
        if (!loading || attempt >= 5) throw error;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async spawnOnce(port: number, extraArgs: readonly string[]): Promise<void> {
    const args = this.commandLine(port, extraArgs);
    const limit = this.options.maxOpenFiles;
    // `exec "$0" "$@"`: the shell becomes node, so signals and the exit code are the server's own.
    const [command, argv] =
      limit === undefined
        ? [process.execPath, args]
        : ['bash', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, ...args]];
    const child = spawn(command, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: childEnv(this.options.env),
    });
    live.add(child);
    const exited = new Promise<ExitInfo>((done) =>
      child.once('exit', (code, signal) => {
        live.delete(child);
        done({ code, signal });
      }),
    );
    let mine = '';
    const timeoutMs = this.options.startTimeoutMs ?? 30_000;
    const address = await new Promise<{ host: string; port: number }>((resolveListen, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`chat server did not start within ${timeoutMs} ms:\n${mine}`)),
        timeoutMs,
      );
      const take = (chunk: Buffer): void => {
        const text = chunk.toString('utf8');
        mine += text;
        this.log += text;
      };
      child.stdout!.on('data', (chunk: Buffer) => {
        take(chunk);
        const m = /listening on (\S+):(\d+)/.exec(mine);
        if (m !== null) {
          clearTimeout(timer);
          resolveListen({ host: m[1]!, port: Number(m[2]) });
        }
      });
      child.stderr!.on('data', take);
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`chat server exited (code ${code}, signal ${signal}) before listening:\n${mine}`));
      });
    }).catch(async (error: unknown) => {
      child.kill('SIGKILL');
      await exited;
      throw error;
    });
    this.run = { child, exited, ...address };
  }

  async stop(graceMs = 10_000): Promise<number | null> {
    const run = this.run;
    if (run === null) return null;
    if (this.alive()) {
      run.child.kill('SIGTERM');
      const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs);
      const { code } = await run.exited;
      clearTimeout(timer);
      return code;
    }
    return (await run.exited).code;
  }

  async kill(): Promise<void> {
    const run = this.run;
    if (run === null) return;
    if (this.alive()) run.child.kill('SIGKILL');
    await run.exited;
  }

  async restart(extraArgs: readonly string[] = []): Promise<void> {
    const previous = this.run;
    if (previous !== null && this.alive()) throw new Error('restart: stop or kill the server first');
    if (previous !== null) await previous.exited;
    const port = previous?.port ?? 0;
    // The old port may still be held by a socket in TIME_WAIT on some systems: retry, then any port.
    for (let attempt = 0; attempt < 5 && port !== 0; attempt++) {
      try {
        await this.spawnRun(port, extraArgs);
        return;
      } catch (error) {
        if (!/cannot listen/.test(String(error))) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await this.spawnRun(0, extraArgs);
  }

  openStore(): Promise<ChatStore> {
    return openStore(this.db.url, { connectionLimit: 2 });
  }

  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await this.kill();
    await this.db.drop();
  }
}

/** Starts the chat server on a free port over a fresh database of the given kind. */
export async function startChatServer(options: StartChatServerOptions): Promise<ChatServerProcess> {
  if (options.db === 'distributed') return startDistributedUnit(options);
  const db = await createTestDatabase(options.db);
  const serverId = `e2e-${process.pid}-${randomBytes(4).toString('hex')}`;
  const server = new SpawnedChatServer(options.db, db, serverId, options);
  try {
    await server.spawnRun(0, []);
  } catch (error) {
    await db.drop().catch(() => {});
    throw error;
  }
  return server;
}

// ------------------------------------------------------------------------------ distributed

/** One ZooKeeper per test process, shared by its units (each under its own registry root). */
let zooKeeper: Promise<ZooKeeperHandle> | null = null;

function sharedZooKeeper(): Promise<ZooKeeperHandle> {
  if (zooKeeper === null) {
    zooKeeper = startZooKeeper();
    // Its JVM is killed with the test process (zookeeper.ts); its data directory goes too.
    void zooKeeper.then(
      (zk) => process.once('exit', () => rmSync(zk.dataDir, { recursive: true, force: true })),
      () => {},
    );
  }
  return zooKeeper;
}

/** The value of `--name` in `args` (the last one wins, as in the bins). */
function flagValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  args.forEach((arg, i) => {
    if (arg === name) value = args[i + 1];
    else if (arg.startsWith(`${name}=`)) value = arg.slice(name.length + 1);
  });
  return value;
}

const kRedisUrl = 'redis://127.0.0.1:6379';

/**
 * The 'distributed' target as one ChatServerProcess: `stop`, `kill`, `restart` act on the
 * gateway (the process clients see), `cleanup` on the whole deployment.
 */
class DistributedUnit implements ChatServerProcess {
  readonly kind = 'distributed' as const;
  private readonly gateway: ChatServerProcess;

  constructor(private readonly deployment: DistributedDeployment) {
    this.gateway = deployment.gateways[0]!;
  }

  get host(): string {
    return this.gateway.host;
  }
  get port(): number {
    return this.gateway.port;
  }
  get dbUrl(): string {
    return this.deployment.dbUrl;
  }
  get serverId(): string {
    return this.gateway.serverId;
  }
  get pid(): number | undefined {
    return this.gateway.pid;
  }
  output(): string {
    return this.deployment.output();
  }
  alive(): boolean {
    return this.gateway.alive();
  }
  exited(): Promise<ExitInfo> {
    return this.gateway.exited();
  }
  stop(graceMs?: number): Promise<number | null> {
    return this.gateway.stop(graceMs);
  }
  kill(): Promise<void> {
    return this.gateway.kill();
  }
  restart(extraArgs?: readonly string[]): Promise<void> {
    return this.gateway.restart(extraArgs);
  }
  openStore(): Promise<ChatStore> {
    return this.deployment.openStore();
  }
  cleanup(): Promise<void> {
    return this.deployment.cleanup();
  }
}

export interface DistributedDeployment {
  /** The gateways, in order; each a ChatServerProcess (stop/kill/restart act on that gateway). */
  readonly gateways: readonly ChatServerProcess[];
  /** The chat-service processes, in the order of `services`. */
  readonly services: readonly ChatServerProcess[];
  readonly zookeeper: string;
  readonly registryRoot: string;
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly dbUrl: string;
  output(): string;
  openStore(): Promise<ChatStore>;
  cleanup(): Promise<void>;
}

export interface StartDistributedOptions extends Omit<StartChatServerOptions, 'db'> {
  /** Default 1. */
  gateways?: number;
  /** One entry per chat-service process, its --services list. Default ['user,friend,group,message']. */
  services?: readonly string[];
  /** ZooKeeper connect string (e.g. an ensemble's); default the test process's shared standalone server. */
  zookeeper?: string;
  /** Environment additions of each chat-service process, by its index in `services`. */
  serviceEnv?: readonly (Readonly<Record<string, string>> | undefined)[];
}

/** Gateways and chat-service processes over one fresh MySQL database (see ServerTarget). */
export async function startDistributed(
  options: StartDistributedOptions = {},
): Promise<DistributedDeployment> {
  const zk = { connectString: options.zookeeper ?? (await sharedZooKeeper()).connectString };
  const db = await createTestDatabase('mysql');
  const unit = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const registryRoot = `/e2e-${unit}`;
  const extra = options.extraArgs ?? [];
  const startOptions: StartChatServerOptions = { ...options, db: 'distributed' };
  // A suite that names its own Redis or prefix gets it for the whole unit (pushes must find it).
  const redis = flagValue(extra, '--redis') ?? kRedisUrl;
  const prefix = flagValue(extra, '--redis-prefix') ?? `e2e-${unit}`;
  const logLevel = options.logLevel ?? 'warn';
  // What every process of the unit is given: its address, the registry, Redis, the log level.
  const common = (port: number): string[] => [
    ...['--host', '127.0.0.1', '--port', String(port)],
    ...['--zookeeper', zk.connectString, '--registry-root', registryRoot],
    ...['--redis', redis, '--redis-prefix', prefix, '--log-level', logLevel],
  ];
  const services = (options.services ?? ['user,friend,group,message']).map(
    (list, k) =>
      new SpawnedChatServer(
        'distributed',
        db,
        `svc-${unit}-${k}`,
        { ...startOptions, env: { ...startOptions.env, ...options.serviceEnv?.[k] } },
        (port) => [CHAT_SERVICE_BIN, '--services', list, ...common(port), '--db', db.url],
      ),
  );
  const gateways = Array.from({ length: options.gateways ?? 1 }, (_, k) => {
    const gatewayId = `e2e-gw-${unit}-${k}`;
    return new SpawnedChatServer('distributed', db, gatewayId, startOptions, (port, extraArgs) => [
      CHAT_GATEWAY_BIN,
      ...common(port),
      '--server-id',
      gatewayId,
      ...extra,
      ...extraArgs,
    ]);
  });
  let cleaned = false;
  const deployment: DistributedDeployment = {
    gateways,
    services,
    zookeeper: zk.connectString,
    registryRoot,
    redisUrl: redis,
    redisPrefix: prefix,
    dbUrl: db.url,
    output: () => [...gateways, ...services].map((p) => p.output()).join(''),
    openStore: () => openStore(db.url, { connectionLimit: 2 }),
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await Promise.all(gateways.map((g) => g.kill()));
      await Promise.all(services.map((p) => p.stop()));
      await db.drop();
    },
  };
  try {
    await Promise.all(services.map((p) => p.spawnRun(0, [])));
    await Promise.all(gateways.map((g) => g.spawnRun(0, [])));
  } catch (error) {
    await deployment.cleanup().catch(() => {});
    throw error;
  }
  return deployment;
}

/** The 'distributed' target: one gateway in front of one chat-service process with all four services. */
async function startDistributedUnit(options: StartChatServerOptions): Promise<ChatServerProcess> {
  const deployment = await startDistributed({ ...options, gateways: 1 });
  return new DistributedUnit(deployment);
}
