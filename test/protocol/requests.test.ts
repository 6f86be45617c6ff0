import { describe, expect, it } from 'vitest';
import {
  Errno,
  Limits,
  type ParseFail,
  parseRequest,
  REQUEST_MSG_IDS,
} from '../../src/app/protocol/index.js';
import { CLASSIC_CLIENT_REQUESTS } from './fixtures.js';

function rejected(obj: unknown): ParseFail {
  const r = parseRequest(obj);
  if (r.ok) throw new Error(`expected rejection of ${JSON.stringify(obj)}`);
  expect(r.errno).toBe(Errno.BAD_REQUEST);
  return r;
}

/** A minimal valid request per request msgid, and the kind of each field it carries. */
const VALID: Record<number, { base: Record<string, unknown>; ints: string[]; strs: string[] }> = {
  1: { base: { msgid: 1, id: 7, password: 'pw' }, ints: ['id'], strs: ['password'] },
  3: { base: { msgid: 3 }, ints: [], strs: [] },
  4: { base: { msgid: 4, name: 'alice', password: 'pw' }, ints: [], strs: ['name', 'password'] },
  6: { base: { msgid: 6, toid: 8, msg: 'hi' }, ints: ['toid'], strs: ['msg'] },
  7: { base: { msgid: 7, friendid: 8 }, ints: ['friendid'], strs: [] },
  8: { base: { msgid: 8, groupname: 'g', groupdesc: 'd' }, ints: [], strs: ['groupname', 'groupdesc'] },
  9: { base: { msgid: 9, groupid: 1 }, ints: ['groupid'], strs: [] },
  10: { base: { msgid: 10, groupid: 1, msg: 'hi' }, ints: ['groupid'], strs: ['msg'] },
  17: { base: { msgid: 17, seq: 3 }, ints: ['seq'], strs: [] },
  18: { base: { msgid: 18 }, ints: [], strs: [] },
};

const without = (o: Record<string, unknown>, key: string): Record<string, unknown> => {
  const c = { ...o };
  delete c[key];
  return c;
};

describe('parseRequest: every request msgid', () => {
  it('covers exactly the request ids', () => {
    expect(Object.keys(VALID).map(Number)).toEqual([...REQUEST_MSG_IDS]);
  });

  for (const [msgid, { base, ints, strs }] of Object.entries(VALID)) {
    describe(`msgid ${msgid}`, () => {
      it('accepts the minimal request and returns exactly its fields', () => {
        expect(parseRequest(base)).toEqual({ ok: true, req: base });
      });

      it('accepts and keeps optional id and reqid (string or number)', () => {
        const r1 = parseRequest({ ...base, id: 7, reqid: 'abc' });
        expect(r1).toEqual({ ok: true, req: { ...base, id: 7, reqid: 'abc' } });
        const r2 = parseRequest({ ...base, reqid: 12 });
        expect(r2).toEqual({ ok: true, req: { ...base, reqid: 12 } });
      });

      it('rejects a reqid that is neither string nor number, without echoing it', () => {
        for (const reqid of [true, {}, [1]]) {
          const f = rejected({ ...base, reqid });
          expect(f.errmsg).toBe("field 'reqid' must be a string or a number");
          expect(f.reqid).toBeUndefined();
          expect(f.msgid).toBe(Number(msgid));
        }
      });

      for (const key of [...ints, ...strs]) {
        it(`rejects a missing '${key}' (null counts as missing), echoing reqid and msgid`, () => {
          for (const obj of [without(base, key), { ...base, [key]: null }]) {
            const f = rejected({ ...obj, reqid: 'q' });
            expect(f).toEqual({
              ok: false,
              errno: 3,
              errmsg: `field '${key}' is required`,
              reqid: 'q',
              msgid: Number(msgid),
            });
          }
        });
      }

      for (const key of ints) {
        it(`rejects a non-integer '${key}'`, () => {
          for (const bad of ['7', 1.5, true, [], {}, Number.NaN]) {
            expect(rejected({ ...base, [key]: bad }).errmsg).toBe(`field '${key}' must be an integer`);
          }
        });
        it(`rejects an out-of-range '${key}'`, () => {
          const sign = key === 'seq' ? 'non-negative' : 'positive';
          expect(rejected({ ...base, [key]: -1 }).errmsg).toBe(`field '${key}' must be a ${sign} integer`);
          if (key !== 'seq')
            expect(rejected({ ...base, [key]: 0 }).errmsg).toBe(`field '${key}' must be a ${sign} integer`);
          expect(rejected({ ...base, [key]: 2 ** 53 }).errmsg).toBe(
            `field '${key}' must be at most 9007199254740991`,
          );
          expect(parseRequest({ ...base, [key]: Number.MAX_SAFE_INTEGER }).ok).toBe(true);
        });
      }

      for (const key of strs) {
        it(`rejects a non-string '${key}'`, () => {
          for (const bad of [1, true, [], {}]) {
            expect(rejected({ ...base, [key]: bad }).errmsg).toBe(`field '${key}' must be a string`);
          }
        });
      }

      if (msgid !== '1') {
        it('rejects an identity id that is not a positive safe integer', () => {
          expect(rejected({ ...base, id: 'me' }).errmsg).toBe("field 'id' must be an integer");
          expect(rejected({ ...base, id: 0 }).errmsg).toBe("field 'id' must be a positive integer");
        });
      }
    });
  }
});

