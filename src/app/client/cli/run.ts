/**
 * The classic interactive client (menu → login/register → chat commands), driven by any line
 * stream: a terminal or a pipe (one answer or command per line). The `chat-client` binary is a thin
 * wrapper; tests drive `runCli` in-process with their own streams.
 *
 * Requests are handled one line at a time: each reply is awaited (and its errors printed) before
 * the next line is read, so piped input behaves exactly like typed input and, when the input
 * ends, every reply has already arrived. Then the connection is closed gracefully (pending
 * DELIVER_ACK flushed) and the exit code is 0.
 *
 * Pushes are printed as they arrive (format.ts); the library acknowledges them (coalesced
 * DELIVER_ACK). A PING goes out after 30 s without any other request — at the menu too, not only
 * while logged in, because the server drops framed connections that stay silent for 90 s.
 *
 * On a terminal, passwords are read without echo (hiddenInput.ts). When the input ends at a
 * prompt, a newline ends the output so the shell's prompt starts on a line of its own.
 *
 * With --discover the client is a ReconnectingChatClient: a lost gateway is replaced by another
 * (logged in again, unacknowledged messages re-sent) and said so on stderr; only giving up
 * ends the session.
 *
 * Exit codes: 0 normal end (quit or end of input), 1 connection failed or lost, 2 bad arguments.
 */
import { createInterface } from 'node:readline';
import { ChatClient, type ChatClientOptions, type CloseInfo } from '../ChatClient.js';
import { isChatClientError } from '../errors.js';
import { ReconnectingChatClient } from '../ReconnectingChatClient.js';
import type {
  AddFriendReply,
  ChatAckReply,
  ChatPush,
  GroupReply,
  LoginReply,
  LogoutReply,
  PongReply,
  RegisterReply,
  ServerError,
} from '../types.js';
import { CLI_USAGE, type Command, parseArgs, parseCommand, parseId, parseMenuChoice } from './commands.js';
import {
  CHOICE_PROMPT,
  formatError,
  formatHelp,
  formatLoginInfo,
  formatPush,
  formatRegistered,
  MENU_TEXT,
  PASSWORD_PROMPT,
  USERID_PROMPT,
  USERNAME_PROMPT,
} from './format.js';
import { HiddenInput } from './hiddenInput.js';

export interface CliIo {
  input: NodeJS.ReadableStream;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Extra options for the ChatClient (tests shorten timers). */
  clientOptions?: Partial<ChatClientOptions>;
}

/** What the menu needs of a client: ChatClient and ReconnectingChatClient both are one. */
interface CliClient {
  register(name: string, password: string): Promise<RegisterReply>;
  login(id: number, password: string): Promise<LoginReply>;
  logout(): Promise<LogoutReply>;
  sendChat(toid: number, msg: string): Promise<ChatAckReply>;
  groupChat(groupid: number, msg: string): Promise<ChatAckReply>;
  addFriend(friendid: number): Promise<AddFriendReply>;
  createGroup(groupname: string, groupdesc: string): Promise<GroupReply>;
  joinGroup(groupid: number): Promise<GroupReply>;
  ping(): Promise<PongReply>;
  onPush(listener: (push: ChatPush) => void): () => void;
  on(event: 'serverError', listener: (error: ServerError) => void): () => void;
  on(event: 'close', listener: (info: CloseInfo) => void): () => void;
  close(): Promise<CloseInfo>;
}

/** PING period while connected: well inside the server's 90 s idle timeout. */
export const KEEPALIVE_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;

/** Lines from a stream, one at a time; `next()` resolves null at the end of input (or after `abort`). */
class LineReader {
  private readonly lines: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;
  private readonly rl;

