/**
 * Message nodes sharing one store (chat-service --services message, N of them): mids from
 * per-writer blocks, and inbox partitions fenced by epoch so that a node that lost a partition
 * cannot write it any more (docs/DISTRIBUTED.md, "Scaling the message service").
 */
import { describe, expect, it } from 'vitest';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { PartitionFence, PartitionMovedError } from '../../src/app/model/PartitionFence.js';
import { PARTITION_COUNT, partitionOf } from '../../src/app/store/partitions.js';
import {
  createUsers,
  oneToOne,
  openTestDriver,
  openTestStore,
  STORE_KINDS,
  useTestStore,
} from './harness.js';

describe.each(STORE_KINDS)('message nodes sharing the store on %s', (kind) => {
  const t = useTestStore(kind);

  const node = (name: string, midBlock = 8): Promise<ChatStore> =>
    openTestStore(t.url, { messages: { midBlock, partitionOwner: name } });

  it('two writers with mid blocks, concurrent: unique mids, gap-free seqs, a retry found through the other', async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'blocks');
    const one = await openTestStore(t.url, { messages: { midBlock: 5 } });
    const two = await openTestStore(t.url, { messages: { midBlock: 5 } });
    try {
      const sent = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? one : two).messages.append([
            {
              ...oneToOne(a!, i % 3 === 0 ? c! : b!, `m${i}`, `blk-${i}`),
              recipients: [i % 3 === 0 ? c! : b!],
            },
          ]),
        ),
      );
      const results = sent.map((r) => r[0]!);
      expect(results.every((r) => !r.duplicate)).toBe(true);
      expect(new Set(results.map((r) => r.mid)).size).toBe(40);
      for (const user of [b!, c!]) {
        const inbox = await t.store.messages.readInbox(user, 0, 100);
        expect(inbox.map((e) => e.seq)).toEqual(inbox.map((_, i) => i + 1));
      }
      // One after another, each writer's mids grow; across writers they need not.
      const next: number[] = [];
      for (let i = 0; i < 6; i++)
        next.push((await one.messages.append([oneToOne(a!, b!, `seq ${i}`)]))[0]!.mid);
      expect(next).toEqual([...next].sort((x, y) => x - y));
      expect(new Set([...next, ...results.map((r) => r.mid)]).size).toBe(46);
      // A retry through the other writer is found, not stored again.
      const [again] = await two.messages.append([oneToOne(a!, c!, 'm0', 'blk-0')]);
      expect(again).toMatchObject({ mid: results[0]!.mid, duplicate: true });
    } finally {
      await one.close();
      await two.close();
    }
  });

  it("a stale owner's append is refused once another node took the partition, and stores nothing", async () => {
    const [a, b, c] = await createUsers(t.store, 3, 'fence');
    // c in another partition than b: the stale owner keeps writing the partitions it still holds.
    expect(partitionOf(c!)).not.toBe(partitionOf(b!));
    const nodeA = await node('node-a');
    const nodeB = await node('node-b');
    try {
      const part = partitionOf(b!);
      await nodeA.messages.append([oneToOne(a!, b!, 'from A', 'f-1')]);
      expect(nodeA.messages.fence!.epochs().has(part)).toBe(true);
      // B takes the partition by writing it.
      const [fromB] = await nodeB.messages.append([oneToOne(a!, b!, 'from B', 'f-2')]);
      expect(fromB!.deliveries).toEqual([{ userId: b, seq: 2 }]);
      const owner = async () => (await t.store.messages.readInbox(b!, 0, 10)).map((e) => e.body);
      // A still believes it owns it: refused, with the partition named, nothing stored.
      const refused = nodeA.messages.append([
        oneToOne(a!, b!, 'stale A', 'f-3'),
        oneToOne(a!, c!, 'to c', 'f-4'),
      ]);
      await expect(refused).rejects.toBeInstanceOf(PartitionMovedError);
      await expect(refused).rejects.toMatchObject({ code: 'UNAVAILABLE', parts: [part] });
      expect(await owner()).toEqual(['from A', 'from B']);
      expect(await t.store.messages.cursor(b!)).toEqual({ lastSeq: 2, ackedSeq: 0 });
      expect(await t.store.messages.readInbox(c!, 0, 10)).toEqual([]);
      // A lost only that partition: c's is still its own.
      const [toC] = await nodeA.messages.append([oneToOne(a!, c!, 'to c', 'f-4')]);
      expect(toC!.deliveries).toEqual([{ userId: c, seq: 1 }]);
      // Sent to A again (a gateway routes it back), A takes it back and B is the stale one now.
      const [back] = await nodeA.messages.append([oneToOne(a!, b!, 'A again', 'f-5')]);
      expect(back!.deliveries).toEqual([{ userId: b, seq: 3 }]);
      await expect(nodeB.messages.append([oneToOne(a!, b!, 'stale B', 'f-6')])).rejects.toBeInstanceOf(
        PartitionMovedError,
      );
      expect(await owner()).toEqual(['from A', 'from B', 'A again']);
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });

  it('a retried message refused by a stale owner is stored once by the new owner, which answers the first mid', async () => {
    const [a, b] = await createUsers(t.store, 2, 'retry');
    const nodeA = await node('node-a');
    const nodeB = await node('node-b');
    try {
      const [first] = await nodeA.messages.append([oneToOne(a!, b!, 'once', 'r-1')]);
      await nodeB.messages.append([oneToOne(a!, b!, 'taken', 'r-2')]);
      await expect(nodeA.messages.append([oneToOne(a!, b!, 'once', 'r-1')])).rejects.toBeInstanceOf(
        PartitionMovedError,
      );
      const [retried] = await nodeB.messages.append([oneToOne(a!, b!, 'once', 'r-1')]);
      expect(retried).toEqual({ mid: first!.mid, duplicate: true, deliveries: [] });
      expect((await t.store.messages.readInbox(b!, 0, 10)).map((e) => e.body)).toEqual(['once', 'taken']);
    } finally {
      await nodeA.close();
      await nodeB.close();
    }
  });

  it('a writer with mid blocks takes a whole block at once and the next one only when it is used up', async () => {
    const [a, b] = await createUsers(t.store, 2, 'block');
    const driver = await openTestDriver(t.url);
    const counter = async (): Promise<number> => {
      const [row] = await driver.query<{ lastId: number }>(
        "SELECT last_id AS lastId FROM id_counters WHERE name = 'messages.mid'",
      );
      return Number(row?.lastId);
    };
    const writer = await openTestStore(t.url, { messages: { midBlock: 8 } });
    try {
      const before = await counter();
      const mids: number[] = [];
      for (let i = 0; i < 8; i++)
        mids.push((await writer.messages.append([oneToOne(a!, b!, `b${i}`)]))[0]!.mid);
      // One block of 8 served all eight appends, and the counter moved once, by the block.
      expect(mids).toEqual(Array.from({ length: 8 }, (_, i) => before + 1 + i));
      expect(await counter()).toBe(before + 8);
      // The ninth takes the next block.
      const [ninth] = await writer.messages.append([oneToOne(a!, b!, 'b8')]);
      expect(ninth!.mid).toBe(before + 9);
      expect(await counter()).toBe(before + 16);
      // A batch larger than the block takes what it needs at once.
      const big = await writer.messages.append(
        Array.from({ length: 20 }, (_, i) => oneToOne(a!, b!, `big${i}`)),
      );
      expect(new Set(big.map((r) => r.mid)).size).toBe(20);
      expect(Math.min(...big.map((r) => r.mid))).toBeGreaterThan(before + 9);
    } finally {
      await writer.close();
      await driver.close();
    }
  });

  it('a partition whose row is missing fails the take with INTERNAL, naming the table', async () => {
    const [a, b] = await createUsers(t.store, 2, 'norow');
    const driver = await openTestDriver(t.url);
    const nodeE = await node('node-e');
    const part = partitionOf(b!);
    try {
      await driver.execute('DELETE FROM message_partitions WHERE part = ?', [part]);
      await expect(nodeE.messages.append([oneToOne(a!, b!, 'lost')])).rejects.toMatchObject({
        code: 'INTERNAL',
        message: expect.stringContaining('message_partitions is missing rows'),
      });
      expect(await t.store.messages.readInbox(b!, 0, 10)).toEqual([]);
    } finally {
      await driver.execute('INSERT INTO message_partitions (part, owner, epoch) VALUES (?, ?, 0)', [
        part,
        '',
      ]);
      await nodeE.close();
      await driver.close();
    }
  });

  it('a partition row gone after the take fails the append at its guard with INTERNAL, storing nothing', async () => {
    const [a, b] = await createUsers(t.store, 2, 'gone-row');
    const driver = await openTestDriver(t.url);
    const nodeH = await node('node-h');
    const part = partitionOf(b!);
    try {
      await nodeH.messages.append([oneToOne(a!, b!, 'taken')]);
      await driver.execute('DELETE FROM message_partitions WHERE part = ?', [part]);
      await expect(nodeH.messages.append([oneToOne(a!, b!, 'unguarded')])).rejects.toMatchObject({
        code: 'INTERNAL',
        message: expect.stringContaining('message_partitions is missing rows'),
      });
      expect((await t.store.messages.readInbox(b!, 0, 10)).map((e) => e.body)).toEqual(['taken']);
    } finally {
      await driver.execute('INSERT INTO message_partitions (part, owner, epoch) VALUES (?, ?, 0)', [
        part,
        '',
      ]);
      await nodeH.close();
      await driver.close();
    }
  });

  it('partitionOwners names the last taker and its epoch; the refusal names the partition', async () => {
    const [a, b] = await createUsers(t.store, 2, 'owners');
    const part = partitionOf(b!);
    const nodeF = await node('node-f');
    const nodeG = await node('node-g');
    try {
      await nodeF.messages.append([oneToOne(a!, b!, 'f')]);
      const first = (await t.store.messages.partitionOwners()).get(part);
      expect(first).toEqual({ owner: 'node-f', epoch: nodeF.messages.fence!.epochs().get(part) });
      await nodeG.messages.append([oneToOne(a!, b!, 'g')]);
      const owners = await t.store.messages.partitionOwners();
      expect(owners.size).toBe(PARTITION_COUNT);
      expect(owners.get(part)).toEqual({ owner: 'node-g', epoch: first!.epoch + 1 });
      await expect(nodeF.messages.append([oneToOne(a!, b!, 'stale')])).rejects.toMatchObject({
        message: `inbox partition ${part} moved to another message node, retry`,
      });
    } finally {
      await nodeF.close();
      await nodeG.close();
    }
  });

  it('a take that fails (store gone) fails the append with UNAVAILABLE, and nothing is left unhandled', async () => {
    const [a, b] = await createUsers(t.store, 2, 'gone');
    const nodeD = await node('node-d');
    await nodeD.close();
    await expect(nodeD.messages.append([oneToOne(a!, b!, 'never')])).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(nodeD.messages.fence!.epochs().size).toBe(0);
  });

  it(`every one of the ${PARTITION_COUNT} partitions exists, and a take records its owner`, async () => {
    const [a, b] = await createUsers(t.store, 2, 'rows');
    const nodeC = await node('node-c');
    try {
      await nodeC.messages.append([oneToOne(a!, b!, 'hi')]);
      const epoch = nodeC.messages.fence!.epochs().get(partitionOf(b!));
      expect(epoch).toBeGreaterThan(0);
      expect(nodeC.messages.fence!.epochs().size).toBe(1);
    } finally {
      await nodeC.close();
    }
  });
});

