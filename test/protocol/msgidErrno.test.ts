import { describe, expect, it } from 'vitest';
import {
  ALL_MSG_IDS,
  allowedBeforeLogin,
  ERRMSG,
  Errno,
  errmsgFor,
  errorFromParse,
  errorReply,
  isMsgId,
  isRequestMsgId,
  MsgId,
  msgIdName,
  type ParseFail,
  ProtocolError,
  parseRequest,
} from '../../src/app/protocol/index.js';

describe('MsgId', () => {
  it('numbers 1–20 in the documented order', () => {
    expect(Object.values(MsgId)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(MsgId.LOGIN_MSG).toBe(1);
    expect(MsgId.GROUP_CHAT_MSG).toBe(10);
    expect(MsgId.DELIVER_ACK).toBe(17);
    expect(MsgId.ERROR).toBe(20);
    expect(msgIdName(6)).toBe('ONE_CHAT_MSG');
    expect(msgIdName(21)).toBeUndefined();
    expect(ALL_MSG_IDS.every(isMsgId)).toBe(true);
    expect([0, 21, 1.5, '1', null].some(isMsgId)).toBe(false);
  });

  it('knows the request ids and the pre-login ids', () => {
    expect(ALL_MSG_IDS.filter(isRequestMsgId)).toEqual([1, 3, 4, 6, 7, 8, 9, 10, 17, 18]);
    expect(ALL_MSG_IDS.filter(allowedBeforeLogin)).toEqual([1, 4, 18]);
  });
});

describe('Errno', () => {
  it('has 0–9 with the classic texts for 1 and 2', () => {
    expect(Object.values(Errno)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ERRMSG[1]).toBe('id or password is invalid!');
    expect(ERRMSG[2]).toBe('this account is using, input another!');
    for (const e of Object.values(Errno)) expect(errmsgFor(e).length).toBeGreaterThan(0);
    expect(errmsgFor(77)).toBe(ERRMSG[9]);
  });

  it('ProtocolError carries a code and errno 3 for bad input, 9 for unencodable replies', () => {
    const e = new ProtocolError('BAD_JSON', 'x');
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code, e.errno, e.message]).toEqual(['ProtocolError', 'BAD_JSON', 3, 'x']);
    expect(new ProtocolError('UNENCODABLE', 'y').errno).toBe(9);
  });

  it('error replies echo reqid', () => {
    expect(errorReply(4)).toEqual({ msgid: 20, errno: 4, errmsg: 'not logged in' });
    const f = parseRequest({ msgid: 99, reqid: 'z' }) as ParseFail;
    expect(errorFromParse(f)).toEqual({ msgid: 20, errno: 3, errmsg: 'unknown msgid 99', reqid: 'z' });
  });
});
