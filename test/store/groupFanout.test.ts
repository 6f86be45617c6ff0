/**
 * Group messages of partition owners (chat-service message nodes; docs/DISTRIBUTED.md, "Group
 * messages"): the owner of the group's partition stores the message and one group_fanout row per
 * member partition, no inbox entry; the owner of each member partition appends its members'
 * entries and deletes the row in one transaction, exactly once, under its partition's fence.
 */
import { describe, expect, it } from 'vitest';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { PartitionMovedError } from '../../src/app/model/PartitionFence.js';
import type { NewMessage } from '../../src/app/model/types.js';
import { partitionOf } from '../../src/app/store/partitions.js';
import {
  createUsers,
  oneToOne,
  openTestDriver,
  openTestStore,
  STORE_KINDS,
  uniqueName,
  useTestStore,
} from './harness.js';

describe.each(STORE_KINDS)('group fan-out of partition owners on %s', (kind) => {
  const t = useTestStore(kind);

  const node = (name: string): Promise<ChatStore> =>
    openTestStore(t.url, { messages: { midBlock: 8, partitionOwner: name } });

  /** A group of `n` members besides its creator (consecutive ids: one partition each). */
  async function group(
    n: number,
    prefix: string,
  ): Promise<{ sender: number; members: number[]; gid: number }> {
    const [sender, ...members] = await createUsers(t.store, n + 1, prefix);
    const gid = await t.store.groups.create(sender!, uniqueName('g'), 'fan-out');
    for (const m of members) await t.store.groups.join(gid, m);
    return { sender: sender!, members, gid };
  }

  const groupMessage = (sender: number, gid: number, members: number[], body: string, cmid: string | null) =>
    ({
      sender,
      cmid,
      kind: 'group',
      target: gid,
      body,
      time: '2024-05-01 12:00:00',
      recipients: members,
    }) satisfies NewMessage;

  async function fanoutRows(
    mid: number,
  ): Promise<{ part: number; sourcePart: number; recipients: string }[]> {
    const driver = await openTestDriver(t.url);
    try {
      const rows = await driver.query<{ part: number; sourcePart: number; recipients: string }>(
        'SELECT part, source_part AS sourcePart, recipients FROM group_fanout WHERE mid = ? ORDER BY part',
        [mid],
      );
      return rows.map((r) => ({
        part: Number(r.part),
        sourcePart: Number(r.sourcePart),
        recipients: r.recipients,
      }));
    } finally {
      await driver.close();
    }
  }

  it('a group message stores fan-out rows and no inbox entry; a fan-out appends them once and deletes its row', async () => {
    const { sender, members, gid } = await group(3, 'fan');
    const groupNode = await node('group-owner');
    const memberNode = await node('member-owner');
    try {
      const [sent] = await groupNode.messages.append([
        groupMessage(sender, gid, members, 'hello all', 'g-1'),
      ]);
      expect(sent).toMatchObject({ duplicate: false, deliveries: [] });
      const tasks = members.map((m) => ({ part: partitionOf(m), recipients: [m] }));
      tasks.sort((a, b) => a.part - b.part);
      expect(sent!.fanout).toEqual(tasks);
      // The group's partition, fenced as before; none of the members' partitions.
      expect([...groupNode.messages.fence!.epochs().keys()]).toEqual([partitionOf(gid)]);
      expect(await fanoutRows(sent!.mid)).toEqual(
        tasks.map((task) => ({
          part: task.part,
          sourcePart: partitionOf(gid),
          recipients: String(task.recipients[0]),
        })),
      );
      for (const m of members) expect(await t.store.messages.cursor(m)).toEqual({ lastSeq: 0, ackedSeq: 0 });
      // The retry of the message (same cmid) stores no more rows.
      const [again] = await groupNode.messages.append([
        groupMessage(sender, gid, members, 'hello all', 'g-1'),
      ]);
      expect(again).toEqual({ mid: sent!.mid, duplicate: true, deliveries: [] });
      expect(await fanoutRows(sent!.mid)).toHaveLength(3);

      // The pending rows carry what a fan-out needs; the sweep finds them.
      const pending = (await groupNode.messages.pendingFanouts(Date.now() + 1000, 100)).filter(
        (p) => p.mid === sent!.mid,
      );
      expect(pending.map((p) => p.part)).toEqual(tasks.map((task) => task.part));
      expect(pending[0]).toMatchObject({
        sender,
        target: gid,
        body: 'hello all',
        sourcePart: partitionOf(gid),
      });

      // The owner of the first member's partition fans out: a reading run (nothing known yet).
      const fan = (task: (typeof tasks)[number]): NewMessage => ({
        ...groupMessage(sender, gid, task.recipients, 'hello all', null),
        fanout: { mid: sent!.mid, part: task.part },
      });
      const [first] = await memberNode.messages.append([fan(tasks[0]!)]);
      expect(first).toEqual({
        mid: sent!.mid,
        duplicate: false,
        deliveries: [{ userId: tasks[0]!.recipients[0], seq: 1 }],
      });
      expect((await fanoutRows(sent!.mid)).map((r) => r.part)).toEqual([tasks[1]!.part, tasks[2]!.part]);
      // Again (a re-drive): predicted now, it finds its row gone and appends nothing.
      const before = { ...memberNode.messages.stats };
      const [repeat] = await memberNode.messages.append([fan(tasks[0]!)]);
      expect(repeat).toEqual({ mid: sent!.mid, duplicate: true, deliveries: [] });
      expect(memberNode.messages.stats.predictedRuns).toBe(before.predictedRuns + 1);
      expect(memberNode.messages.stats.missed).toBe(before.missed);
      // From a fresh node, reading: nothing either.
      const other = await node('member-owner-2');
      try {
        const [fresh] = await other.messages.append([fan(tasks[0]!)]);
        expect(fresh).toEqual({ mid: sent!.mid, duplicate: true, deliveries: [] });
      } finally {
        await other.close();
      }
      // The same fan-out twice in one batch, with another: each appended once.
      const both = await memberNode.messages.append([fan(tasks[1]!), fan(tasks[1]!), fan(tasks[2]!)]);
      expect(both.map((r) => r.duplicate)).toEqual([false, true, false]);
      expect(await fanoutRows(sent!.mid)).toEqual([]);
      for (const m of members) {
        const inbox = await t.store.messages.readInbox(m, 0, 10);
        expect(inbox).toMatchObject([
          { seq: 1, mid: sent!.mid, sender, kind: 'group', target: gid, body: 'hello all' },
        ]);
      }
    } finally {
      await groupNode.close();
      await memberNode.close();
    }
  });

  it('fan-outs and one-to-one messages of one inbox share the owner predictions: seqs continue, no miss', async () => {
    const { sender, members, gid } = await group(1, 'mixed');
    const member = members[0]!;
    const owner = await node('mixed-owner');
    const groupNode = await node('mixed-group');
    try {
      await owner.messages.append([oneToOne(sender, member, 'one 1')]);
      const [g] = await groupNode.messages.append([groupMessage(sender, gid, members, 'group 1', null)]);
      const fan: NewMessage = {
        ...groupMessage(sender, gid, members, 'group 1', null),
        fanout: { mid: g!.mid, part: partitionOf(member) },
      };
      const [f] = await owner.messages.append([oneToOne(sender, member, 'one 2'), fan]);
      expect(f!.deliveries).toEqual([{ userId: member, seq: 2 }]);
      const [last] = await owner.messages.append([oneToOne(sender, member, 'one 3')]);
      expect(last!.deliveries).toEqual([{ userId: member, seq: 4 }]);
      expect(owner.messages.stats.missed).toBe(0);
      expect((await t.store.messages.readInbox(member, 0, 10)).map((e) => e.body)).toEqual([
        'one 1',
        'one 2',
        'group 1',
        'one 3',
      ]);
    } finally {
      await owner.close();
      await groupNode.close();
    }
  });

  it('a fan-out by a node whose partition another took is refused: nothing appended, the row stays', async () => {
    const { sender, members, gid } = await group(1, 'fenced');
    const member = members[0]!;
    const part = partitionOf(member);
    const groupNode = await node('fenced-group');
    const stale = await node('fenced-stale');
    const taker = await node('fenced-taker');
    try {
      await stale.messages.append([oneToOne(sender, member, 'stale holds it')]);
      await taker.messages.append([oneToOne(sender, member, 'taken')]);
      const [g] = await groupNode.messages.append([groupMessage(sender, gid, members, 'fenced', 'fz-1')]);
      const fan: NewMessage = {
        ...groupMessage(sender, gid, members, 'fenced', null),
        fanout: { mid: g!.mid, part },
      };
      const refused = stale.messages.append([fan]);
      await expect(refused).rejects.toBeInstanceOf(PartitionMovedError);
      await expect(refused).rejects.toMatchObject({ parts: [part] });
      expect(await fanoutRows(g!.mid)).toHaveLength(1);
      expect((await t.store.messages.readInbox(member, 0, 10)).map((e) => e.body)).toEqual([
        'stale holds it',
        'taken',
      ]);
      // The owner appends it.
      const [done] = await taker.messages.append([fan]);
      expect(done!.deliveries).toEqual([{ userId: member, seq: 3 }]);
      expect(await fanoutRows(g!.mid)).toEqual([]);
    } finally {
      await groupNode.close();
      await stale.close();
      await taker.close();
    }
  });

  it("members in partitions routed to the group's owner are appended in the message's own transaction, under their fence", async () => {
    const { sender, members, gid } = await group(2, 'local');
    const [near, far] = [members[0]!, members[1]!];
    const owner = await node('local-owner');
    const taker = await node('local-taker');
    try {
      // Routed near's partition (and the group's), not far's: near's partition is taken by the
      // append itself, as a one-to-one submit sent here would take it.
      owner.messages.routeLocally((part) => part !== partitionOf(far));
      const [mixed] = await owner.messages.append([groupMessage(sender, gid, members, 'mixed', 'loc-1')]);
      expect(mixed!.deliveries).toEqual([{ userId: near, seq: 1 }]);
      expect(mixed!.fanout).toEqual([{ part: partitionOf(far), recipients: [far] }]);
      expect((await fanoutRows(mixed!.mid)).map((r) => r.part)).toEqual([partitionOf(far)]);
      expect((await t.store.messages.partitionOwners()).get(partitionOf(near))?.owner).toBe('local-owner');
      // Held but no longer routed here (a gateway would send it elsewhere): fanned out.
      owner.messages.routeLocally((part) => part !== partitionOf(near) && part !== partitionOf(far));
      const [notRouted] = await owner.messages.append([
        groupMessage(sender, gid, members, 'not routed', null),
      ]);
      expect(notRouted!.deliveries).toEqual([]);
      expect((await fanoutRows(notRouted!.mid)).map((r) => r.part).sort()).toEqual(
        [partitionOf(near), partitionOf(far)].sort(),
      );
      // Another node takes near's partition while the owner still appends near itself: its
      // group message is refused whole and stores nothing.
      owner.messages.routeLocally((part) => part !== partitionOf(far));
      await taker.messages.append([oneToOne(sender, near, 'taken')]);
      await expect(
        owner.messages.append([groupMessage(sender, gid, members, 'refused', 'loc-2')]),
      ).rejects.toBeInstanceOf(PartitionMovedError);
      expect((await t.store.messages.readInbox(near, 0, 10)).map((e) => e.body)).toEqual(['mixed', 'taken']);
      // Its resend once the routing moved near's partition too: near's entry is fanned out.
      owner.messages.routeLocally((part) => part !== partitionOf(near) && part !== partitionOf(far));
      const [resent] = await owner.messages.append([groupMessage(sender, gid, members, 'refused', 'loc-2')]);
      expect(resent).toMatchObject({ duplicate: false, deliveries: [] });
      expect((await fanoutRows(resent!.mid)).map((r) => r.part).sort()).toEqual(
        [partitionOf(near), partitionOf(far)].sort(),
      );
    } finally {
      await owner.close();
      await taker.close();
    }
  });

  it('chat-server (no partition owner) keeps appending group messages to every inbox at once', async () => {
    const { sender, members, gid } = await group(2, 'single');
    const [sent] = await t.store.messages.append([groupMessage(sender, gid, members, 'direct', null)]);
    expect(sent!.fanout).toBeUndefined();
    expect(sent!.deliveries).toEqual(members.map((m) => ({ userId: m, seq: 1 })));
    expect(await fanoutRows(sent!.mid)).toEqual([]);
  });
});
