import { describe, expect, it } from 'vitest';
import {
  type ChatPushView,
  Errno,
  legacyChatMessage,
  legacyCodec,
  legacyLoginAck,
  legacyLoginAckError,
  legacyMaySend,
  legacyRegAck,
  legacyRegAckError,
  loginAck,
} from '../../src/app/protocol/index.js';
import { SAMPLE_FRIENDS, SAMPLE_GROUPS } from './fixtures.js';

const OFFLINE: ChatPushView[] = [
  { msgid: 6, mid: 11, seq: 1, id: 8, name: 'bob', toid: 7, msg: 'hi 😀', time: '2024-01-01 10:00:00' },
  {
    msgid: 10,
    mid: 12,
    seq: 2,
    id: 9,
    name: 'carl',
    groupid: 1,
    msg: 'group hi',
    time: '2024-01-01 10:00:01',
  },
];

/** What the classic C++ client does with a LOGIN_MSG_ACK (nlohmann::json, strings parsed again). */
function classicClientReads(ack: Record<string, unknown>) {
  if (ack.errno !== 0) return { error: ack.errmsg as string };
  const asStrings = (v: unknown): string[] => {
    if (v === undefined) return [];
    expect(Array.isArray(v)).toBe(true);
    for (const s of v as unknown[]) expect(typeof s).toBe('string');
    return v as string[];
  };
  const friends = asStrings(ack.friends).map((s) => JSON.parse(s));
  const groups = asStrings(ack.groups).map((s) => {
    const g = JSON.parse(s);
    return { ...g, users: asStrings(g.users).map((u) => JSON.parse(u)) };
  });
  const offline = asStrings(ack.offlinemsg).map((s) => JSON.parse(s));
  return { id: ack.id, name: ack.name, friends, groups, offline };
}

describe('legacy replies', () => {
  it('a legacy session may be sent only 2, 5, 6 and 10', () => {
    const allowed = Array.from({ length: 22 }, (_, i) => i).filter(legacyMaySend);
    expect(allowed).toEqual([2, 5, 6, 10]);
    for (const v of ['2', null, undefined, 2.5, 34, -30, Number.NaN]) expect(legacyMaySend(v)).toBe(false);
  });

  it('login ack: friends, groups (and their users) and offlinemsg are JSON-encoded strings', () => {
    const ack = legacyLoginAck({ id: 7, name: 'alice' }, SAMPLE_FRIENDS, SAMPLE_GROUPS, OFFLINE);
    expect(Object.keys(ack)).toEqual(['msgid', 'errno', 'id', 'name', 'offlinemsg', 'friends', 'groups']);
    expect(ack).toMatchObject({ msgid: 2, errno: 0, id: 7, name: 'alice' });
    const read = classicClientReads(ack as unknown as Record<string, unknown>);
    expect(read.friends).toEqual(SAMPLE_FRIENDS);
    expect(read.groups).toEqual(SAMPLE_GROUPS);
    expect(read.offline).toEqual([
      { msgid: 6, id: 8, name: 'bob', toid: 7, msg: 'hi 😀', time: '2024-01-01 10:00:00' },
      { msgid: 10, id: 9, name: 'carl', groupid: 1, msg: 'group hi', time: '2024-01-01 10:00:01' },
    ]);
  });

  it('login ack: each key is present only when non-empty, but a group always has users', () => {
    const bare = legacyLoginAck({ id: 7, name: 'alice' }, [], [], []);
    expect(bare).toEqual({ msgid: 2, errno: 0, id: 7, name: 'alice' });
    const lonely = legacyLoginAck(
      { id: 7, name: 'a' },
      [],
      [{ id: 3, groupname: 'g', groupdesc: '', users: [] }],
      [],
    );
    expect(lonely.groups).toEqual([JSON.stringify({ id: 3, groupname: 'g', groupdesc: '', users: [] })]);
    expect(lonely.friends).toBeUndefined();
    expect(lonely.offlinemsg).toBeUndefined();
  });

  it('login and register errors carry the classic texts', () => {
    expect(legacyLoginAckError(Errno.BAD_CREDENTIALS)).toEqual({
      msgid: 2,
      errno: 1,
      errmsg: 'id or password is invalid!',
    });
    expect(legacyLoginAckError(Errno.ALREADY_ONLINE)).toEqual({
      msgid: 2,
      errno: 2,
      errmsg: 'this account is using, input another!',
    });
    expect(legacyRegAck(42)).toEqual({ msgid: 5, errno: 0, id: 42 });
    expect(legacyRegAckError(Errno.CONFLICT, 'name taken')).toEqual({
      msgid: 5,
      errno: 7,
      errmsg: 'name taken',
    });
    expect(classicClientReads(legacyLoginAckError(3, 'bad') as unknown as Record<string, unknown>)).toEqual({
      error: 'bad',
    });
  });

  it('live pushes carry exactly the classic fields, and go out NUL-terminated', () => {
    for (const push of OFFLINE) {
      const m = legacyChatMessage(push);
      expect(legacyMaySend(m.msgid)).toBe(true);
      expect(Object.keys(m)).toEqual([
        'msgid',
        'id',
        'name',
        push.msgid === 6 ? 'toid' : 'groupid',
        'msg',
        'time',
      ]);
      const wire = legacyCodec.encode(m);
      expect(wire[wire.length - 1]).toBe(0);
      expect(JSON.parse(new TextDecoder().decode(wire.subarray(0, -1)))).toEqual(m);
    }
  });

  it('framed login ack keeps friends and groups as objects, always present', () => {
    expect(loginAck({ id: 7, name: 'a' }, [], [], 'r')).toEqual({
      msgid: 2,
      errno: 0,
      id: 7,
      name: 'a',
      friends: [],
      groups: [],
      reqid: 'r',
    });
    expect(loginAck({ id: 7, name: 'a' }, SAMPLE_FRIENDS, SAMPLE_GROUPS).groups).toBe(SAMPLE_GROUPS);
  });
});
