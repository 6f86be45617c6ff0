import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fitLegacyChatMessage,
  fitLegacyLoginAck,
  kClassicRecvBytes,
  legacyChatMessageBound,
  legacyEncodedBytes,
  truncationMarker,
} from '../../src/app/protocol/legacyFit.js';
import {
  legacyChatMessage,
  legacyFriend,
  legacyGroup,
  legacyLoginAck,
} from '../../src/app/protocol/legacyReplies.js';
import type { ChatPushView, FriendView, GroupView } from '../../src/app/protocol/views.js';

/** Any text the protocol accepts, escape-heavy and astral characters included. */
const text = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(fc.constantFrom('\u0001', '"', '\\', '😀', 'é', '\n'), fc.string({ maxLength: 1 })),
    maxLength,
  });

/** Bytes of a legacy write as the classic client receives it: the JSON text and its `\0`. */
const wireBytes = (value: object): number => Buffer.byteLength(JSON.stringify(value), 'utf8') + 1;

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
        expect(wireBytes(fitted)).toBeLessThanOrEqual(max);
        const whole = legacyChatMessage(p);
        if (wireBytes(whole) <= max) {
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
        expect(wireBytes({ ...fitted, msg: next + marker }) > max || !wellFormed(next)).toBe(true);
        expect({ ...fitted, msg: p.msg }).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('the size bound that skips the second encoding is never below the real size', () => {
    // Short strings only: the bound is what lets most pushes skip a JSON.stringify.
    const short = push.map((p) => ({ ...p, msg: p.msg.slice(0, 200) }));
    fc.assert(
      fc.property(short, (p) => {
        expect(legacyChatMessageBound(p)).toBeGreaterThanOrEqual(legacyEncodedBytes(legacyChatMessage(p)));
      }),
      { numRuns: 500 },
    );
    // The widest: control characters escape to 6 bytes each, ids take their longest form.
    const worst: ChatPushView = {
      msgid: 10,
      mid: 1,
      seq: 1,
      id: 2 ** 53 - 1,
      name: '\u0001'.repeat(20),
      groupid: 2 ** 53 - 1,
      msg: '\u0001'.repeat(50),
      time: '\u0001'.repeat(19),
    };
    expect(legacyChatMessageBound(worst)).toBe(legacyEncodedBytes(legacyChatMessage(worst)));
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
    expect(wireBytes(legacyChatMessage(p))).toBeGreaterThan(4 * kClassicRecvBytes);
    expect(legacyEncodedBytes(legacyChatMessage(p))).toBe(wireBytes(legacyChatMessage(p)));
    expect(wireBytes(fitted)).toBeLessThanOrEqual(kClassicRecvBytes);
    expect(wireBytes(fitted)).toBeGreaterThan(kClassicRecvBytes - 6);
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
          expect(wireBytes(ack)).toBeLessThanOrEqual(max);
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
          // Each list stops only where its next entry would not fit (the ones after it and the
          // lists after it only add bytes): the next friend, the next user of a cut group, the
          // next group even without users, the next unread message.
          const tooBig = (more: Partial<typeof ack>) => wireBytes({ ...ack, ...more }) > max;
          if (shownFriends.length < friends.length) {
            expect(tooBig({ friends: friends.slice(0, shownFriends.length + 1).map(legacyFriend) })).toBe(
              true,
            );
          }
          const lastShown = shownGroups.length - 1;
          const lastFull = groups[lastShown];
          const lastUsers =
            lastShown < 0 ? 0 : (JSON.parse(shownGroups[lastShown]!) as { users: string[] }).users.length;
          if (lastFull !== undefined && lastUsers < lastFull.users.length) {
            const oneMore = legacyGroup({ ...lastFull, users: lastFull.users.slice(0, lastUsers + 1) });
            expect(tooBig({ groups: [...shownGroups.slice(0, -1), oneMore] })).toBe(true);
          } else if (shownGroups.length < groups.length) {
            const next = legacyGroup({ ...groups[shownGroups.length]!, users: [] });
            expect(tooBig({ groups: [...shownGroups, next] })).toBe(true);
          }
          if (offlineCount < offline.length) {
            const more = offline.slice(0, offlineCount + 1).map((m) => JSON.stringify(legacyChatMessage(m)));
            expect(tooBig({ offlinemsg: more })).toBe(true);
          }
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
    const groups: GroupView[] = [1, 2].map((id) => ({
      id,
      groupname: `g${id}`,
      groupdesc: 'd',
      users: [{ id: 2, name: 'bob', state: 'online', role: 'creator' }],
    }));
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

  it('names the cut in its marker: the whole length, for the classic client', () => {
    expect(truncationMarker(4096)).toBe('…[truncated from 4096 chars for the classic client]');
  });

  const chat = (msg: string): ChatPushView => ({
    msgid: 6,
    mid: 1,
    seq: 1,
    id: 2,
    name: 'bob',
    toid: 3,
    msg,
    time: '2024-01-01 00:00:00',
  });

  it('a chat message of exactly the budget travels whole; one byte more is cut', () => {
    const msg = 'a'.repeat(kClassicRecvBytes - wireBytes(legacyChatMessage(chat(''))));
    expect(wireBytes(legacyChatMessage(chat(msg)))).toBe(kClassicRecvBytes);
    expect(fitLegacyChatMessage(chat(msg), kClassicRecvBytes)).toEqual(legacyChatMessage(chat(msg)));
    const cut = fitLegacyChatMessage(chat(`${msg}a`), kClassicRecvBytes);
    expect(cut.msg.endsWith(truncationMarker(msg.length + 1))).toBe(true);
  });

  it('never cuts between the halves of a surrogate pair, wherever the budget falls', () => {
    for (const pair of ['😀', '\u{10000}']) {
      for (const prefix of ['', 'a']) {
        const p = chat(prefix + pair.repeat(600));
        for (let max = 1000; max < 1012; max++) {
          const fitted = fitLegacyChatMessage(p, max);
          const kept = fitted.msg.slice(0, fitted.msg.length - truncationMarker(p.msg.length).length);
          expect(wellFormed(kept)).toBe(true);
          expect(wireBytes(fitted)).toBeLessThanOrEqual(max);
          // Close to the budget (a lone high surrogate escapes to 6 bytes, more than the whole
          // pair's 4, so the search may stop one pair short of the most that fits).
          expect(wireBytes(fitted)).toBeGreaterThan(max - 10);
        }
      }
    }
  });

  /** `count` entries whose ack (with `build`) is exactly `max` bytes, the last one padded to fit. */
  function exactFit<T>(
    entry: (i: number, pad: string) => T,
    build: (entries: T[]) => object,
    count: number,
    max: number,
  ): T[] {
    for (let pad = 0; pad < max; pad++) {
      const entries = Array.from({ length: count }, (_, i) =>
        entry(i, i === count - 1 ? 'p'.repeat(pad) : ''),
      );
      const bytes = wireBytes(build(entries));
      if (bytes === max) return entries;
      if (bytes > max) break;
    }
    throw new Error('no exact fit');
  }

  const me = { id: 3, name: 'me' };

  it('unread messages that fill the ack to the byte all travel in it; a byte less leaves the last out', () => {
    const offline = exactFit(
      (i, pad) => ({ ...chat(`unread ${i} ${'x'.repeat(90)}${pad}`), mid: i + 1, seq: i + 1 }),
      (entries) => legacyLoginAck(me, [], [], entries),
      4,
      kClassicRecvBytes,
    );
    expect(fitLegacyLoginAck(me, [], [], offline, kClassicRecvBytes)).toEqual({
      ack: legacyLoginAck(me, [], [], offline),
      offlineCount: 4,
    });
    expect(fitLegacyLoginAck(me, [], [], offline, kClassicRecvBytes - 1).offlineCount).toBe(3);
  });

  it('friends that fill the ack to the byte are all listed; a byte less leaves the last out', () => {
    const friends = exactFit(
      (i, pad): FriendView => ({ id: 10 + i, name: `friend${i}${pad}`, state: 'online' }),
      (entries) => legacyLoginAck(me, entries, [], []),
      12,
      kClassicRecvBytes,
    );
    expect(fitLegacyLoginAck(me, friends, [], [], kClassicRecvBytes).ack).toEqual(
      legacyLoginAck(me, friends, [], []),
    );
    expect(fitLegacyLoginAck(me, friends, [], [], kClassicRecvBytes - 1).ack.friends).toHaveLength(11);
  });

  it('groups that fill the ack to the byte are all listed; a byte less cuts the last one', () => {
    const groups = exactFit(
      (i, pad): GroupView => ({
        id: i + 1,
        groupname: `group${i}`,
        groupdesc: `about ${i}${pad}`,
        users: [{ id: 2, name: 'bob', state: 'online', role: 'creator' }],
      }),
      (entries) => legacyLoginAck(me, [], entries, []),
      4,
      kClassicRecvBytes,
    );
    expect(fitLegacyLoginAck(me, [], groups, [], kClassicRecvBytes).ack).toEqual(
      legacyLoginAck(me, [], groups, []),
    );
    const cut = fitLegacyLoginAck(me, [], groups, [], kClassicRecvBytes - 1).ack.groups!;
    expect(cut.slice(0, 3)).toEqual(groups.slice(0, 3).map(legacyGroup));
    expect(cut[3]).toBe(legacyGroup({ ...groups[3]!, users: [] }));
  });
});
