/**
 * The compiled `chat-client` on a real terminal (a pseudo-terminal made by util-linux `script`,
 * whose output is everything the terminal would show, echo included), and on a pipe that ends
 * at a prompt.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { CLIENT_BIN, type RunningServer, startServer, uniqueName } from './helpers/realServer.js';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
});

const shellQuote = (word: string): string => `'${word.replaceAll("'", "'\\''")}'`;

/** chat-client inside a pseudo-terminal; `screen` is what the terminal shows. */
class TerminalSession {
  readonly child: ChildProcessWithoutNullStreams;
  screen = '';
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(args: readonly string[]) {
    const command = [process.execPath, CLIENT_BIN, ...args].map(shellQuote).join(' ');
    this.child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer): void => {
      this.screen += chunk.toString('utf8');
      for (const wake of this.waiters) wake();
    };
    this.child.stdout.on('data', collect);
    this.child.stderr.on('data', collect);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves once the screen shows `text` `count` times in all. */
  waitFor(text: string, count = 1, timeoutMs = 15_000): Promise<void> {
    const seen = (): boolean => this.screen.split(text).length - 1 >= count;
    if (seen()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`terminal never showed ${JSON.stringify(text)} x${count}:\n${this.screen}`));
      }, timeoutMs);
      const check = (): void => {
        if (!seen()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  type(keys: string): void {
    this.child.stdin.write(keys);
  }
}

describe('chat-client on a terminal', () => {
  test('does not echo the password, echoes the rest, and applies backspace to the password', async () => {
    const name = uniqueName('tty');
    const password = 'Hidden-Pw-42';
    const session = new TerminalSession([server.host, String(server.port)]);
    try {
      await session.waitFor('choice:');
      session.type('2\n');
      await session.waitFor('username:');
      session.type(`${name}\n`);
      await session.waitFor('userpassword:');
      // A typo fixed with backspace (DEL, what terminals send) before Enter.
      session.type(`${password}X\x7f\n`);
      await session.waitFor('do not forget it!');
      const id = Number(/userid is (\d+)/.exec(session.screen)?.[1]);
      await session.waitFor('choice:', 2);
      session.type('3\n');
      expect(await session.exited).toBe(0);

      expect(session.screen).toContain(name); // the terminal echoes what is typed...
      expect(session.screen).not.toContain('Hidden-Pw'); // ...except the password
      // The password stored is the edited one.
      const client = await ChatClient.connect({ host: server.host, port: server.port });
      try {
        expect((await client.login(id, password)).errno).toBe(0);
      } finally {
        await client.close();
      }
    } finally {
      session.child.kill('SIGKILL');
    }
  });

  test('Ctrl-D at the password prompt ends the client cleanly, on a line of its own', async () => {
    const session = new TerminalSession([server.host, String(server.port)]);
    try {
      await session.waitFor('choice:');
      session.type('1\n');
      await session.waitFor('userid:');
      session.type('1\n');
      await session.waitFor('userpassword:');
      session.type('\x04');
      expect(await session.exited).toBe(0);
      expect(session.screen).toMatch(/userpassword:\r?\n$/);
    } finally {
      session.child.kill('SIGKILL');
    }
  });
});

describe('chat-client on a pipe', () => {
  function runPiped(stdin: string): Promise<{ code: number | null; stdout: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLIENT_BIN, server.host, String(server.port)]);
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.once('exit', (code) => resolve({ code, stdout }));
      child.stdin.end(stdin);
    });
  }

  test('input that ends at a prompt leaves the output ending in a newline', async () => {
    for (const [stdin, lastPrompt] of [
      ['', 'choice:'],
      ['2\n', 'username:'],
      [`2\n${uniqueName('eof')}\n`, 'userpassword:'],
      ['1\n7\n', 'userpassword:'],
    ] as const) {
      const { code, stdout } = await runPiped(stdin);
      expect(code, JSON.stringify(stdin)).toBe(0);
      expect(
        stdout.endsWith(`${lastPrompt}\n`),
        `${JSON.stringify(stdin)} -> ${JSON.stringify(stdout)}`,
      ).toBe(true);
    }
  });

  test('--help states the message limit and the others', async () => {
    const child = spawn(process.execPath, [CLIENT_BIN, '--help']);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    await new Promise((resolve) => child.once('exit', resolve));
    expect(stdout).toMatch(/message \(chat, groupchat\) +4096 bytes of UTF-8/);
    expect(stdout).toMatch(/name, password, group name +50 characters/);
    expect(stdout).toMatch(/group description +200 characters/);
    expect(stdout).toContain('password is not echoed');
  });
});
