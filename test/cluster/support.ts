/**
 * Shared pieces of the cluster tests: free ports, private redis-server and Nginx, a TCP proxy
 * in front of MariaDB that can simulate an outage, chat servers joined through Redis, and
 * `Peer` — a user whose client reconnects and logs in again with its lastseq, remembering
 * every push and every acknowledged send, so a test can compare them against the store.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import type { ChatPush } from '../../src/app/client/types.js';
import {
  type LocalCluster,
  type ServerProcess,
  spawnChatServer,
  startLocalCluster,
  stopProcess,
} from '../../src/app/cluster/localCluster.js';
import { ensureNginxInstalled } from '../../src/app/cluster/nginx.js';
import { serverOfPresence } from '../../src/app/cluster/presenceValue.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import type { InboxEntry } from '../../src/app/model/types.js';
import { openStore } from '../../src/app/store/openStore.js';
import { createTestMysqlUrl } from '../helpers/db.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A Redis key prefix (and name stem) no other test run uses. */
export function uniquePrefix(what: string): string {
  return `t-${what}-${process.pid}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A port nobody listens on right now (the kernel picks it; tiny reuse race accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `cond` every 50 ms; throws `what` after `timeoutMs`. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    }
    await sleep(50);
  }
}

// ------------------------------------------------------------------ processes

/** Children still running, SIGKILLed if the test process exits without cleaning up. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** A chat-server process (with `--redis`), its output kept for failure messages. */
export interface ChatNode {
  readonly port: number;
  readonly serverId: string;
  readonly process: ChildProcess;
  output(): string;
  alive(): boolean;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startChatNode(options: {
  db: string;
  redis: string;
  prefix: string;
  serverId: string;
  workers?: number;
  extraArgs?: readonly string[];
}): Promise<ChatNode> {
  let log = '';
  const server: ServerProcess = await spawnChatServer(
    [
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--db',
      options.db,
      '--redis',
      options.redis,
      '--redis-prefix',
      options.prefix,
      '--workers',
      String(options.workers ?? 0),
      '--server-id',
      options.serverId,
      '--log-level',
      'warn',
      '--idle-timeout',
      '0',
      ...(options.extraArgs ?? []),
    ],
    (line) => {
      log += `${line}\n`;
    },
  );
  return wrapServer(server, options.serverId, () => log);
}

export function wrapServer(server: ServerProcess, serverId: string, output: () => string): ChatNode {
  const child = track(server.process);
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    port: server.port,
    serverId,
    process: child,
    output,
    alive,
    kill: () => stopProcess(child, 'SIGKILL'),
    stop: () => stopProcess(child, 'SIGTERM', 10_000),
  };
}

/** A private redis-server (no persistence) that can be killed and started again on its port. */
export class PrivateRedis {
  private child: ChildProcess | null = null;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.spawn();
    return redis;
  }

  async spawn(): Promise<void> {
    const child = track(
      spawn(
        'redis-server',
        ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 15_000);
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${out}`));
      });
    });
  }

  /** SIGSTOP / SIGCONT: Redis stops answering while every connection stays open. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** SIGKILL: everything in it is gone (no persistence). */
  async kill(): Promise<void> {
    if (this.child !== null) await stopProcess(this.child, 'SIGKILL');
    this.child = null;
  }

  async stop(): Promise<void> {
    if (this.child !== null) await stopProcess(this.child, 'SIGTERM', 5000);
    this.child = null;
  }
}

