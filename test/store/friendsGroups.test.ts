import { describe, expect, it } from 'vitest';
import { createUsers, STORE_KINDS, uniqueName, useTestStore } from './harness.js';

describe.each(STORE_KINDS)('FriendModel on %s', (kind) => {
  const t = useTestStore(kind);

  it('makes friendship mutual', async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'friend');
    await t.store.friends.add(a!, b!);
    await t.store.friends.add(c!, a!);
    const ofA = await t.store.friends.list(a!);
    expect(ofA.map((f) => f.id)).toEqual([b, c]);
    expect(ofA[0]).toEqual({ id: b, name: (await t.store.users.findById(b!))?.name, state: 'offline' });
    expect((await t.store.friends.list(b!)).map((f) => f.id)).toEqual([a]);
    expect((await t.store.friends.list(c!)).map((f) => f.id)).toEqual([a]);
  });

  it('reports presence in friend lists', async () => {
    const [a, b] = await createUsers(t.store, 2, 'seen');
    await t.store.friends.add(a!, b!);
    await t.store.users.setState(b!, 'online', 'srv');
    expect((await t.store.friends.list(a!))[0]?.state).toBe('online');
  });

  it('refuses an existing friendship in either direction with CONFLICT', async () => {
    const [a, b] = await createUsers(t.store, 2, 'again');
    await t.store.friends.add(a!, b!);
    await expect(t.store.friends.add(a!, b!)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(t.store.friends.add(b!, a!)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await t.store.friends.list(a!)).toHaveLength(1);
  });

  it('refuses unknown users with NOT_FOUND and oneself with CONFLICT, storing nothing', async () => {
    const [a] = await createUsers(t.store, 1, 'lonely');
    await expect(t.store.friends.add(a!, 999_999)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.store.friends.add(999_999, a!)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.store.friends.add(a!, a!)).rejects.toMatchObject({
      code: 'CONFLICT',
      message: /yourself/,
    });
    expect(await t.store.friends.list(a!)).toEqual([]);
  });

  it('settles concurrent requests between the same pair on exactly one success', async () => {
    const [a, b] = await createUsers(t.store, 2, 'race');
    const outcomes = await Promise.allSettled([
      t.store.friends.add(a!, b!),
      t.store.friends.add(b!, a!),
      t.store.friends.add(a!, b!),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes)
      if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'CONFLICT' });
    expect((await t.store.friends.list(b!)).map((f) => f.id)).toEqual([a]);
  });
});

describe.each(STORE_KINDS)('GroupModel on %s', (kind) => {
  const t = useTestStore(kind);

  it('creates a group with its creator, lets others join, and lists it with roles', async () => {
    const [owner, m1, m2, outsider] = await createUsers(t.store, 4, 'grp');
    const groups = t.store.groups;
    const name = uniqueName('team');
    const gid = await groups.create(owner!, name, 'the team');
    expect(await groups.exists(gid)).toBe(true);
    expect(await groups.memberIds(gid)).toEqual([owner]);
    await groups.join(gid, m2!);
    await groups.join(gid, m1!);
    expect(await groups.memberIds(gid)).toEqual([owner, m1, m2]);
    expect(await groups.isMember(gid, m1!)).toBe(true);
    expect(await groups.isMember(gid, outsider!)).toBe(false);

    await t.store.users.setState(m1!, 'online', 'srv');
    const [detail] = await groups.listForUser(m2!);
    expect(detail).toEqual({
      id: gid,
      groupname: name,
      groupdesc: 'the team',
      users: [
        { id: owner, name: (await t.store.users.findById(owner!))?.name, state: 'offline', role: 'creator' },
        { id: m1, name: (await t.store.users.findById(m1!))?.name, state: 'online', role: 'normal' },
        { id: m2, name: (await t.store.users.findById(m2!))?.name, state: 'offline', role: 'normal' },
      ],
    });
    expect(await groups.listForUser(outsider!)).toEqual([]);
  });

  it('lists several groups per user, each with only its own members', async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'multi');
    const g1 = await t.store.groups.create(a!, uniqueName('g'), '');
    const g2 = await t.store.groups.create(b!, uniqueName('g'), 'second');
    await t.store.groups.join(g2, a!);
    await t.store.groups.join(g2, c!);
    const list = await t.store.groups.listForUser(a!);
    expect(list.map((g) => g.id)).toEqual([g1, g2]);
    expect(list[0]?.users.map((u) => [u.id, u.role])).toEqual([[a, 'creator']]);
    expect(list[1]?.users.map((u) => [u.id, u.role])).toEqual([
      [a, 'normal'],
      [b, 'creator'],
      [c, 'normal'],
    ]);
  });

  it('refuses a taken group name, a double join, and unknown groups or users', async () => {
    const [a, b] = await createUsers(t.store, 2, 'rules');
    const name = uniqueName('unique');
    const gid = await t.store.groups.create(a!, name, 'x');
    await expect(t.store.groups.create(b!, name, 'y')).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(t.store.groups.join(gid, a!)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(t.store.groups.join(999_999, b!)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.store.groups.join(gid, 999_999)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(t.store.groups.create(999_999, uniqueName('ghost'), '')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(await t.store.groups.exists(999_999)).toBe(false);
    expect(await t.store.groups.memberIds(gid)).toEqual([a]);
    expect(await t.store.groups.memberIds(999_999)).toEqual([]);
  });

  it('stores group names and descriptions verbatim', async () => {
    const [a] = await createUsers(t.store, 1, 'verbatim');
    const name = `'; DROP TABLE chat_groups; -- ${uniqueName('')}`;
    const desc = `\\"quotes'\\ 日本語 🎉 ${'d'.repeat(150)}`;
    const gid = await t.store.groups.create(a!, name, desc);
    const [g] = await t.store.groups.listForUser(a!);
    expect(g).toMatchObject({ id: gid, groupname: name, groupdesc: desc });
  });
});
