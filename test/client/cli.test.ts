/**
 * The classic CLI end to end against the real server: in-process through runCli (piped input and
 * step-by-step sessions), and the compiled `chat-client` binary driven from a pipe.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import { runCli } from '../../src/app/client/cli/run.js';
import { CLIENT_BIN, type RunningServer, startServer, uniqueName } from './helpers/realServer.js';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
});

/** One runCli session with its own input stream and captured output. */
class Session {
  readonly input = new PassThrough();
  stdout = '';
  stderr = '';
  readonly done: Promise<number>;

  constructor(argv: readonly string[]) {
    this.done = runCli(argv, {
      input: this.input,
      stdout: { write: (t: string) => (this.stdout += t) },
      stderr: { write: (t: string) => (this.stderr += t) },
    });
  }

  static start(): Session {
    return new Session([server.host, String(server.port)]);
  }

  line(text: string): void {
    this.input.write(`${text}\n`);
  }

  /** Waits until stdout (or stderr) matches. */
  async waitFor(
    pattern: RegExp,
    stream: 'stdout' | 'stderr' = 'stdout',
    timeoutMs = 5000,
  ): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this[stream]);
      if (m !== null) return m;
      if (Date.now() > deadline) {
        throw new Error(
          `no ${pattern} on ${stream} within ${timeoutMs} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  end(): Promise<number> {
    this.input.end();
    return this.done;
  }
}

/** Feeds all lines at once, like a pipe, and waits for the exit code. */
async function piped(lines: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const s = Session.start();
  s.input.end(lines.map((l) => `${l}\n`).join(''));
  const code = await s.done;
  return { code, stdout: s.stdout, stderr: s.stderr };
}

async function registerUser(): Promise<{ id: number; name: string }> {
  const c = await ChatClient.connect({ host: server.host, port: server.port });
  try {
    const name = uniqueName('cli');
    const r = await c.register(name, 'pw');
    return { id: r.id, name };
  } finally {
    await c.close();
  }
}

describe('runCli, piped input', () => {
  test('register then quit: menu, prompts, the classic success line, exit 0', async () => {
    const name = uniqueName('reg');
    const { code, stdout, stderr } = await piped(['2', name, 'pw', '3']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toContain(
      '========================\n1. login\n2. register\n3. quit\n========================\nchoice:',
    );
    expect(stdout).toContain('username:userpassword:');
    expect(stdout).toMatch(/name register success, userid is \d+, do not forget it!/);
  });

  test('a taken name and a wrong password are reported in words with the errno', async () => {
    const user = await registerUser();
    const { code, stderr } = await piped(['2', user.name, 'pw', '1', String(user.id), 'nope']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/^error: .+ \(errno 7\)$/m);
    expect(stderr).toContain('error: id or password is invalid! (errno 1)');
  });

  test('invalid menu input and a non-numeric userid do not end the session', async () => {
    const { code, stdout, stderr } = await piped(['9', '1', 'abc', 'pw', '3']);
    expect(code).toBe(0);
    expect(stderr).toContain('invalid input!');
    expect(stderr).toContain("error: userid must be a positive integer, got 'abc'");
    expect(stdout.split('choice:').length - 1).toBe(3);
  });

  test('login prints the user info block and help; commands run; end of input exits 0 after the replies', async () => {
    const me = await registerUser();
    const friend = await registerUser();
    const groupName = uniqueName('grp');
    const { code, stdout, stderr } = await piped([
      '1',
      String(me.id),
      'pw',
      `addfriend:${friend.id}`,
      `creategroup:${groupName}:a: desc`,
      `chat:${friend.id}:hello: world`,
      'chat:abc:hi',
      'chat:1',
      'bogus',
      'chat:987654321:anyone?',
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain('======================login user======================');
    expect(stdout).toContain(`current login user => id:${me.id} name:${me.name}`);
    expect(stdout).toContain('----------------------friend list---------------------');
    expect(stdout).toContain('----------------------group list----------------------');
    expect(stdout).toContain('show command list >>>');
    expect(stdout).toContain(`friend ${friend.id} added`);
    expect(stdout).toMatch(/group created, groupid is \d+/);
    expect(stderr.split('\n').filter((l) => l !== '')).toEqual([
      "chat: friendid must be a positive integer, got 'abc' (usage: chat:friendid:message)",
      'chat: missing message (usage: chat:friendid:message)',
      "invalid input command 'bogus' (type help for the list)",
      'error: no such user (errno 6)',
    ]);

    // The message (colons included) was stored for the friend: it is delivered on their login.
    const c = await ChatClient.connect({ host: server.host, port: server.port });
    try {
      await c.login(friend.id, 'pw');
      const [p] = await c.waitForPushes(1);
      expect(p).toMatchObject({ msg: 'hello: world', id: me.id, name: me.name });
      const again = await c.ping();
      expect(again.errno).toBe(0);
    } finally {
      await c.close();
    }
  });

  test('--codec protobuf: the same session over protobuf frames', async () => {
    const me = await registerUser();
    const s = new Session([server.host, String(server.port), '--codec', 'protobuf']);
    s.input.end(`2\n${uniqueName('pb')}\npw\n1\n${me.id}\npw\nchat:${me.id}:self note\nloginout\n3\n`);
    expect(await s.done).toBe(0);
    expect(s.stderr).toBe('');
    expect(s.stdout).toMatch(/name register success, userid is \d+/);
    expect(s.stdout).toContain(`current login user => id:${me.id} name:${me.name}`);
  });

  test('loginout returns to the menu and the user can log in again', async () => {
    const me = await registerUser();
    const { code, stdout, stderr } = await piped([
      '1',
      String(me.id),
      'pw',
      'loginout',
      '1',
      String(me.id),
      'pw',
      'loginout',
      '3',
    ]);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout.split('current login user =>').length - 1).toBe(2);
    expect(stdout.split('choice:').length - 1).toBe(3);
  });
});

describe('runCli, interactive', () => {
  test('pushes are printed as they arrive, one-to-one and group, in the documented format', async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const a = Session.start();
    const b = Session.start();
    try {
      for (const [s, u] of [
        [a, alice],
        [b, bob],
      ] as const) {
        s.line('1');
        s.line(String(u.id));
        s.line('pw');
        await s.waitFor(/show command list >>>/);
      }
      a.line(`creategroup:${uniqueName('g')}:desc`);
      const groupid = Number((await a.waitFor(/group created, groupid is (\d+)/))[1]);
      b.line(`addgroup:${groupid}`);
      await b.waitFor(new RegExp(`joined group ${groupid}`));

      a.line(`chat:${bob.id}:hi bob: how are you?`);
      await b.waitFor(
        new RegExp(
          `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\[${alice.id}\\]${alice.name} said: hi bob: how are you\\?$`,
          'm',
        ),
      );
      b.line(`groupchat:${groupid}:hello group`);
      await a.waitFor(
        new RegExp(
          `^group message\\[${groupid}\\]: \\S+ \\S+ \\[${bob.id}\\]${bob.name} said: hello group$`,
          'm',
        ),
      );
    } finally {
      expect(await a.end()).toBe(0);
      expect(await b.end()).toBe(0);
    }
  });

  test('offline messages are printed after the login info, not before', async () => {
    const alice = await registerUser();
    const bob = await registerUser();
    const c = await ChatClient.connect({ host: server.host, port: server.port });
    await c.login(alice.id, 'pw');
    await c.sendChat(bob.id, 'you were away');
    await c.close();
    const { code, stdout } = await piped(['1', String(bob.id), 'pw']);
    expect(code).toBe(0);
    const info = stdout.indexOf('======================login user======================');
    const msg = stdout.indexOf(`[${alice.id}]${alice.name} said: you were away`);
    expect(info).toBeGreaterThanOrEqual(0);
    expect(msg).toBeGreaterThan(info);
  });

  test('the server going away ends the session with a message and exit code 1', async () => {
    const own = await startServer();
    const s = new Session([own.host, String(own.port)]);
    await s.waitFor(/choice:/);
    await own.kill();
    expect(await s.done).toBe(1);
    expect(s.stderr).toContain(`connection to ${own.host}:${own.port} closed`);
  });
});

describe('runCli, arguments and connection errors', () => {
  test('--help prints usage and exits 0 without connecting', async () => {
    const s = new Session(['--help']);
    expect(await s.done).toBe(0);
    expect(s.stdout).toContain('usage: chat-client host port [--codec json|protobuf]');
  });

  test('bad arguments exit 2 with a message', async () => {
    const s = new Session(['127.0.0.1']);
    expect(await s.done).toBe(2);
    expect(s.stderr).toContain('chat-client: command invalid! example: chat-client 127.0.0.1 6000');
  });

  test('connection refused: one line in words, exit 1', async () => {
    const own = await startServer();
    const port = own.port;
    await own.stop();
    const s = new Session(['127.0.0.1', String(port)]);
    expect(await s.done).toBe(1);
    expect(s.stderr).toBe(`cannot connect to 127.0.0.1:${port}: connection refused\n`);
    expect(s.stdout).toBe('');
  });
});

describe('the chat-client binary', () => {
  function run(
    args: readonly string[],
    stdin: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    if (!existsSync(CLIENT_BIN)) throw new Error(`${CLIENT_BIN} is missing: run 'npm run build' first`);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLIENT_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`chat-client did not exit\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }, 15_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin.end(stdin);
    });
  }

  test("printf '2\\nname\\npw\\n3\\n' | chat-client host port", async () => {
    const r = await run([server.host, String(server.port)], `2\n${uniqueName('bin')}\npw\n3\n`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/name register success, userid is \d+/);
  });

  test('stdin ending while logged in still exits 0, after the chat reply arrived', async () => {
    const me = await registerUser();
    const friend = await registerUser();
    const r = await run(
      [server.host, String(server.port)],
      `1\n${me.id}\npw\nchat:${friend.id}:sent from a pipe\n`,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`current login user => id:${me.id}`);
    const c = await ChatClient.connect({ host: server.host, port: server.port });
    try {
      await c.login(friend.id, 'pw');
      const [p] = await c.waitForPushes(1);
      expect(p).toMatchObject({ id: me.id, msg: 'sent from a pipe' });
    } finally {
      await c.close();
    }
  });

  test('connection refused: exit 1, no stack trace', async () => {
    const own = await startServer();
    const port = own.port;
    await own.stop();
    const r = await run(['127.0.0.1', String(port)], '');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cannot connect to 127.0.0.1:${port}: connection refused\n`);
  });
});
