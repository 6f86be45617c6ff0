/**
 * What the classic client prints, as pure functions returning text (no trailing newline).
 *
 * Deviation from the classic client, on purpose: a group push is printed as
 * `group message[groupid]: time [id]name said: msg` (the classic client printed `群消息[groupid]:`).
 */
import { errmsgFor } from '../../protocol/errno.js';
import type { ChatPush, LoginReply, ReplyBase } from '../types.js';
import { COMMANDS } from './commands.js';

export const MENU_TEXT = [
  '========================',
  '1. login',
  '2. register',
  '3. quit',
  '========================',
].join('\n');

/** The menu prompt, printed without a newline like the classic `cout << "choice:"`. */
export const CHOICE_PROMPT = 'choice:';
export const USERID_PROMPT = 'userid:';
export const USERNAME_PROMPT = 'username:';
export const PASSWORD_PROMPT = 'userpassword:';

/** `time [id]name said: msg`, or `group message[groupid]: time [id]name said: msg`. */
export function formatPush(push: ChatPush): string {
  const line = `${push.time} [${push.id}]${push.name} said: ${push.msg}`;
  return push.msgid === 10 ? `group message[${push.groupid}]: ${line}` : line;
}

/** The classic showCurrentUserData() block. */
export function formatLoginInfo(ack: Pick<LoginReply, 'id' | 'name' | 'friends' | 'groups'>): string {
  const lines = [
    '======================login user======================',
    `current login user => id:${ack.id} name:${ack.name}`,
    '----------------------friend list---------------------',
  ];
  for (const f of ack.friends) lines.push(`${f.id} ${f.name} ${f.state}`);
  lines.push('----------------------group list----------------------');
  for (const g of ack.groups) {
    lines.push(`${g.id} ${g.groupname} ${g.groupdesc}`);
    for (const u of g.users) lines.push(`${u.id} ${u.name} ${u.state} ${u.role}`);
  }
  lines.push('======================================================');
  return lines.join('\n');
}

/** The `help` output: every command with its usage. */
export function formatHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.usage.length));
  return ['show command list >>>', ...COMMANDS.map((c) => `${c.usage.padEnd(width)}  ${c.description}`)].join(
    '\n',
  );
}

/** `error: <errmsg> (errno N)`, using the protocol's default text when the server sent none. */
export function formatError(reply: Pick<ReplyBase, 'errno' | 'errmsg'>): string {
  const msg = reply.errmsg !== undefined && reply.errmsg !== '' ? reply.errmsg : errmsgFor(reply.errno);
  return `error: ${msg} (errno ${reply.errno})`;
}

/** The classic success line after REG_MSG_ACK. */
export function formatRegistered(id: number): string {
  return `name register success, userid is ${id}, do not forget it!`;
}
