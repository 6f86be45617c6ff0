import { describe, expect, test } from 'vitest';
import {
  formatError,
  formatHelp,
  formatLoginInfo,
  formatPush,
  formatRegistered,
  MENU_TEXT,
} from '../../src/app/client/cli/format.js';

describe('formatPush', () => {
  test('one-to-one: time [id]name said: msg', () => {
    expect(
      formatPush({
        msgid: 6,
        mid: 9,
        seq: 1,
        id: 13,
        name: 'zhang',
        toid: 15,
        msg: 'hi: there',
        time: '2024-05-01 10:00:00',
      }),
    ).toBe('2024-05-01 10:00:00 [13]zhang said: hi: there');
  });

  test('group: group message[groupid]: time [id]name said: msg', () => {
    expect(
      formatPush({
        msgid: 10,
        mid: 9,
        seq: 2,
        id: 13,
        name: 'zhang',
        groupid: 4,
        msg: '大家好',
        time: '2024-05-01 10:00:01',
      }),
    ).toBe('group message[4]: 2024-05-01 10:00:01 [13]zhang said: 大家好');
  });
});

describe('formatLoginInfo', () => {
  test('user, friends and groups with members, in the classic layout', () => {
    const text = formatLoginInfo({
      id: 13,
      name: 'zhang',
      friends: [
        { id: 15, name: 'li', state: 'online' },
        { id: 16, name: 'wang', state: 'offline' },
      ],
      groups: [
        {
          id: 4,
          groupname: 'dev',
          groupdesc: 'developers',
          users: [
            { id: 13, name: 'zhang', state: 'online', role: 'creator' },
            { id: 15, name: 'li', state: 'online', role: 'normal' },
          ],
        },
      ],
    });
    expect(text.split('\n')).toEqual([
      '======================login user======================',
      'current login user => id:13 name:zhang',
      '----------------------friend list---------------------',
      '15 li online',
      '16 wang offline',
      '----------------------group list----------------------',
      '4 dev developers',
      '13 zhang online creator',
      '15 li online normal',
      '======================================================',
    ]);
  });

  test('empty lists still print both headers', () => {
    expect(formatLoginInfo({ id: 1, name: 'a', friends: [], groups: [] }).split('\n')).toEqual([
      '======================login user======================',
      'current login user => id:1 name:a',
      '----------------------friend list---------------------',
      '----------------------group list----------------------',
      '======================================================',
    ]);
  });
});

describe('other texts', () => {
  test('formatError prefers the server errmsg, falls back to the protocol text', () => {
    expect(formatError({ errno: 1, errmsg: 'id or password is invalid!' })).toBe(
      'error: id or password is invalid! (errno 1)',
    );
    expect(formatError({ errno: 6 })).toBe('error: not found (errno 6)');
    expect(formatError({ errno: 7, errmsg: '' })).toBe('error: conflict (errno 7)');
  });

  test('formatRegistered is the classic line', () => {
    expect(formatRegistered(21)).toBe('name register success, userid is 21, do not forget it!');
  });

  test('help lists every command usage', () => {
    const help = formatHelp();
    expect(help.split('\n')[0]).toBe('show command list >>>');
    for (const usage of [
      'help',
      'chat:friendid:message',
      'addfriend:friendid',
      'creategroup:groupname:groupdesc',
      'addgroup:groupid',
      'groupchat:groupid:message',
      'loginout',
    ]) {
      expect(help).toContain(usage);
    }
  });

  test('menu is the classic menu', () => {
    expect(MENU_TEXT).toBe(
      '========================\n1. login\n2. register\n3. quit\n========================',
    );
  });
});
