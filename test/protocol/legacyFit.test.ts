import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fitLegacyChatMessage,
  fitLegacyLoginAck,
  kClassicRecvBytes,
  legacyEncodedBytes,
  truncationMarker,
} from '../../src/app/protocol/legacyFit.js';
import { legacyChatMessage, legacyFriend, legacyGroup } from '../../src/app/protocol/legacyReplies.js';
import type { ChatPushView, FriendView, GroupView } from '../../src/app/protocol/views.js';

/** Any text the protocol accepts, escape-heavy and astral characters included. */
const text = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(fc.constantFrom('\u0001', '"', '\\', '😀', 'é', '\n'), fc.string({ maxLength: 1 })),
    maxLength,
  });

/** No lone surrogate: UTF-8 round-trips it unchanged. */
const wellFormed = (s: string): boolean => Buffer.from(s, 'utf8').toString('utf8') === s;

const push: fc.Arbitrary<ChatPushView> = fc
  .record({
    group: fc.boolean(),
    seq: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    id: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    name: text(50),
    target: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    msg: text(4096),
    time: text(64),
  })
  .map(
    ({ group, seq, id, name, target, msg, time }): ChatPushView =>
      group
        ? { msgid: 10, mid: seq, seq, id, name, groupid: target, msg, time }
        : { msgid: 6, mid: seq, seq, id, name, toid: target, msg, time },
  );

const friend: fc.Arbitrary<FriendView> = fc.record({
  id: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  name: text(50),
  state: fc.constantFrom('online' as const, 'offline' as const),
});

const group: fc.Arbitrary<GroupView> = fc.record({
  id: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  groupname: text(50),
  groupdesc: text(200),
  users: fc.array(
    fc.record({
      id: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      name: text(50),
      state: fc.constantFrom('online' as const, 'offline' as const),
      role: fc.constantFrom('creator' as const, 'normal' as const),
    }),
    { maxLength: 40 },
  ),
});

const user = fc.record({ id: fc.integer({ min: 1, max: 2 ** 31 - 1 }), name: text(50) });

