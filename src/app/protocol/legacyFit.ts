import { Buffer } from 'node:buffer';
import {
  type LegacyChatMessage,
  type LegacyLoginAckOk,
  legacyChatMessage,
  legacyFriend,
  legacyGroup,
  legacyLoginAck,
} from './legacyReplies.js';
import type { ChatPushView, FriendView, GroupView } from './views.js';

/**
 * The classic client reads each message with one 1,024-byte `recv` and parses it as a C string
 * (PROTOCOL.md §1): a legacy write, its `\0` included, must fit that buffer or the client drops
 * or fails on it. These functions cut replies to a byte budget; the stored data is never changed.
 */
export const kClassicRecvBytes = 1024;

/** Bytes of `value` as legacy output: its JSON text and the `\0`. */
export function legacyEncodedBytes(value: object): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8') + 1;
}

/** Bytes of `s` as a JSON string literal (quotes and escapes included). */
function literalBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s), 'utf8');
}

/**
 * Appended to a message cut to fit (docs/DECISIONS.md "Pacing"): says that it was cut and how long
 * the whole one is. The store keeps it whole; framed sessions are sent it whole.
 */
export function truncationMarker(fullChars: number): string {
  return `…[truncated from ${fullChars} chars for the classic client]`;
}

/**
 * The push as the classic client sees it, in at most `maxBytes`: whole when it fits, else `msg`
 * cut (never inside a surrogate pair) and followed by `truncationMarker`. Sender name and time
 * are bounded (PROTOCOL.md limits), so a budget of 1,024 bytes always leaves room for the marker.
 */
export function fitLegacyChatMessage(push: ChatPushView, maxBytes: number): LegacyChatMessage {
  const whole = legacyChatMessage(push);
  // Most pushes are short: when even the worst case fits, skip encoding it once more here (the
  // codec encodes it to send).
  if (legacyChatMessageBound(push) <= maxBytes) return whole;
  if (legacyEncodedBytes(whole) <= maxBytes) return whole;
  const marker = truncationMarker(push.msg.length);
  const cut = (chars: number): LegacyChatMessage => ({ ...whole, msg: push.msg.slice(0, chars) + marker });
  // Largest prefix that fits: each extra char only adds bytes, so the size is monotone in `chars`.
  let lo = 0;
  let hi = push.msg.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (legacyEncodedBytes(cut(mid)) <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  const code = push.msg.charCodeAt(lo - 1);
  if (lo > 0 && code >= 0xd800 && code <= 0xdbff) lo--;
  return cut(lo);
}

/**
 * Bytes the legacy encoding of `push` can take at most: the keys and punctuation of the longest
 * shape (group message), two ids of at most 16 characters each, and 6 bytes per UTF-16
 * unit of the strings (a `\u00XX` escape is the widest a unit gets; UTF-8 needs at most 3), and
 * the `\0`.
 */
export function legacyChatMessageBound(push: ChatPushView): number {
  const kFixed = '{"msgid":10,"id":,"name":"","groupid":,"msg":"","time":""}'.length + 2 * 16 + 1;
  return kFixed + 6 * (push.name.length + push.msg.length + push.time.length);
}

/** A LOGIN_MSG_ACK cut to the budget, and how many of the offered unread messages it carries. */
export interface FittedLoginAck {
  ack: LegacyLoginAckOk;
  offlineCount: number;
}

/** Adds the JSON-string items of one array key while they fit; returns the bytes left. */
function takeWhileFits(items: readonly string[], key: string, budget: number, out: string[]): number {
  let left = budget - (key.length + 6); // ,"key":[]
  if (left < 0) return budget;
  for (const item of items) {
    const cost = literalBytes(item) + (out.length > 0 ? 1 : 0);
    if (cost > left) break;
    out.push(item);
    left -= cost;
  }
  return out.length > 0 ? left : budget;
}

/** The group with as many of its users as fit `left` bytes, or undefined when none fits. */
function fitGroup(group: GroupView, left: number): string | undefined {
  let lo = -1;
  let hi = group.users.length;
  // Largest user count whose group string fits (the group without users counts as 0).
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const text = legacyGroup({ ...group, users: group.users.slice(0, mid) });
    if (literalBytes(text) <= left) lo = mid;
    else hi = mid - 1;
  }
  return lo < 0 ? undefined : legacyGroup({ ...group, users: group.users.slice(0, lo) });
}

/**
 * The classic login ack in at most `maxBytes` (docs/DECISIONS.md "Pacing"): the friends list
 * first, then the groups (a group too big on its own keeps the users that fit), each cut where
 * the next entry would not fit; then as many of `offline` (in seq order) as still fit whole.
 * The caller sends the remaining unread messages as pushes.
 */
export function fitLegacyLoginAck(
  user: { id: number; name: string },
  friends: readonly FriendView[],
  groups: readonly GroupView[],
  offline: readonly ChatPushView[],
  maxBytes: number,
): FittedLoginAck {
  let left = maxBytes - legacyEncodedBytes(legacyLoginAck(user, [], [], []));
  const friendItems: string[] = [];
  left = takeWhileFits(friends.map(legacyFriend), 'friends', left, friendItems);
  const groupItems: string[] = [];
  let groupsLeft = left - ('groups'.length + 6);
  for (const group of groups) {
    const room = groupsLeft - (groupItems.length > 0 ? 1 : 0);
    const text = fitGroup(group, room);
    if (text === undefined) break;
    groupItems.push(text);
    groupsLeft = room - literalBytes(text);
    if (text.length < legacyGroup(group).length) break;
  }
  if (groupItems.length > 0) left = groupsLeft;
  const offlineItems: string[] = [];
  takeWhileFits(
    offline.map((m) => JSON.stringify(legacyChatMessage(m))),
    'offlinemsg',
    left,
    offlineItems,
  );
  const ack = legacyLoginAck(user, [], [], []);
  if (offlineItems.length > 0) ack.offlinemsg = offlineItems;
  if (friendItems.length > 0) ack.friends = friendItems;
  if (groupItems.length > 0) ack.groups = groupItems;
  return { ack, offlineCount: offlineItems.length };
}
