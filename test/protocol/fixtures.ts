// Canonical JSON-shaped messages, one or more per msgid, shared by the codec tests.
export const SAMPLE_FRIENDS = [
  { id: 8, name: 'bob', state: 'online' },
  { id: 9, name: '卡尔', state: 'offline' },
] as const;

export const SAMPLE_GROUPS = [
  {
    id: 1,
    groupname: 'devs',
    groupdesc: 'the dev team',
    users: [
      { id: 7, name: 'alice', state: 'online', role: 'creator' },
      { id: 8, name: 'bob', state: 'offline', role: 'normal' },
    ],
  },
] as const;

/** Every msgid 1–20 at least once, in the shape the JSON codec carries. */
export const SAMPLES: readonly Record<string, unknown>[] = [
  { msgid: 1, id: 7, password: 'secret', lastseq: 3, reqid: 'r-1' },
  { msgid: 1, id: 7, password: '' },
  { msgid: 2, errno: 0, id: 7, name: 'alice', friends: SAMPLE_FRIENDS, groups: SAMPLE_GROUPS, reqid: 'r-1' },
  { msgid: 2, errno: 0, id: 7, name: 'alice', friends: [], groups: [] },
  { msgid: 2, errno: 1, errmsg: 'id or password is invalid!' },
  { msgid: 3, id: 7, reqid: 'bye' },
  { msgid: 4, name: 'alice', password: 'pw' },
  { msgid: 5, errno: 0, id: Number.MAX_SAFE_INTEGER },
  { msgid: 5, errno: 7, errmsg: 'name taken' },
  { msgid: 6, id: 7, name: 'alice', toid: 8, msg: 'hi 你好 😀', cmid: 'c-1', time: '2024-01-02 03:04:05' },
  { msgid: 6, mid: 100, seq: 1, id: 7, name: 'alice', toid: 8, msg: '', time: '2024-01-02 03:04:05' },
  { msgid: 7, id: 7, friendid: 8 },
  { msgid: 8, id: 7, groupname: 'devs', groupdesc: '' },
  { msgid: 9, id: 7, groupid: 1 },
  { msgid: 10, id: 7, name: 'alice', groupid: 1, msg: 'hello group', time: '2024-01-02 03:04:05' },
  { msgid: 10, mid: 101, seq: 2, id: 7, name: 'alice', groupid: 1, msg: 'x', time: '2024-01-02 03:04:05' },
  { msgid: 11, errno: 0, cmid: 'c-1', mid: 100, reqid: 'r-2' },
  { msgid: 12, errno: 5, errmsg: 'not a member of that group' },
  { msgid: 13, errno: 0, friendid: 8 },
  { msgid: 14, errno: 0, groupid: 1 },
  { msgid: 15, errno: 6, errmsg: 'not found', groupid: 99 },
  { msgid: 16, errno: 0 },
  { msgid: 17, seq: 0 },
  { msgid: 17, id: 7, seq: 42, reqid: 'ack' },
  { msgid: 18 },
  { msgid: 18, t: 1700000000000.5 },
  { msgid: 18, t: 'opaque' },
  { msgid: 19, t: 12, reqid: 'p' },
  { msgid: 19, t: 'opaque' },
  { msgid: 20, errno: 3, errmsg: 'unknown msgid 99', reqid: 'r-9' },
];

/** What the classic C++ client writes (its own fields, including `id`/`name` on chat messages). */
export const CLASSIC_CLIENT_REQUESTS: readonly Record<string, unknown>[] = [
  { msgid: 1, id: 13, password: '123456' },
  { msgid: 4, name: 'zhang san', password: '123456' },
  { msgid: 6, id: 13, name: 'zhang san', toid: 15, msg: 'hello', time: '2024-05-06 07:08:09' },
  { msgid: 7, id: 13, friendid: 15 },
  { msgid: 8, id: 13, groupname: 'g1', groupdesc: 'first group' },
  { msgid: 9, id: 13, groupid: 1 },
  { msgid: 10, id: 13, name: 'zhang san', groupid: 1, msg: 'hi all', time: '2024-05-06 07:08:09' },
  { msgid: 3, id: 13 },
];

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