  constructor(input: NodeJS.ReadableStream) {
    this.rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY, terminal: false });
    this.rl.on('line', (line) => {
      if (this.ended) return;
      if (this.waiter !== null) this.wake(line);
      else this.lines.push(line);
    });
    this.rl.on('close', () => this.abort());
  }

  next(): Promise<string | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Ends the input early: pending and later `next()` calls return null. */
  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.wake(null);
  }

  close(): void {
    this.abort();
    this.rl.close();
  }

  private wake(line: string | null): void {
    const w = this.waiter;
    this.waiter = null;
    w?.(line);
  }
}

type ChatLoopEnd = 'menu' | 'eof';

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  /** A prompt is on screen with nothing after it yet (the cursor ends its line). */
  let promptOpen = false;
  const out = (text: string): void => {
    io.stdout.write(`${promptOpen ? '\n' : ''}${text}\n`);
    promptOpen = false;
  };
  const prompt = (text: string): void => {
    io.stdout.write(text);
    promptOpen = true;
  };
  const err = (text: string): void => {
    io.stderr.write(`${text}\n`);
  };

  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    err(`chat-client: ${parsed.error}`);
    err(`run 'chat-client --help' for usage`);
    return 2;
  }
  if ('help' in parsed) {
    out(CLI_USAGE);
    return 0;
  }
  const args = parsed.args;
  const where = 'discover' in args ? args.discover : `${args.host}:${args.port}`;
  const common = {
    codec: args.codec,
    keepAliveMs: KEEPALIVE_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    ...io.clientOptions,
  };
  let client: CliClient;
  try {
    if ('discover' in args) {
      const reconnecting = await ReconnectingChatClient.connect({ ...common, discover: args.discover });
      reconnecting.on('disconnect', (info) => {
        err(
          `connection to ${info.address} lost${info.error !== null ? `: ${info.error.message}` : ''}; reconnecting`,
        );
      });
      reconnecting.on('reconnect', (info) => {
        const resent = info.resent > 0 ? `, ${info.resent} unacknowledged messages sent again` : '';
        err(`reconnected to ${info.gateway ?? info.address} after ${info.downMs} ms${resent}`);
      });
      client = reconnecting;
    } else {
      client = await ChatClient.connect({ ...common, host: args.host, port: args.port });
    }
  } catch (e) {
    err(isChatClientError(e) ? e.message : `cannot connect to ${where}: ${String(e)}`);
    return 1;
  }

  const input = new LineReader(io.input);
  const hidden = new HiddenInput(io.input);
  /** The answer to a prompt: what was typed, the line ended by the user's own Enter. */
  const answer = async (): Promise<string | null> => {
    const line = await input.next();
    if (line !== null) promptOpen = false;
    return line;
  };
  /** A password: unechoed on a terminal, where the Enter that ends it is not echoed either. */
  const readPassword = async (): Promise<string | null> => {
    // Echo off before the prompt shows, so nothing typed in answer to it is echoed.
    hidden.hide(() => input.abort());
    prompt(PASSWORD_PROMPT);
    const line = await input.next();
    hidden.show();
    if (line === null || !hidden.isTerminal) {
      if (line !== null) promptOpen = false;
      return line;
    }
    promptOpen = false;
    io.stdout.write('\n');
    return HiddenInput.applyEditing(line);
  };
  let exitCode = 0;
  let holding = false;
  const held: string[] = [];

  client.onPush((push: ChatPush) => {
    const text = formatPush(push);
    if (holding) held.push(text);
    else out(text);
  });
  client.on('serverError', (e) => {
    err(formatError(e));
  });
  client.on('close', (info) => {
    if (info.local) return;
    err(`connection to ${where} closed${info.error !== null ? `: ${info.error.message}` : ' by the server'}`);
    exitCode = 1;
    input.abort();
  });

  /** Runs a request; prints transport failures in words and returns null for them. */
  const attempt = async <T>(request: () => Promise<T>): Promise<T | null> => {
    try {
      return await request();
    } catch (e) {
      if (isChatClientError(e)) {
        if (e.code !== 'CLOSED') err(`error: ${e.message}`);
        if (e.code === 'CLOSED' || e.code === 'PROTOCOL') {
          exitCode = 1;
          input.abort();
        }
        return null;
      }
      throw e;
    }
  };

  const runCommand = async (command: Command): Promise<ChatLoopEnd | null> => {
    switch (command.kind) {
      case 'help':
        out(formatHelp());
        return null;
      case 'chat': {
        const r = await attempt(() => client.sendChat(command.toid, command.msg));
        if (r !== null && r.errno !== 0) err(formatError(r));
        return null;
      }
      case 'groupchat': {
        const r = await attempt(() => client.groupChat(command.groupid, command.msg));
        if (r !== null && r.errno !== 0) err(formatError(r));
        return null;
      }
      case 'addfriend': {
        const r = await attempt(() => client.addFriend(command.friendid));
        if (r !== null) {
          if (r.errno === 0) out(`friend ${command.friendid} added`);
          else err(formatError(r));
        }
        return null;
      }
      case 'creategroup': {
        const r = await attempt(() => client.createGroup(command.groupname, command.groupdesc));
        if (r !== null) {
          if (r.errno === 0) out(`group created, groupid is ${r.groupid}`);
          else err(formatError(r));
        }
        return null;
      }
      case 'addgroup': {
        const r = await attempt(() => client.joinGroup(command.groupid));
        if (r !== null) {
          if (r.errno === 0) out(`joined group ${command.groupid}`);
          else err(formatError(r));
        }
        return null;
      }
      case 'loginout': {
        const r = await attempt(() => client.logout());
        if (r !== null && r.errno !== 0) err(formatError(r));
        return 'menu';
      }
    }
  };

  const chatLoop = async (): Promise<ChatLoopEnd> => {
    out(formatHelp());
    for (;;) {
      const line = await input.next();
      if (line === null) return 'eof';
      const parsedCommand = parseCommand(line);
      if (!parsedCommand.ok) {
        err(parsedCommand.error);
        continue;
      }
      if (parsedCommand.command === null) continue;
      const end = await runCommand(parsedCommand.command);
      if (end !== null) return end;
    }
  };

  try {
    menu: for (;;) {
      out(MENU_TEXT);
      prompt(CHOICE_PROMPT);
      const line = await answer();
      if (line === null) break;
      const choice = parseMenuChoice(line);
      switch (choice) {
        case null:
          err('invalid input!');
          continue;
        case 'quit':
          break menu;
        case 'register': {
          prompt(USERNAME_PROMPT);
          const name = await answer();
          if (name === null) break menu;
          const password = await readPassword();
          if (password === null) break menu;
          const r = await attempt(() => client.register(name, password));
          if (r !== null) {
            if (r.errno === 0) out(formatRegistered(r.id));
            else err(formatError(r));
          }
          continue;
        }
        case 'login': {
          prompt(USERID_PROMPT);
          const idLine = await answer();
          if (idLine === null) break menu;
          const password = await readPassword();
          if (password === null) break menu;
          const id = parseId(idLine);
          if (id === null) {
            err(`error: userid must be a positive integer, got '${idLine.trim()}'`);
            continue;
          }
          // Offline messages are pushed right after the ack: print them after the user info.
          // The server answers a request only after the login's backlog is written, so a PING's
          // answer is a barrier: every offline message has arrived (and is held) by then.
          holding = true;
          const r = await attempt(() => client.login(id, password));
          if (r !== null && r.errno === 0) await attempt(() => client.ping());
          holding = false;
          if (r !== null && r.errno === 0) out(formatLoginInfo(r));
          else if (r !== null) err(formatError(r));
          for (const text of held.splice(0)) out(text);
          if (r === null || r.errno !== 0) continue;
          if ((await chatLoop()) === 'eof') break menu;
          continue;
        }
      }
    }
  } finally {
    hidden.show();
    // Input ended at a prompt: finish its line.
    if (promptOpen) io.stdout.write('\n');
    input.close();
    await client.close();
  }
  return exitCode;
}