describe('parseRequest: optional fields', () => {
  it('LOGIN keeps lastseq (0 allowed) and rejects a negative or fractional one', () => {
    expect(parseRequest({ msgid: 1, id: 7, password: 'pw', lastseq: 0 })).toEqual({
      ok: true,
      req: { msgid: 1, id: 7, password: 'pw', lastseq: 0 },
    });
    expect(rejected({ msgid: 1, id: 7, password: 'pw', lastseq: -1 }).errmsg).toBe(
      "field 'lastseq' must be a non-negative integer",
    );
    expect(rejected({ msgid: 1, id: 7, password: 'pw', lastseq: 0.5 }).errmsg).toBe(
      "field 'lastseq' must be an integer",
    );
  });

  for (const base of [
    { msgid: 6, toid: 8, msg: 'hi' },
    { msgid: 10, groupid: 1, msg: 'hi' },
  ]) {
    it(`msgid ${base.msgid} keeps cmid and time, checks their types and bounds`, () => {
      const full = { ...base, cmid: 'c'.repeat(64), time: '2024-01-01 00:00:00' };
      expect(parseRequest(full)).toEqual({ ok: true, req: full });
      expect(rejected({ ...base, cmid: 'c'.repeat(65) }).errmsg).toBe(
        "field 'cmid' must be at most 64 characters",
      );
      expect(rejected({ ...base, cmid: '' }).errmsg).toBe("field 'cmid' must not be empty");
      expect(rejected({ ...base, cmid: 5 }).errmsg).toBe("field 'cmid' must be a string");
      expect(rejected({ ...base, time: 20240101 }).errmsg).toBe("field 'time' must be a string");
      expect(rejected({ ...base, time: 't'.repeat(Limits.TIME_MAX_CHARS + 1) }).errmsg).toBe(
        `field 'time' must be at most ${Limits.TIME_MAX_CHARS} characters`,
      );
      expect(parseRequest({ ...base, cmid: null, time: null })).toEqual({ ok: true, req: base });
    });
  }

  it('PING keeps a numeric or string t and rejects other types', () => {
    expect(parseRequest({ msgid: 18, t: 1.25 })).toEqual({ ok: true, req: { msgid: 18, t: 1.25 } });
    expect(parseRequest({ msgid: 18, t: 'x' })).toEqual({ ok: true, req: { msgid: 18, t: 'x' } });
    expect(rejected({ msgid: 18, t: { a: 1 } }).errmsg).toBe("field 't' must be a number or a string");
    expect(rejected({ msgid: 18, t: Number.POSITIVE_INFINITY }).errmsg).toBe(
      "field 't' must be a number or a string",
    );
  });

  it('drops unknown extra fields instead of passing them on', () => {
    const r = parseRequest({ msgid: 7, friendid: 8, extra: 1, __proto__: { x: 1 } });
    expect(r).toEqual({ ok: true, req: { msgid: 7, friendid: 8 } });
  });

  it('accepts empty strings where they make sense (login password, groupdesc, msg)', () => {
    expect(parseRequest({ msgid: 1, id: 7, password: '' }).ok).toBe(true);
    expect(parseRequest({ msgid: 8, groupname: 'g', groupdesc: '' }).ok).toBe(true);
    expect(parseRequest({ msgid: 6, toid: 8, msg: '' }).ok).toBe(true);
  });

  it('rejects empty register name/password and group name', () => {
    expect(rejected({ msgid: 4, name: '', password: 'pw' }).errmsg).toBe("field 'name' must not be empty");
    expect(rejected({ msgid: 4, name: 'a', password: '' }).errmsg).toBe("field 'password' must not be empty");
    expect(rejected({ msgid: 8, groupname: '', groupdesc: 'd' }).errmsg).toBe(
      "field 'groupname' must not be empty",
    );
  });
});