describe('a take waits for the appends in flight of the old owner (MySQL)', () => {
  const t = useTestStore('mysql');

  it("holds the partition's row shared until the old owner's transaction ends, so the take cannot slip in before its commit", async () => {
    const [driverA, driverB, probe] = await Promise.all([
      openTestDriver(t.url),
      openTestDriver(t.url),
      openTestDriver(t.url),
    ]);
    try {
      const part = 7;
      const fenceA = new PartitionFence(driverA, 'node-a');
      const fenceB = new PartitionFence(driverB, 'node-b');
      await fenceA.hold([part]);
      let release: () => void = () => {};
      const released = new Promise<void>((r) => (release = r));
      let guarded: () => void = () => {};
      const guardPassed = new Promise<void>((r) => (guarded = r));
      const events: string[] = [];
      // A's append: the guard passes, then the transaction stays open until released.
      const appendA = driverA.transaction(async (tx) => {
        await fenceA.guard(tx, [part]);
        guarded();
        await released;
        events.push('A committed');
      });
      await guardPassed;
      const takeB = fenceB.hold([part]).then(() => events.push('B took'));
      // B's take waits for A's shared lock: seen by the server as a lock wait, or (MariaDB does not
      // always list the waiting transaction in INNODB_TRX) as B's UPDATE still running after 1 s.
      for (;;) {
        const [row] = await probe.query<{ n: number }>(
          'SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ' +
            "ON p.ID = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()",
        );
        if (Number(row?.n) > 0) break;
        const [running] = await probe.query<{ n: number }>(
          'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST ' +
            "WHERE DB = DATABASE() AND INFO LIKE 'UPDATE message_partitions%' AND TIME >= 1",
        );
        if (Number(running?.n) > 0) break;
        if (events.includes('B took')) break; // the take did not wait: fails below
        await new Promise((r) => setImmediate(r));
      }
      release();
      await Promise.all([appendA, takeB]);
      expect(events).toEqual(['A committed', 'B took']);
      // From now on A is fenced.
      await expect(driverA.transaction((tx) => fenceA.guard(tx, [part]))).rejects.toBeInstanceOf(
        PartitionMovedError,
      );
    } finally {
      await Promise.all([driverA.close(), driverB.close(), probe.close()]);
    }
  });
});
