import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  COMMANDS,
  type ParsedCommand,
  parseArgs,
  parseCommand,
  parseId,
  parseMenuChoice,
} from '../../src/app/client/cli/commands.js';

function ok(line: string): unknown {
  const r = parseCommand(line);
  if (!r.ok) throw new Error(`expected '${line}' to parse, got error: ${r.error}`);
  return r.command;
}

function error(line: string): string {
  const r: ParsedCommand = parseCommand(line);
  if (r.ok) throw new Error(`expected '${line}' to be rejected, got ${JSON.stringify(r.command)}`);
  return r.error;
}

describe('parseCommand: every classic command', () => {
  test('help and loginout (arguments ignored, as the classic client does)', () => {
    expect(ok('help')).toEqual({ kind: 'help' });
    expect(ok('help:whatever')).toEqual({ kind: 'help' });
    expect(ok('loginout')).toEqual({ kind: 'loginout' });
    expect(ok('loginout:')).toEqual({ kind: 'loginout' });
  });

  test('chat:friendid:message', () => {
    expect(ok('chat:15:hello there')).toEqual({ kind: 'chat', toid: 15, msg: 'hello there' });
  });

  test('addfriend:friendid', () => {
    expect(ok('addfriend:22')).toEqual({ kind: 'addfriend', friendid: 22 });
  });

  test('creategroup:groupname:groupdesc', () => {
    expect(ok('creategroup:rustaceans:we like crabs')).toEqual({
      kind: 'creategroup',
      groupname: 'rustaceans',
      groupdesc: 'we like crabs',
    });
  });

  test('addgroup:groupid', () => {
    expect(ok('addgroup:3')).toEqual({ kind: 'addgroup', groupid: 3 });
  });

  test('groupchat:groupid:message', () => {
    expect(ok('groupchat:3:hi all')).toEqual({ kind: 'groupchat', groupid: 3, msg: 'hi all' });
  });

  test('COMMANDS lists exactly the seven commands, each parseable from its usage shape', () => {
    expect(COMMANDS.map((c) => c.name)).toEqual([
      'help',
      'chat',
      'addfriend',
      'creategroup',
      'addgroup',
      'groupchat',
      'loginout',
    ]);
    const samples: Record<string, string> = {
      help: 'help',
      chat: 'chat:1:x',
      addfriend: 'addfriend:1',
      creategroup: 'creategroup:a:b',
      addgroup: 'addgroup:1',
      groupchat: 'groupchat:1:x',
      loginout: 'loginout',
    };
    for (const c of COMMANDS) expect((ok(samples[c.name]!) as { kind: string }).kind).toBe(c.name);
  });
});

describe('parseCommand: message text is preserved verbatim', () => {
  test("':' after the second colon stays in the message", () => {
    expect(ok('chat:15:time is 12:30: ok?')).toEqual({ kind: 'chat', toid: 15, msg: 'time is 12:30: ok?' });
    expect(ok('groupchat:2:a:b:c')).toEqual({ kind: 'groupchat', groupid: 2, msg: 'a:b:c' });
    expect(ok('creategroup:team:desc: with: colons')).toEqual({
      kind: 'creategroup',
      groupname: 'team',
      groupdesc: 'desc: with: colons',
    });
  });

  test('leading/trailing spaces of the message and an empty message are kept', () => {
    expect(ok('chat:15:  padded  ')).toEqual({ kind: 'chat', toid: 15, msg: '  padded  ' });
    expect(ok('chat:15:')).toEqual({ kind: 'chat', toid: 15, msg: '' });
  });

  test('a trailing CR (CRLF input) is dropped, nothing else', () => {
    expect(ok('chat:15:hi\r')).toEqual({ kind: 'chat', toid: 15, msg: 'hi' });
    expect(ok('help\r')).toEqual({ kind: 'help' });
  });

  test('non-ASCII messages', () => {
    expect(ok('chat:9:你好，世界 😀')).toEqual({ kind: 'chat', toid: 9, msg: '你好，世界 😀' });
  });

  test('property: chat:<id>:<any text> round-trips the id and the text', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.string(), (id, text) => {
        const msg = text.endsWith('\r') ? `${text}x` : text;
        expect(parseCommand(`chat:${id}:${msg}`)).toEqual({
          ok: true,
          command: { kind: 'chat', toid: id, msg },
        });
        expect(parseCommand(`groupchat:${id}:${msg}`)).toEqual({
          ok: true,
          command: { kind: 'groupchat', groupid: id, msg },
        });
      }),
    );
  });
});

