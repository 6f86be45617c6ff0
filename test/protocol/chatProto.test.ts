import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ALL_MSG_IDS,
  CHAT_PROTO_SOURCE,
  chatMuduoCodec,
  chatProtoRoot,
  MSGID_BY_PROTO_TYPE,
  type MsgId,
  msgIdName,
  PROTO_TYPE_BY_MSGID,
} from '../../src/app/protocol/index.js';

const protoFile = new URL('../../src/app/protocol/chat.proto', import.meta.url);

/** JSON fields per msgid, from docs/PROTOCOL.md §4 plus `reqid` (every framed message may carry it). */
const JSON_FIELDS: Record<MsgId, string[]> = {
  1: ['id', 'password', 'lastseq', 'reqid'],
  2: ['errno', 'errmsg', 'id', 'name', 'friends', 'groups', 'reqid'],
  3: ['id', 'reqid'],
  4: ['name', 'password', 'reqid'],
  5: ['errno', 'errmsg', 'id', 'reqid'],
  6: ['toid', 'msg', 'cmid', 'time', 'mid', 'seq', 'id', 'name', 'reqid'],
  7: ['friendid', 'id', 'reqid'],
  8: ['groupname', 'groupdesc', 'id', 'reqid'],
  9: ['groupid', 'id', 'reqid'],
  10: ['groupid', 'msg', 'cmid', 'time', 'mid', 'seq', 'id', 'name', 'reqid'],
  11: ['errno', 'errmsg', 'cmid', 'mid', 'reqid'],
  12: ['errno', 'errmsg', 'cmid', 'mid', 'reqid'],
  13: ['errno', 'errmsg', 'friendid', 'reqid'],
  14: ['errno', 'errmsg', 'groupid', 'reqid'],
  15: ['errno', 'errmsg', 'groupid', 'reqid'],
  16: ['errno', 'reqid'],
  17: ['seq', 'id', 'reqid'],
  18: ['t', 'reqid'],
  19: ['t', 'reqid'],
  20: ['errno', 'errmsg', 'reqid'],
};

describe('chat.proto', () => {
  it('is loaded from src/app/protocol/chat.proto, the single source of the schema', () => {
    expect(CHAT_PROTO_SOURCE).toBe(readFileSync(protoFile, 'utf8'));
  });

  it('its msgid table (top comment) matches PROTO_TYPE_BY_MSGID and the msgid names', () => {
    const rows = [...CHAT_PROTO_SOURCE.matchAll(/^\/\/\s+(\d+)\s+([A-Z_]+)\s+(chat\.\w+)\s*$/gm)];
    expect(rows.length).toBe(20);
    for (const [, id, name, type] of rows) {
      const msgid = Number(id) as MsgId;
      expect(msgIdName(msgid)).toBe(name);
      expect(PROTO_TYPE_BY_MSGID[msgid]).toBe(type);
    }
  });

  it('maps every msgid to a distinct type and back', () => {
    expect(Object.keys(PROTO_TYPE_BY_MSGID).map(Number)).toEqual([...ALL_MSG_IDS]);
    expect(MSGID_BY_PROTO_TYPE.size).toBe(20);
    for (const id of ALL_MSG_IDS) expect(MSGID_BY_PROTO_TYPE.get(PROTO_TYPE_BY_MSGID[id])).toBe(id);
    expect([...chatMuduoCodec().typeNames()].sort()).toEqual(Object.values(PROTO_TYPE_BY_MSGID).sort());
  });

  it('uses the names the protocol documents', () => {
    expect(PROTO_TYPE_BY_MSGID[1]).toBe('chat.LoginRequest');
    expect(PROTO_TYPE_BY_MSGID[2]).toBe('chat.LoginAck');
    expect(PROTO_TYPE_BY_MSGID[6]).toBe('chat.OneChat');
    expect(PROTO_TYPE_BY_MSGID[18]).toBe('chat.Ping');
    expect(PROTO_TYPE_BY_MSGID[19]).toBe('chat.Pong');
    expect(PROTO_TYPE_BY_MSGID[20]).toBe('chat.Error');
  });

  for (const id of ALL_MSG_IDS) {
    it(`${PROTO_TYPE_BY_MSGID[id]} has every JSON field of msgid ${id}, scalars with presence, reqid = 15`, () => {
      const type = chatProtoRoot().lookupType(PROTO_TYPE_BY_MSGID[id]);
      const names = Object.keys(type.fields);
      expect(names).toEqual(expect.arrayContaining(JSON_FIELDS[id]));
      expect(type.fields.reqid?.id).toBe(15);
      expect(type.fields.reqid?.type).toBe('string');
      for (const f of type.fieldsArray) {
        if (!f.repeated) expect(Boolean(f.hasPresence), `${type.name}.${f.name}`).toBe(true);
      }
    });
  }

  it('nested types carry the login ack shapes', () => {
    const root = chatProtoRoot();
    expect(Object.keys(root.lookupType('chat.Friend').fields)).toEqual(['id', 'name', 'state']);
    expect(Object.keys(root.lookupType('chat.Group').fields)).toEqual([
      'id',
      'groupname',
      'groupdesc',
      'users',
    ]);
    expect(Object.keys(root.lookupType('chat.GroupUser').fields)).toEqual(['id', 'name', 'state', 'role']);
  });
});
