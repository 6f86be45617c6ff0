/**
 * What an operator sees of the real chat-server process: its log lines (text and --log-format
 * json) for a whole session, and its Prometheus metrics (--metrics-port) scraped under load.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import type { ChatPush } from '../../src/app/client/types.js';
import { packageRoot } from '../../src/app/cluster/paths.js';
import {
  CHAT_SERVER_BIN,
  type ChatServerProcess,
  type DistributedDeployment,
  startChatServer,
  startDistributed,
} from '../helpers/chatServer.js';
import { Clients, jsonFrame, login, register, uniqueName, waitUntil } from './support.js';

const run = promisify(execFile);

type LogLine = Record<string, unknown> & { level: string; msg: string; time: string };

/** The server's JSON log lines so far (stderr; stdout's "listening on" lines are not JSON). */
function jsonLines(server: ChatServerProcess): LogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

const PASSWORD = 'Never-Log-Me-7';

describe('logs', () => {
  let server: ChatServerProcess | undefined;
  let clients: Clients | undefined;
  afterAll(async () => {
    await clients?.closeAll();
    await server?.cleanup();
  });

  test('a whole session, as JSON lines: startup, connections, register, login, errors, forced close, logout', async () => {
    server = await startChatServer({ db: 'sqlite', logLevel: 'debug', extraArgs: ['--log-format', 'json'] });
    const running = server;
    clients = new Clients(() => running);
    const find = (pred: (line: LogLine) => boolean): LogLine[] => jsonLines(running).filter(pred);
    const eventually = async (what: string, pred: (line: LogLine) => boolean): Promise<LogLine> => {
      await waitUntil(() => find(pred).length > 0, what);
      return find(pred)[0]!;
    };

    // Startup summary: store, Redis, the port actually bound, limits.
    const started = await eventually('startup line', (l) => l.msg === 'chat server started');
    expect(started).toMatchObject({
      level: 'info',
      listen: `${running.host}:${running.port}`,
      redis: 'none',
      metrics: 'off',
      idle_timeout_s: 90,
      max_message_bytes: 1048576,
      rate_per_s: 2000,
    });
    expect(started.store).toMatch(/^sqlite /);

    // Framed JSON: register, login, a chat to nobody (error reply), logout, disconnect.
    const client = await clients.connect('json');
    const user = await register(client, uniqueName('log'), PASSWORD);
    await login(client, user);
    expect((await client.sendChat(999_999_999, 'to nobody')).errno).toBe(6);
    expect((await client.logout()).errno).toBe(0);
    const peer = (await eventually('register line', (l) => l.msg === 'registered' && l.user === user.id))
      .peer;
    expect(peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(find((l) => l.msg === 'connection up' && l.peer === peer)).toHaveLength(1);
    expect(find((l) => l.msg === 'login' && l.user === user.id)[0]).toMatchObject({
      peer,
      codec: 'json',
      level: 'info',
    });
    expect(find((l) => l.msg === 'error reply' && l.peer === peer)[0]).toMatchObject({
      level: 'debug',
      user: user.id,
      msgid: 'ONE_CHAT_MSG',
      errno: 6,
      errmsg: 'no such user',
    });
    expect(find((l) => l.msg === 'logout' && l.user === user.id)[0]).toMatchObject({
      why: 'logout',
      level: 'info',
    });
    await client.close();
    expect(
      await eventually('json down', (l) => l.msg === 'connection down' && l.peer === peer),
    ).toMatchObject({
      level: 'info',
      codec: 'json',
      reason: 'peer_closed',
    });

    // A wrong password: refused, with the user id and errno, never the password.
    const other = await clients.connect('json');
    expect((await other.login(user.id, 'wrong-guess')).errno).toBe(1);
    await eventually(
      'refused login',
      (l) => l.msg === 'login refused' && l.user === user.id && l.errno === 1,
    );

    // A classic client: codec legacy, logged out by its disconnect.
    const legacy = await clients.legacy();
    legacy.send({ msgid: 1, id: user.id, password: PASSWORD });
    expect(await legacy.next()).toMatchObject({ msgid: 2, errno: 0 });
    const legacyLogin = await eventually('legacy login', (l) => l.msg === 'login' && l.codec === 'legacy');
    await legacy.close();
    expect(
      await eventually('legacy logout', (l) => l.msg === 'logout' && l.peer === legacyLogin.peer),
    ).toMatchObject({ user: user.id, why: 'disconnect' });
    expect(
      await eventually('legacy down', (l) => l.msg === 'connection down' && l.peer === legacyLogin.peer),
    ).toMatchObject({ codec: 'legacy', user: user.id });

    // A bad frame: the forced close is said at info, with its reason, and so is the close.
    const raw = await clients.raw();
    await raw.write(Buffer.concat([jsonFrame({ msgid: 18 }), Buffer.from([0, 0, 0, 3, 0x7b, 0x7b, 0x7b])]));
    await raw.closed;
    const forced = await eventually(
      'forced close',
      (l) => l.msg === 'closing connection' && l.reason === 'bad_input',
    );
    expect(forced.level).toBe('info');
    expect(String(forced.detail)).toMatch(/json|JSON/);
    expect(
      await eventually('bad-input down', (l) => l.msg === 'connection down' && l.peer === forced.peer),
    ).toMatchObject({ codec: 'json', reason: 'bad_input' });

    expect(running.output()).not.toContain(PASSWORD);
    expect(running.output()).not.toContain('wrong-guess');
  });
});

describe('forced close of an idle connection', () => {
  let server: ChatServerProcess | undefined;
  let clients: Clients | undefined;
  afterAll(async () => {
    await clients?.closeAll();
    await server?.cleanup();
  });

  test('is said at info with its reason, then the connection-down line with the same reason', async () => {
    server = await startChatServer({
      db: 'sqlite',
      logLevel: 'info',
      extraArgs: ['--log-format', 'json', '--idle-timeout', '1'],
    });
    const running = server;
    clients = new Clients(() => running);
    const quiet = await clients.connect('json');
    expect((await quiet.ping(1)).msgid).toBe(19); // framed now, then silent
    await quiet.closed;
    await waitUntil(
      () => jsonLines(running).some((l) => l.msg === 'connection down' && l.reason === 'idle_timeout'),
      'idle connection-down line',
    );
    const forced = jsonLines(running).find((l) => l.msg === 'closing connection');
    expect(forced).toMatchObject({ level: 'info', reason: 'idle_timeout' });
    expect(String(forced?.detail)).toMatch(/^silent for \d+ ms$/);
  });
});

describe('text logs and the default server id', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-log-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('--port 0 without --server-id: the id and the log name the port actually bound', async () => {
    const child = spawn(
      process.execPath,
      [CHAT_SERVER_BIN, '--port', '0', '--db', join(dir, 'chat.db'), '--log-level', 'info'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
    );
    try {
      const stdout = createInterface({ input: child.stdout });
      const stderr = createInterface({ input: child.stderr });
      const listening = new Promise<string>((resolve) =>
        stdout.on('line', (line) => {
          const m = /^listening on (\S+)$/.exec(line);
          if (m) resolve(m[1]!);
        }),
      );
      const summary = new Promise<string>((resolve) =>
        stderr.on('line', (line) => {
          if (line.includes(' INFO chat server started ')) resolve(line);
        }),
      );
      const address = await listening;
      expect(address).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
      const line = await summary;
      // Human-readable: time, level, message, then key=value pairs.
      expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO chat server started /);
      expect(line).toContain(` server=${address} `);
      expect(line).toContain(` listen=${address} `);
      expect(line).toContain(' redis=none ');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/** `name{labels} value` → value, from Prometheus text; 0 when the series is absent. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

describe('metrics', () => {
  let server: ChatServerProcess | undefined;
  let clients: Clients | undefined;
  afterAll(async () => {
    await clients?.closeAll();
    await server?.cleanup();
  });

  test('GET /metrics under load: connections, logins, messages, commits, acks, throttling move', async () => {
    server = await startChatServer({
      db: 'sqlite',
      extraArgs: ['--metrics-port', '0', '--rate', '100'],
    });
    const running = server;
    clients = new Clients(() => running);
    await waitUntil(() => /metrics on (http:\S+)/.test(running.output()), 'metrics line');
    const url = /metrics on (http:\S+)/.exec(running.output())![1]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrape = async (): Promise<string> => {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain');
      return response.text();
    };

    const before = await scrape();
    expect(sample(before, 'chat_redis_up')).toBe(-1); // no --redis
    expect(sample(before, 'chat_zookeeper_up')).toBe(-1); // not a gateway
    expect(before).not.toContain('chat_service_providers{');
    expect(before).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(before).toContain('# TYPE chat_commit_latency_seconds histogram');

    // Load: 4 senders x 60 messages to one recipient, who acknowledges what it receives.
    const recipient = await clients.loggedIn('protobuf');
    const received: ChatPush[] = [];
    recipient.client.onPush((push) => received.push(push));
    const senders = await Promise.all([1, 2, 3, 4].map(() => clients!.loggedIn('json')));
    const during = scrape();
    const acks = await Promise.all(
      senders.flatMap(({ client }) =>
        Array.from({ length: 60 }, (_, i) => client.sendChat(recipient.user.id, `load ${i}`)),
      ),
    );
    expect(acks.every((ack) => ack.errno === 0)).toBe(true);
    await waitUntil(() => received.length >= 240, 'all 240 pushes');
    recipient.client.deliverAck();
    // A flood past the rate limit (--rate 100: a burst of 200) is throttled with errno 8.
    const flood = await Promise.all(
      Array.from({ length: 300 }, (_, i) => senders[0]!.client.sendChat(recipient.user.id, `flood ${i}`)),
    );
    const throttled = flood.filter((ack) => ack.errno === 8).length;
    expect(throttled).toBeGreaterThan(0);
    expect(sample(await during, 'chat_connections{codec="json"}')).toBeGreaterThanOrEqual(0);

    // The delivery ack is coalesced: wait until the metric shows it rather than sleeping.
    let after = '';
    await waitUntil(async () => {
      after = await scrape();
      return sample(after, 'chat_messages_delivered_total') >= 240;
    }, 'delivered counter');
    const stored = 240 + flood.filter((ack) => ack.errno === 0).length;
    expect(sample(after, 'chat_connections{codec="json"}')).toBe(4);
    expect(sample(after, 'chat_connections{codec="protobuf"}')).toBe(1);
    expect(sample(after, 'chat_connections_opened_total')).toBe(5);
    expect(sample(after, 'chat_logins_total{result="ok"}')).toBe(5);
    expect(sample(after, 'chat_registrations_total')).toBe(5);
    expect(sample(after, 'chat_messages_accepted_total')).toBe(stored);
    expect(sample(after, 'chat_messages_committed_total')).toBe(stored);
    expect(sample(after, 'chat_commit_batch_size_sum')).toBe(stored);
    expect(sample(after, 'chat_commit_batch_size_count')).toBeGreaterThan(0);
    expect(sample(after, 'chat_commit_batch_size_count')).toBeLessThanOrEqual(stored);
    expect(sample(after, 'chat_commit_latency_seconds_count')).toBe(
      sample(after, 'chat_commit_batch_size_count'),
    );
    expect(sample(after, 'chat_ack_latency_seconds_count')).toBe(stored);
    expect(sample(after, 'chat_throttled_requests_total{reason="chat_rate"}')).toBe(throttled);
    expect(sample(after, 'chat_error_replies_total{errno="8"}')).toBe(throttled);
    expect(sample(after, 'chat_slow_reader_disconnects_total')).toBe(0);
    expect(sample(after, 'chat_store_errors_total')).toBe(0);

    // Connections going away are counted by reason, and the gauges come back down.
    await senders[0]!.client.close();
    await waitUntil(async () => {
      after = await scrape();
      return sample(after, 'chat_connections_closed_total{reason="peer_closed"}') === 1;
    }, 'closed counter');
    expect(sample(after, 'chat_connections{codec="json"}')).toBe(3);

    // The one-screen view (`npm run top`) reads the same endpoint.
    const top = await run(process.execPath, [join(packageRoot(), 'scripts/chat-top.mjs'), url, '--once']);
    expect(top.stdout).toContain(`messages     accepted ${stored}  committed ${stored}  delivered `);
    expect(top.stdout.split('\n')).toContain('connections  json 3, protobuf 1   opened 5');
    expect(top.stdout).toContain(`throttled chat_rate ${throttled}`);
  });
});

describe('metrics with a cluster presence (Redis)', () => {
  let server: ChatServerProcess | undefined;
  afterAll(async () => {
    await server?.cleanup();
  });

  test('chat_redis_up is 1 while the server is connected to Redis', async () => {
    server = await startChatServer({
      db: 'sqlite',
      extraArgs: [
        '--redis',
        'redis://127.0.0.1:6379',
        '--redis-prefix',
        uniqueName('metrics'),
        '--workers',
        '0',
        '--metrics-port',
        '0',
      ],
    });
    const running = server;
    await waitUntil(() => /metrics on (http:\S+)/.test(running.output()), 'metrics line');
    const url = /metrics on (http:\S+)/.exec(running.output())![1]!;
    const text = await (await fetch(url)).text();
    expect(sample(text, 'chat_redis_up')).toBe(1);
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
  });
});

describe('metrics of a gateway', () => {
  let unit: DistributedDeployment | undefined;
  afterAll(async () => {
    await unit?.cleanup();
  });

  test('chat_zookeeper_up and chat_service_providers show what the gateway can reach; a stopped node leaves the count', async () => {
    unit = await startDistributed({
      services: ['user,friend,group', 'message', 'message'],
      extraArgs: ['--metrics-port', '0'],
    });
    const gateway = unit.gateways[0]!;
    await waitUntil(() => /metrics on (http:\S+)/.test(gateway.output()), 'metrics line');
    const url = /metrics on (http:\S+)/.exec(gateway.output())![1]!;
    const scrape = async (): Promise<string> => (await fetch(url)).text();
    const providers = (text: string, service: string): number =>
      sample(text, `chat_service_providers{service="${service}"}`);

    const text = await scrape();
    expect(sample(text, 'chat_zookeeper_up')).toBe(1);
    expect(sample(text, 'chat_redis_up')).toBe(1);
    expect(['user', 'friend', 'group', 'message'].map((s) => providers(text, s))).toEqual([1, 1, 1, 2]);

    await unit.services[2]!.stop();
    await waitUntil(
      async () => providers(await scrape(), 'message') === 1,
      'the stopped node to leave the count',
    );
  });
});
