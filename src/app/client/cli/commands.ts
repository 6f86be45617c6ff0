/**
 * Parsing of what the user types into the classic client, as pure functions.
 *
 * Commands after login are `name` or `name:args` (the classic client splits at the first ':'):
 *   help | chat:friendid:message | addfriend:friendid | creategroup:groupname:groupdesc
 *   addgroup:groupid | groupchat:groupid:message | loginout
 * A message (or group description) is everything after its colon, verbatim, ':' included.
 */

import { Limits } from '../../protocol/errno.js';

export type Command =
  | { kind: 'help' }
  | { kind: 'chat'; toid: number; msg: string }
  | { kind: 'addfriend'; friendid: number }
  | { kind: 'creategroup'; groupname: string; groupdesc: string }
  | { kind: 'addgroup'; groupid: number }
  | { kind: 'groupchat'; groupid: number; msg: string }
  | { kind: 'loginout' };

export type CommandKind = Command['kind'];

/** A parse result: the command, nothing to do (blank line), or an error message in words. */
export type ParsedCommand =
  | { ok: true; command: Command }
  | { ok: true; command: null }
  | { ok: false; error: string };

/** Every command with its usage and a description, in the order `help` lists them. */
export const COMMANDS: readonly { name: CommandKind; usage: string; description: string }[] = [
  { name: 'help', usage: 'help', description: 'show all supported commands' },
  { name: 'chat', usage: 'chat:friendid:message', description: 'one-to-one chat' },
  { name: 'addfriend', usage: 'addfriend:friendid', description: 'add a friend' },
  { name: 'creategroup', usage: 'creategroup:groupname:groupdesc', description: 'create a group' },
  { name: 'addgroup', usage: 'addgroup:groupid', description: 'join a group' },
  { name: 'groupchat', usage: 'groupchat:groupid:message', description: 'group chat' },
  { name: 'loginout', usage: 'loginout', description: 'log out (back to the menu)' },
];

const USAGE: Readonly<Record<CommandKind, string>> = Object.fromEntries(
  COMMANDS.map((c) => [c.name, c.usage]),
) as Record<CommandKind, string>;

/**
 * A positive decimal id (surrounding blanks allowed, as `atoi` would skip them), or null.
 * Stricter than the classic client's atoi: "12abc" and "abc" are rejected instead of read as 12 and 0.
 */
export function parseId(text: string): number | null {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return null;
  const n = Number(t);
  return n >= 1 && Number.isSafeInteger(n) ? n : null;
}

function usageError(kind: CommandKind, problem: string): ParsedCommand {
  return { ok: false, error: `${kind}: ${problem} (usage: ${USAGE[kind]})` };
}

/** Splits "a:rest" at the first ':'; null when there is none. */
function splitFirst(s: string): [string, string] | null {
  const at = s.indexOf(':');
  return at < 0 ? null : [s.slice(0, at), s.slice(at + 1)];
}

function idAndText(
  kind: 'chat' | 'groupchat',
  args: string | null,
  idName: string,
): { id: number; msg: string } | ParsedCommand {
  if (args === null || args.trim() === '') return usageError(kind, `missing ${idName} and message`);
  const parts = splitFirst(args);
  const id = parseId(parts === null ? args : parts[0]);
  if (id === null) {
    return usageError(
      kind,
      `${idName} must be a positive integer, got '${(parts === null ? args : parts[0]).trim()}'`,
    );
  }
  if (parts === null) return usageError(kind, 'missing message');
  return { id, msg: parts[1] };
}

/** Parses one input line typed after login. A trailing '\r' (CRLF input) is ignored. */
export function parseCommand(line: string): ParsedCommand {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (text.trim() === '') return { ok: true, command: null };
  const parts = splitFirst(text);
  const name = (parts === null ? text : parts[0]).trim();
  const args = parts === null ? null : parts[1];
  switch (name) {
    case 'help':
      return { ok: true, command: { kind: 'help' } };
    case 'loginout':
      return { ok: true, command: { kind: 'loginout' } };
    case 'chat':
    case 'groupchat': {
      const r = idAndText(name, args, name === 'chat' ? 'friendid' : 'groupid');
      if ('ok' in r) return r;
      return name === 'chat'
        ? { ok: true, command: { kind: 'chat', toid: r.id, msg: r.msg } }
        : { ok: true, command: { kind: 'groupchat', groupid: r.id, msg: r.msg } };
    }
    case 'addfriend':
    case 'addgroup': {
      const idName = name === 'addfriend' ? 'friendid' : 'groupid';
      if (args === null || args.trim() === '') return usageError(name, `missing ${idName}`);
      const id = parseId(args);
      if (id === null) return usageError(name, `${idName} must be a positive integer, got '${args.trim()}'`);
      return name === 'addfriend'
        ? { ok: true, command: { kind: 'addfriend', friendid: id } }
        : { ok: true, command: { kind: 'addgroup', groupid: id } };
    }
    case 'creategroup': {
      if (args === null) return usageError(name, 'missing groupname and groupdesc');
      const p = splitFirst(args);
      if (p === null) return usageError(name, 'missing groupdesc');
      if (p[0].trim() === '') return usageError(name, 'groupname must not be empty');
      return { ok: true, command: { kind: 'creategroup', groupname: p[0], groupdesc: p[1] } };
    }
    default:
      return { ok: false, error: `invalid input command '${name}' (type help for the list)` };
  }
}