describe('legacy replies cut to the classic recv buffer', () => {
  it('a chat message fits: whole when it can be, else a prefix of msg and the marker', () => {
    fc.assert(
      fc.property(push, fc.constantFrom(kClassicRecvBytes, 1500, 4096), (p, max) => {
        const fitted = fitLegacyChatMessage(p, max);
        expect(legacyEncodedBytes(fitted)).toBeLessThanOrEqual(max);
        const whole = legacyChatMessage(p);
        if (legacyEncodedBytes(whole) <= max) {
          expect(fitted).toEqual(whole);
          return;
        }
        const marker = truncationMarker(p.msg.length);
        expect(fitted.msg.endsWith(marker)).toBe(true);
        const kept = fitted.msg.slice(0, fitted.msg.length - marker.length);
        expect(p.msg.startsWith(kept)).toBe(true);
        // Never half a surrogate pair: the kept text is well-formed.
        expect(wellFormed(kept)).toBe(true);
        // As long as fits: one more char would not.
        const next = p.msg.slice(0, kept.length + 1);
        expect(legacyEncodedBytes({ ...fitted, msg: next + marker }) > max || !wellFormed(next)).toBe(true);
        expect({ ...fitted, msg: p.msg }).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('4,096 escape-heavy characters are cut to one recv', () => {
    const p: ChatPushView = {
      msgid: 6,
      mid: 1,
      seq: 1,
      id: 2,
      name: 'mallory',
      toid: 3,
      msg: '\u0001'.repeat(4096),
      time: '2024-01-01 00:00:00',
    };
    const fitted = fitLegacyChatMessage(p, kClassicRecvBytes);
    expect(legacyEncodedBytes(p)).toBeGreaterThan(4 * kClassicRecvBytes);
    expect(legacyEncodedBytes(fitted)).toBeLessThanOrEqual(kClassicRecvBytes);
    expect(legacyEncodedBytes(fitted)).toBeGreaterThan(kClassicRecvBytes - 6);
  });

  it('a login ack fits, and carries prefixes: friends, groups, then unread messages in seq order', () => {
    fc.assert(
      fc.property(
        user,
        fc.array(friend, { maxLength: 40 }),
        fc.array(group, { maxLength: 6 }),
        fc.array(push, { maxLength: 30 }),
        fc.constantFrom(kClassicRecvBytes, 2048),
        (u, friends, groups, offline, max) => {
          const { ack, offlineCount } = fitLegacyLoginAck(u, friends, groups, offline, max);
          expect(legacyEncodedBytes(ack)).toBeLessThanOrEqual(max);
          expect(ack).toMatchObject({ msgid: 2, errno: 0, id: u.id, name: u.name });
          const carried = ack.offlinemsg ?? [];
          expect(carried.length).toBe(offlineCount);
          expect(carried).toEqual(
            offline.slice(0, offlineCount).map((m) => JSON.stringify(legacyChatMessage(m))),
          );
          const shownFriends = ack.friends ?? [];
          expect(shownFriends).toEqual(friends.slice(0, shownFriends.length).map(legacyFriend));
          const shownGroups = ack.groups ?? [];
          shownGroups.forEach((g, i) => {
            const full = groups[i]!;
            const parsed = JSON.parse(g) as { users: string[] };
            // Whole, or (only the last one shown) with a prefix of its users.
            expect(g).toBe(legacyGroup({ ...full, users: full.users.slice(0, parsed.users.length) }));
            if (i < shownGroups.length - 1) expect(g).toBe(legacyGroup(full));
          });
          // Keys only when non-empty (the classic shape).
          for (const key of ['offlinemsg', 'friends', 'groups'] as const) {
            if (key in ack) expect((ack[key] ?? []).length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('small lists and messages travel whole', () => {
    const friends: FriendView[] = [{ id: 2, name: 'bob', state: 'online' }];
    const groups: GroupView[] = [
      {
        id: 1,
        groupname: 'g',
        groupdesc: 'd',
        users: [{ id: 2, name: 'bob', state: 'online', role: 'creator' }],
      },
    ];
    const offline: ChatPushView[] = [
      { msgid: 6, mid: 1, seq: 1, id: 2, name: 'bob', toid: 3, msg: 'hi', time: '2024-01-01 00:00:00' },
      { msgid: 6, mid: 2, seq: 2, id: 2, name: 'bob', toid: 3, msg: 'there', time: '2024-01-01 00:00:00' },
    ];
    const { ack, offlineCount } = fitLegacyLoginAck({ id: 3, name: 'me' }, friends, groups, offline, 1024);
    expect(offlineCount).toBe(2);
    expect(ack.friends).toEqual(friends.map(legacyFriend));
    expect(ack.groups).toEqual(groups.map(legacyGroup));
  });

  it('a long backlog: the ack stops where the next message would not fit', () => {
    const offline: ChatPushView[] = Array.from({ length: 40 }, (_, i) => ({
      msgid: 6,
      mid: i + 1,
      seq: i + 1,
      id: 2,
      name: 'bob',
      toid: 3,
      msg: `message ${i} ${'x'.repeat(40)}`,
      time: '2024-01-01 00:00:00',
    }));
    const { ack, offlineCount } = fitLegacyLoginAck({ id: 3, name: 'me' }, [], [], offline, 1024);
    expect(offlineCount).toBeGreaterThan(3);
    expect(offlineCount).toBeLessThan(40);
    const withOneMore = {
      ...ack,
      offlinemsg: offline.slice(0, offlineCount + 1).map((m) => JSON.stringify(legacyChatMessage(m))),
    };
    expect(legacyEncodedBytes(withOneMore)).toBeGreaterThan(1024);
  });
});