/** Reads presence keys: which server holds a user. */
export class PresenceReader {
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2 });
    this.redis.on('error', () => {});
  }

  /** The server holding `userId` (the presence value without its epoch), or null. */
  async serverOf(userId: number): Promise<string | null> {
    const value = await this.redis.get(`${this.prefix}:presence:${userId}`);
    return value === null ? null : serverOfPresence(value);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

export { TcpProxy } from '../helpers/tcpProxy.js';

/** A private directory for Nginx; removed by the returned function. */
export function nginxPrefix(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'chat-cluster-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ------------------------------------------------------------------ users and checks

export interface Address {
  host: string;
  port: number;
}

export interface SentMessage {
  /** Unique body, also the cmid (retries reuse it, so the store keeps one copy). */
  body: string;
  to: number;
  kind: 'one' | 'group';
  mid?: number;
  /** When the (first) errno-0 ack arrived, ms since epoch. */
  ackedAt?: number;
  /** Replies with errno ≠ 0 (e.g. 9 during an outage) and transport failures, in order. */
  failures: string[];
}

/**
 * One user of the test: a ChatClient that, when `autoReconnect` is on, reconnects to
 * `address()` and logs in with its lastseq after any disconnect (retrying "already online",
 * errno 9 and connect failures). Every push is recorded and checked to be lastSeq + 1.
 */
export class Peer {
  client: ChatClient | null = null;
  lastSeq = 0;
  readonly received: ChatPush[] = [];
  /** When each push of `received` arrived (Date.now()), same order. */
  readonly receivedAt: number[] = [];
  /** For each reconnect: ms from losing the connection to the next successful login. */
  readonly reloginDelays: number[] = [];
  private lostAt: number | null = null;
  readonly violations: string[] = [];
  readonly sent = new Map<string, SentMessage>();
  /** Successful logins (ms since epoch) and the number of failed login attempts. */
  readonly logins: number[] = [];
  loginFailures: Record<number, number> = {};
  autoReconnect = false;
  private reconnecting: Promise<void> | null = null;
  private stopped = false;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly password: string,
    public address: () => Address,
  ) {}

  /** Registers a new user through `address` (fresh connection) and returns its Peer. */
  static async register(address: () => Address, name: string, password = 'pw'): Promise<Peer> {
    const a = address();
    const c = await ChatClient.connect({ host: a.host, port: a.port, requestTimeoutMs: 20_000 });
    try {
      const reg = await c.register(name, password);
      if (reg.errno !== 0) throw new Error(`register ${name}: errno ${reg.errno} ${reg.errmsg ?? ''}`);
      return new Peer(reg.id, name, password, address);
    } finally {
      c.destroy();
    }
  }

  get connected(): boolean {
    return this.client?.connected === true && this.client.userId === this.id;
  }

  /** Connects and logs in once; resolves with the login errno (or throws on transport failure). */
  async loginOnce(): Promise<number> {
    const a = this.address();
    const client = await ChatClient.connect({
      host: a.host,
      port: a.port,
      requestTimeoutMs: 15_000,
      connectTimeoutMs: 5000,
    });
    client.onPush((push) => this.onPush(push));
    let errno: number;
    try {
      errno = (await client.login(this.id, this.password, this.lastSeq)).errno;
    } catch (error) {
      client.destroy();
      throw error;
    }
    if (errno !== 0) {
      this.loginFailures[errno] = (this.loginFailures[errno] ?? 0) + 1;
      client.destroy();
      return errno;
    }
    this.client = client;
    const now = Date.now();
    this.logins.push(now);
    if (this.lostAt !== null) this.reloginDelays.push(now - this.lostAt);
    this.lostAt = null;
    void client.closed.then(() => {
      if (this.client !== client) return;
      this.lostAt ??= Date.now();
      if (this.autoReconnect && !this.stopped) void this.reconnect();
    });
    return 0;
  }

  /** Logs in, retrying until `timeoutMs` (errno 2 while a dead server's presence key lives, 9, connect errors). */
  async login(timeoutMs = 40_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (!this.stopped) {
      try {
        const errno = await this.loginOnce();
        if (errno === 0) return;
        last = `errno ${errno}`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() > deadline)
        throw new Error(`user ${this.id} could not log in for ${timeoutMs} ms: ${last}`);
      await sleep(300);
    }
  }

  reconnect(): Promise<void> {
    this.reconnecting ??= this.login().finally(() => {
      this.reconnecting = null;
    });
    return this.reconnecting;
  }

  private onPush(push: ChatPush): void {
    if (push.seq !== this.lastSeq + 1) {
      this.violations.push(`user ${this.id}: push seq ${push.seq} after ${this.lastSeq}`);
    }
    if (push.seq > this.lastSeq) {
      this.lastSeq = push.seq;
      this.received.push(push);
      this.receivedAt.push(Date.now());
    }
  }

  /**
   * Sends one chat message (body = cmid) and records the outcome; never throws. A message that
   * was not acknowledged can be retried later with `resend` (same cmid).
   */
  async send(to: number, body: string, kind: 'one' | 'group' = 'one'): Promise<number | 'lost'> {
    let m = this.sent.get(body);
    if (m === undefined) {
      m = { body, to, kind, failures: [] };
      this.sent.set(body, m);
    }
    const client = this.client;
    if (client === null || !client.connected) {
      m.failures.push('not connected');
      return 'lost';
    }
    try {
      const ack =
        kind === 'one'
          ? await client.sendChat(to, body, { cmid: body })
          : await client.groupChat(to, body, { cmid: body });
      if (ack.errno === 0) {
        if (m.mid !== undefined && m.mid !== ack.mid) {
          this.violations.push(`cmid ${body}: acked as mid ${m.mid} and then as mid ${ack.mid}`);
        }
        m.mid = ack.mid;
        m.ackedAt ??= Date.now();
      } else m.failures.push(`errno ${ack.errno}`);
      return ack.errno;
    } catch (error) {
      m.failures.push(error instanceof Error ? error.message : String(error));
      return 'lost';
    }
  }

  /** Messages sent and never acknowledged. */
  unacked(): SentMessage[] {
    return [...this.sent.values()].filter((m) => m.mid === undefined);
  }

  acked(): SentMessage[] {
    return [...this.sent.values()].filter((m) => m.mid !== undefined);
  }

  /** Stops reconnecting and drops the connection. */
  stop(): void {
    this.stopped = true;
    this.client?.destroy();
  }

  /** Drops the connection (the peer reconnects if `autoReconnect`). */
  drop(): void {
    this.client?.destroy();
  }
}

/** Reads a user's whole inbox from the store. */
export async function storedInbox(store: ChatStore, userId: number): Promise<InboxEntry[]> {
  return store.messages.readInbox(userId, 0, 1_000_000);
}

/** Waits until every peer has received its whole stored inbox. */
export async function waitConverged(store: ChatStore, peers: readonly Peer[], timeoutMs = 30_000) {
  await waitUntil(
    async () => {
      for (const p of peers) {
        const { lastSeq } = await store.messages.cursor(p.id);
        if (p.lastSeq !== lastSeq) return false;
      }
      return true;
    },
    () => `inboxes to converge: ${peers.map((p) => `${p.id}@${p.lastSeq}`).join(' ')}`,
    timeoutMs,
  );
}

/**
 * The delivery guarantees, checked against the store:
 * - every peer received exactly its stored inbox: seqs 1..n, in order, once, same mids;
 * - every acknowledged send is in each of its recipients' inboxes (nothing acked is lost);
 * - each cmid is stored at most once per recipient (retries de-duplicated).
 * Returns a list of problems (empty when all hold) and the totals.
 */
export async function checkDelivery(
  store: ChatStore,
  peers: readonly Peer[],
  groupMembers: ReadonlyMap<number, readonly number[]> = new Map(),
): Promise<{ problems: string[]; acked: number; delivered: number }> {
  const problems: string[] = [];
  const inboxMids = new Map<number, Set<number>>();
  let delivered = 0;
  for (const p of peers) {
    problems.push(...p.violations);
    const inbox = await storedInbox(store, p.id);
    const seqs = inbox.map((e) => e.seq);
    const expected = inbox.map((_, i) => i + 1);
    if (JSON.stringify(seqs) !== JSON.stringify(expected)) {
      problems.push(`user ${p.id}: stored inbox seqs are not 1..${inbox.length}`);
    }
    const got = p.received.map((r) => `${r.seq}:${r.mid}`).join(',');
    const want = inbox.map((e) => `${e.seq}:${e.mid}`).join(',');
    if (got !== want) {
      problems.push(
        `user ${p.id}: received ${p.received.length} pushes (last seq ${p.lastSeq}), store has ${inbox.length}` +
          ` (first difference at #${firstDifference(got.split(','), want.split(','))})`,
      );
    }
    const bodies = new Set<string>();
    for (const e of inbox) {
      const key = `${e.sender}:${e.body}`;
      if (bodies.has(key)) problems.push(`user ${p.id}: message ${key} stored twice`);
      bodies.add(key);
    }
    inboxMids.set(p.id, new Set(p.received.map((r) => r.mid)));
    delivered += p.received.length;
  }
  let acked = 0;
  for (const p of peers) {
    for (const m of p.acked()) {
      acked++;
      const recipients = m.kind === 'one' ? [m.to] : (groupMembers.get(m.to) ?? []).filter((u) => u !== p.id);
      for (const r of recipients) {
        const mids = inboxMids.get(r);
        if (mids !== undefined && !mids.has(m.mid!)) {
          problems.push(`acked message ${m.body} (mid ${m.mid}) from ${p.id} never reached ${r}`);
        }
      }
    }
  }
  return { problems, acked, delivered };
}

function firstDifference(a: readonly string[], b: readonly string[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

export function openTestStore(url: string): Promise<ChatStore> {
  return openStore(url, { connectionLimit: 2 });
}

/**
 * Ring traffic: every peer sends to the next one, one message in flight each, ~every `gapMs`,
 * until `stop()`. Bodies are `${tag}-${sender}-${n}`. Resolves `stopped` once every loop ended.
 */
export function ringTraffic(peers: readonly Peer[], tag: string, gapMs = 20): { stop: () => Promise<void> } {
  let running = true;
  const loops = peers.map(async (p, i) => {
    const to = peers[(i + 1) % peers.length]!.id;
    let n = 0;
    while (running) {
      if (!p.connected) {
        await sleep(50);
        continue;
      }
      await p.send(to, `${tag}-${p.id}-${n++}`);
      await sleep(gapMs);
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Re-sends every unacknowledged message (same cmid) until each is acknowledged or `timeoutMs`. */
export async function resendUnacked(peers: readonly Peer[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const p of peers) {
    for (const m of p.unacked()) {
      while (m.mid === undefined && Date.now() < deadline) {
        if (p.connected) await p.send(m.to, m.body, m.kind);
        if (m.mid === undefined) await sleep(200);
      }
    }
  }
}

export const TEST_REDIS = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Two chat servers + a private Nginx on one fresh MariaDB database and a Redis prefix of its own. */
export interface TwoServerCluster {
  cluster: LocalCluster;
  store: ChatStore;
  presence: PresenceReader;
  /** Each server's output so far. */
  logs: string[];
  dispose(): Promise<void>;
}

export async function startTwoServerCluster(prefix: string): Promise<TwoServerCluster> {
  ensureNginxInstalled();
  const db = await createTestMysqlUrl();
  const nginxDir = nginxPrefix();
  const logs = ['', ''];
  const cluster = await startLocalCluster({
    servers: 2,
    host: '127.0.0.1',
    port: await freePort(),
    basePort: 0,
    db: db.url,
    redis: TEST_REDIS,
    redisPrefix: prefix,
    workersPerServer: 0,
    logLevel: 'warn',
    prefix: nginxDir.dir,
    onServerOutput: (i, line) => {
      logs[i] += `${line}\n`;
    },
    extraServerArgs: ['--idle-timeout', '0'],
  });
  const store = await openTestStore(db.url);
  const presence = new PresenceReader(TEST_REDIS, prefix);
  return {
    cluster,
    store,
    presence,
    logs,
    dispose: async () => {
      await cluster.stop();
      await presence.close();
      await store.close();
      await db.drop();
      nginxDir.remove();
    },
  };
}