export type MenuChoice = 'login' | 'register' | 'quit';

/** The main menu's choice: "1" login, "2" register, "3" quit; anything else → null ("invalid input!"). */
export function parseMenuChoice(line: string): MenuChoice | null {
  switch (line.trim()) {
    case '1':
      return 'login';
    case '2':
      return 'register';
    case '3':
      return 'quit';
    default:
      return null;
  }
}

/** A fixed server, or `discover`: gateways found in ZooKeeper (reconnecting to another one on loss). */
export type CliArgs =
  | { host: string; port: number; codec: 'json' | 'protobuf' }
  | { discover: string; codec: 'json' | 'protobuf' };

export type ParsedArgs =
  | { ok: true; args: CliArgs }
  | { ok: true; help: true }
  | { ok: false; error: string };

export const CLI_USAGE = `usage: chat-client host port [--codec json|protobuf]
       chat-client --discover zk://HOST:PORT[,HOST:PORT…][/root] [--codec json|protobuf]

Connects to a chat server and runs the classic menu (login / register / quit).
With --discover it finds the chat gateways registered in ZooKeeper (root default /mprpc) and
connects to the least-loaded one; when that connection is lost it connects to another gateway,
logs in again (getting the messages it missed) and re-sends unacknowledged messages.
Reads one command a line from stdin, so it can be driven from a pipe:
  printf '2\\nalice\\npw\\n3\\n' | chat-client 127.0.0.1 6000

On a terminal the password is not echoed.

options:
  --codec json|protobuf  wire codec (default json: framed JSON)
  --discover zk://…      find the gateways in ZooKeeper instead of giving host and port
  -h, --help             show this help

limits (the server answers longer input with errno 3, and stores nothing):
  message (chat, groupchat)       ${Limits.MSG_MAX_BYTES} bytes of UTF-8
  name, password, group name      ${Limits.NAME_MAX_CHARS} characters
  group description               ${Limits.GROUPDESC_MAX_CHARS} characters
  chat messages per second        set by the server (its --rate); errno 8 beyond

Protocol: docs/PROTOCOL.md in the muduo-ts package.`;

/** Parses the command line (without `node` and the script path). */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  let codec: 'json' | 'protobuf' = 'json';
  let discover: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return { ok: true, help: true };
    if (a === '--discover' || a.startsWith('--discover=')) {
      const v = a === '--discover' ? argv[++i] : a.slice('--discover='.length);
      if (v === undefined || !v.startsWith('zk://')) {
        return {
          ok: false,
          error: `--discover needs zk://HOST:PORT[,HOST:PORT…][/root], got ${v === undefined ? 'nothing' : `'${v}'`}`,
        };
      }
      discover = v;
      continue;
    }
    if (a === '--codec' || a.startsWith('--codec=')) {
      const v = a === '--codec' ? argv[++i] : a.slice('--codec='.length);
      if (v !== 'json' && v !== 'protobuf') {
        return {
          ok: false,
          error: `--codec must be json or protobuf, got ${v === undefined ? 'nothing' : `'${v}'`}`,
        };
      }
      codec = v;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) return { ok: false, error: `unknown option '${a}'` };
    positional.push(a);
  }
  if (discover !== undefined) {
    if (positional.length > 0)
      return { ok: false, error: 'give either host and port or --discover, not both' };
    return { ok: true, args: { discover, codec } };
  }
  if (positional.length !== 2) {
    return { ok: false, error: 'command invalid! example: chat-client 127.0.0.1 6000' };
  }
  const [host, portText] = positional as [string, string];
  const port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) return { ok: false, error: `port must be 1..65535, got '${portText}'` };
  if (host === '') return { ok: false, error: 'host must not be empty' };
  return { ok: true, args: { host, port, codec } };
}
