/** JSON `msgid` values (docs/PROTOCOL.md §3–4). 1–10 are the classic ids; 11+ are this project's extensions. */
export const MsgId = {
  LOGIN_MSG: 1,
  LOGIN_MSG_ACK: 2,
  LOGINOUT_MSG: 3,
  REG_MSG: 4,
  REG_MSG_ACK: 5,
  ONE_CHAT_MSG: 6,
  ADD_FRIEND_MSG: 7,
  CREATE_GROUP_MSG: 8,
  ADD_GROUP_MSG: 9,
  GROUP_CHAT_MSG: 10,
  ONE_CHAT_ACK: 11,
  GROUP_CHAT_ACK: 12,
  ADD_FRIEND_ACK: 13,
  CREATE_GROUP_ACK: 14,
  ADD_GROUP_ACK: 15,
  LOGINOUT_ACK: 16,
  DELIVER_ACK: 17,
  PING: 18,
  PONG: 19,
  ERROR: 20,
} as const;

export type MsgId = (typeof MsgId)[keyof typeof MsgId];
export type MsgIdName = keyof typeof MsgId;

/** Ids a client may send (c→s). 6 and 10 are also pushed s→c. */
export type RequestMsgId = 1 | 3 | 4 | 6 | 7 | 8 | 9 | 10 | 17 | 18;

export const ALL_MSG_IDS: readonly MsgId[] = Object.values(MsgId);
export const REQUEST_MSG_IDS: readonly RequestMsgId[] = [1, 3, 4, 6, 7, 8, 9, 10, 17, 18];

const NAME_BY_ID: readonly (MsgIdName | undefined)[] = (() => {
  const names: (MsgIdName | undefined)[] = [];
  for (const name of Object.keys(MsgId) as MsgIdName[]) names[MsgId[name]] = name;
  return names;
})();

// Small dense ids: a bitmask test is branch-free and allocation-free on the per-message path.
const REQUEST_MASK = REQUEST_MSG_IDS.reduce((m, id) => m | (1 << id), 0);
const PRE_LOGIN_MASK = (1 << MsgId.LOGIN_MSG) | (1 << MsgId.REG_MSG) | (1 << MsgId.PING);

export function isMsgId(v: unknown): v is MsgId {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 20;
}

export function isRequestMsgId(v: unknown): v is RequestMsgId {
  return isMsgId(v) && (REQUEST_MASK & (1 << v)) !== 0;
}

/** Before login only LOGIN, REG and PING are accepted; other known ids get errno 4 (docs/PROTOCOL.md §3–4). */
export function allowedBeforeLogin(msgid: number): boolean {
  return isMsgId(msgid) && (PRE_LOGIN_MASK & (1 << msgid)) !== 0;
}

export function msgIdName(msgid: number): MsgIdName | undefined {
  return isMsgId(msgid) ? NAME_BY_ID[msgid] : undefined;
}
