/**
 * The server binary as a process, through the e2e spawner: flags and environment, restart on the
 * same database and port, exit codes, and the spawner's own clean-up.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterEach, describe, expect, test } from 'vitest';
import { CHAT_SERVER_BIN, type ChatServerProcess, startChatServer } from '../helpers/chatServer.js';
import { Clients, login, STORES } from './support.js';

describe('chat-server command line', () => {
  test('--help prints the usage and exits 0; an unknown flag exits 2', () => {
    const help = spawnSync(process.execPath, [CHAT_SERVER_BIN, '--help'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: chat-server/);
    expect(help.stdout).toMatch(/--idle-timeout/);
    for (const flag of [
      '--message-timeout',
      '--max-input',
      '--max-legacy-message',
      '--max-connections',
      '--max-connections-per-ip',
      '--max-anonymous',
      '--trusted-addresses',
    ]) {
      expect(help.stdout).toContain(flag);
    }
    const bad = spawnSync(process.execPath, [CHAT_SERVER_BIN, '--no-such-flag'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown option/);
  });

  test('Redis unreachable: each worker says so in one line, the server exits 1 without a stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chat-noredis-'));
    try {
      for (const workers of ['0', '2']) {
        const run = spawnSync(
          process.execPath,
          [
            CHAT_SERVER_BIN,
            '--port',
            '0',
            '--workers',
            workers,
            '--db',
            `sqlite:${join(dir, `w${workers}.db`)}`,
            '--redis',
            'redis://127.0.0.1:1',
          ],
          { encoding: 'utf8', timeout: 30_000 },
        );
        expect(run.status).toBe(1);
        expect(run.stderr).toContain('chat-server: cannot reach redis at redis://127.0.0.1:1');
        expect(run.stderr).not.toMatch(/^\s+at /m);
        expect(run.stdout).not.toContain('listening on');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(STORES)('the spawned server on %s', (store) => {
  let server: ChatServerProcess | undefined;
  const clients = new Clients(() => server!);

  afterEach(async () => {
    await clients.closeAll();
    await server?.cleanup();
    server = undefined;
  });

  test('environment settings apply, flags win over them', async () => {
    // CHAT_RATE=3 from the environment, then --rate 1000 on the command line: the flag wins.
    server = await startChatServer({ db: store, env: { CHAT_RATE: '3' }, extraArgs: ['--rate', '1000'] });
    const a = await clients.loggedIn('json');
    const acks = await Promise.all(Array.from({ length: 30 }, () => a.client.sendChat(a.user.id, 'x')));
    expect(acks.every((ack) => ack.errno === 0)).toBe(true);
    await server.cleanup();
    // The environment alone: a bucket of 6.
    server = await startChatServer({ db: store, env: { CHAT_RATE: '3' } });
    const b = await clients.loggedIn('json');
    const limited = await Promise.all(Array.from({ length: 30 }, () => b.client.sendChat(b.user.id, 'x')));
    expect(limited.filter((ack) => ack.errno === 8).length).toBeGreaterThan(0);
  });

  test('restart keeps the database and the port; stop exits 0; cleanup removes the database', async () => {
    server = await startChatServer({ db: store });
    const port = server.port;
    const first = await clients.loggedIn('json');
    expect(await server.stop()).toBe(0);
    expect(server.alive()).toBe(false);
    await clients.closeAll();
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.alive()).toBe(true);
    const again = await clients.connect('json');
    await login(again, first.user); // the same store: the account still exists
    const url = server.dbUrl;
    await server.cleanup();
    expect(server.alive()).toBe(false);
    if (store === 'sqlite') {
      expect(existsSync(url.slice('sqlite:'.length))).toBe(false);
    } else {
      const admin = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
      try {
        const [rows] = await admin.query('SHOW DATABASES LIKE ?', [new URL(url).pathname.slice(1)]);
        expect(rows).toEqual([]);
      } finally {
        await admin.end();
      }
    }
    server = undefined;
  });
});