describe('parseRequest: msgid and envelope', () => {
  it('rejects non-objects', () => {
    for (const v of [null, undefined, 1, 'x', true, [], [{ msgid: 1 }]]) {
      expect(rejected(v).errmsg).toBe('request must be a JSON object');
    }
  });

  it('rejects a missing or non-integer msgid', () => {
    expect(rejected({}).errmsg).toBe("field 'msgid' is required");
    expect(rejected({ msgid: '1' }).errmsg).toBe("field 'msgid' must be an integer");
    expect(rejected({ msgid: 1.5, reqid: 'x' })).toMatchObject({
      errmsg: "field 'msgid' must be an integer",
      reqid: 'x',
    });
  });

  it('rejects unknown msgids with errno 3 and reports the msgid', () => {
    for (const msgid of [0, -1, 21, 99, 1e9]) {
      expect(rejected({ msgid, reqid: 5 })).toEqual({
        ok: false,
        errno: 3,
        errmsg: `unknown msgid ${msgid}`,
        reqid: 5,
        msgid,
      });
    }
  });

  it('rejects reply ids sent by a client', () => {
    for (const msgid of [2, 5, 11, 12, 13, 14, 15, 16, 19, 20]) {
      expect(rejected({ msgid, errno: 0 }).errmsg).toBe(`msgid ${msgid} is not a request`);
    }
  });

  it('never throws on hostile objects (throwing getters, proxies)', () => {
    const getter = Object.defineProperty({ msgid: 6 }, 'toid', {
      get() {
        throw new Error('boom');
      },
      enumerable: true,
    });
    expect(rejected(getter)).toMatchObject({ errmsg: 'malformed request', msgid: 6 });
    const proxy = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
      },
    );
    expect(rejected(proxy).errmsg).toBe('malformed request');
  });

  it('accepts everything the classic C++ client sends', () => {
    for (const obj of CLASSIC_CLIENT_REQUESTS) {
      const r = parseRequest(obj);
      expect(r.ok, JSON.stringify(obj)).toBe(true);
      if (r.ok) expect(r.req.msgid).toBe(obj.msgid);
    }
  });
});

describe('parseRequest: length limits at the boundary', () => {
  const charLimits: [Record<string, unknown>, string, number][] = [
    [{ msgid: 4, name: 'a', password: 'pw' }, 'name', Limits.NAME_MAX_CHARS],
    [{ msgid: 4, name: 'a', password: 'pw' }, 'password', Limits.PASSWORD_MAX_CHARS],
    [{ msgid: 1, id: 1, password: 'pw' }, 'password', Limits.PASSWORD_MAX_CHARS],
    [{ msgid: 8, groupname: 'g', groupdesc: 'd' }, 'groupname', Limits.GROUPNAME_MAX_CHARS],
    [{ msgid: 8, groupname: 'g', groupdesc: 'd' }, 'groupdesc', Limits.GROUPDESC_MAX_CHARS],
    [{ msgid: 6, toid: 1, msg: 'm' }, 'cmid', Limits.CMID_MAX_CHARS],
  ];

  it('uses the limits of docs/PROTOCOL.md', () => {
    expect([Limits.NAME_MAX_CHARS, Limits.PASSWORD_MAX_CHARS, Limits.GROUPNAME_MAX_CHARS]).toEqual([
      50, 50, 50,
    ]);
    expect([Limits.GROUPDESC_MAX_CHARS, Limits.MSG_MAX_BYTES, Limits.CMID_MAX_CHARS]).toEqual([
      200, 4096, 64,
    ]);
    expect(Limits.MAX_MESSAGE_BYTES).toBe(1024 * 1024);
  });

  for (const [base, key, max] of charLimits) {
    it(`msgid ${base.msgid} '${key}': ${max} characters ok, ${max + 1} rejected (code points, not UTF-16 units)`, () => {
      for (const unit of ['x', 'é', '好', '😀']) {
        const ok = parseRequest({ ...base, [key]: unit.repeat(max) });
        expect(ok.ok, `${max} × ${unit}`).toBe(true);
        expect(rejected({ ...base, [key]: unit.repeat(max + 1) }).errmsg).toBe(
          `field '${key}' must be at most ${max} characters`,
        );
      }
    });
  }

  for (const base of [
    { msgid: 6, toid: 1 },
    { msgid: 10, groupid: 1 },
  ]) {
    it(`msgid ${base.msgid} 'msg': 4096 UTF-8 bytes ok, 4097 rejected`, () => {
      const cases: [string, number][] = [
        ['a'.repeat(4096), 4096],
        ['€'.repeat(1365) + 'a', 4096], // 3-byte chars
        ['😀'.repeat(1024), 4096], // 4-byte chars (surrogate pairs)
        ['é'.repeat(2048), 4096],
        ['a'.repeat(4097), 4097],
        ['€'.repeat(1365) + 'aa', 4097],
        ['😀'.repeat(1024) + 'a', 4097],
        ['é'.repeat(2048) + 'a', 4097],
        ['好'.repeat(1366), 4098],
      ];
      for (const [msg, bytes] of cases) {
        expect(Buffer.byteLength(msg)).toBe(bytes);
        const r = parseRequest({ ...base, msg });
        if (bytes <= 4096) expect(r.ok, `${bytes} bytes`).toBe(true);
        else
          expect(rejected({ ...base, msg }).errmsg).toBe("field 'msg' must be at most 4096 bytes of UTF-8");
      }
    });
  }
});