describe('parseCommand: malformed input gets a clear message', () => {
  test('chat with a non-numeric friendid', () => {
    expect(error('chat:abc:hi')).toBe(
      "chat: friendid must be a positive integer, got 'abc' (usage: chat:friendid:message)",
    );
  });

  test('chat without a message', () => {
    expect(error('chat:1')).toBe('chat: missing message (usage: chat:friendid:message)');
  });

  test('chat without anything', () => {
    expect(error('chat')).toBe('chat: missing friendid and message (usage: chat:friendid:message)');
    expect(error('chat:')).toBe('chat: missing friendid and message (usage: chat:friendid:message)');
  });

  test('ids must be positive safe integers', () => {
    expect(error('chat:0:hi')).toMatch(/friendid must be a positive integer, got '0'/);
    expect(error('chat:-3:hi')).toMatch(/got '-3'/);
    expect(error('chat:1.5:hi')).toMatch(/got '1.5'/);
    expect(error('chat:12abc:hi')).toMatch(/got '12abc'/);
    expect(error('chat:99999999999999999999:hi')).toMatch(/positive integer/);
    expect(error('addfriend:x')).toBe(
      "addfriend: friendid must be a positive integer, got 'x' (usage: addfriend:friendid)",
    );
    expect(error('addgroup:')).toBe('addgroup: missing groupid (usage: addgroup:groupid)');
    expect(error('addfriend')).toBe('addfriend: missing friendid (usage: addfriend:friendid)');
    expect(error('groupchat:g:hi')).toMatch(/^groupchat: groupid must be a positive integer, got 'g'/);
    expect(error('groupchat:4')).toBe('groupchat: missing message (usage: groupchat:groupid:message)');
  });

  test('creategroup needs a name and a description part', () => {
    expect(error('creategroup')).toBe(
      'creategroup: missing groupname and groupdesc (usage: creategroup:groupname:groupdesc)',
    );
    expect(error('creategroup:onlyname')).toBe(
      'creategroup: missing groupdesc (usage: creategroup:groupname:groupdesc)',
    );
    expect(error('creategroup::desc')).toBe(
      'creategroup: groupname must not be empty (usage: creategroup:groupname:groupdesc)',
    );
    expect(ok('creategroup:name:')).toEqual({ kind: 'creategroup', groupname: 'name', groupdesc: '' });
  });

  test('unknown commands', () => {
    expect(error('chta:1:hi')).toBe("invalid input command 'chta' (type help for the list)");
    expect(error('1')).toBe("invalid input command '1' (type help for the list)");
  });

  test('blank lines are nothing to do, not errors', () => {
    expect(parseCommand('')).toEqual({ ok: true, command: null });
    expect(parseCommand('   ')).toEqual({ ok: true, command: null });
    expect(parseCommand('\r')).toEqual({ ok: true, command: null });
  });
});

describe('parseId / parseMenuChoice', () => {
  test('parseId', () => {
    expect(parseId('13')).toBe(13);
    expect(parseId(' 13 ')).toBe(13);
    expect(parseId('0')).toBeNull();
    expect(parseId('')).toBeNull();
    expect(parseId('1e3')).toBeNull();
    expect(parseId('0x10')).toBeNull();
    expect(parseId(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseId(String(Number.MAX_SAFE_INTEGER + 1))).toBeNull();
  });

  test('parseMenuChoice', () => {
    expect(parseMenuChoice('1')).toBe('login');
    expect(parseMenuChoice(' 2 ')).toBe('register');
    expect(parseMenuChoice('3\r')).toBe('quit');
    expect(parseMenuChoice('4')).toBeNull();
    expect(parseMenuChoice('login')).toBeNull();
    expect(parseMenuChoice('')).toBeNull();
  });
});

describe('parseArgs', () => {
  test('host and port, json by default', () => {
    expect(parseArgs(['127.0.0.1', '6000'])).toEqual({
      ok: true,
      args: { host: '127.0.0.1', port: 6000, codec: 'json' },
    });
  });

  test('--codec in both spellings, anywhere', () => {
    expect(parseArgs(['--codec', 'protobuf', 'h', '1'])).toEqual({
      ok: true,
      args: { host: 'h', port: 1, codec: 'protobuf' },
    });
    expect(parseArgs(['h', '65535', '--codec=json'])).toEqual({
      ok: true,
      args: { host: 'h', port: 65535, codec: 'json' },
    });
  });

  test('--discover instead of host and port', () => {
    expect(parseArgs(['--discover', 'zk://127.0.0.1:2181,127.0.0.1:2182/mprpc'])).toEqual({
      ok: true,
      args: { discover: 'zk://127.0.0.1:2181,127.0.0.1:2182/mprpc', codec: 'json' },
    });
    expect(parseArgs(['--discover=zk://h:1', '--codec', 'protobuf'])).toEqual({
      ok: true,
      args: { discover: 'zk://h:1', codec: 'protobuf' },
    });
    expect(parseArgs(['--discover', 'h:1'])).toEqual({
      ok: false,
      error: "--discover needs zk://HOST:PORT[,HOST:PORT…][/root], got 'h:1'",
    });
    expect(parseArgs(['--discover'])).toMatchObject({ ok: false });
    expect(parseArgs(['h', '1', '--discover', 'zk://h:1'])).toEqual({
      ok: false,
      error: 'give either host and port or --discover, not both',
    });
  });

  test('--help / -h', () => {
    expect(parseArgs(['--help'])).toEqual({ ok: true, help: true });
    expect(parseArgs(['h', '1', '-h'])).toEqual({ ok: true, help: true });
  });

  test('errors', () => {
    expect(parseArgs([])).toEqual({
      ok: false,
      error: 'command invalid! example: chat-client 127.0.0.1 6000',
    });
    expect(parseArgs(['127.0.0.1'])).toMatchObject({ ok: false });
    expect(parseArgs(['h', '1', 'extra'])).toMatchObject({ ok: false });
    expect(parseArgs(['h', '0'])).toEqual({ ok: false, error: "port must be 1..65535, got '0'" });
    expect(parseArgs(['h', '65536'])).toMatchObject({ ok: false });
    expect(parseArgs(['h', 'http'])).toEqual({ ok: false, error: "port must be 1..65535, got 'http'" });
    expect(parseArgs(['h', '1', '--codec', 'xml'])).toEqual({
      ok: false,
      error: "--codec must be json or protobuf, got 'xml'",
    });
    expect(parseArgs(['h', '1', '--codec'])).toEqual({
      ok: false,
      error: '--codec must be json or protobuf, got nothing',
    });
    expect(parseArgs(['h', '1', '--verbose'])).toEqual({ ok: false, error: "unknown option '--verbose'" });
  });
});
