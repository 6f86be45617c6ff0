/**
 * The group fan-out's bookkeeping (src/app/model/groupFanout.ts) on its own: which members a
 * group message keeps and which it leaves to their partitions' owners, grouped how; the rows it
 * writes, in one or several INSERTs, into a real SQLite store; and how a row's members are read
 * back. test/store/groupFanout.test.ts runs the whole path on both stores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertFanouts, parseRecipients, splitGroups } from '../../src/app/model/groupFanout.js';
import type { AppendResult, NewMessage } from '../../src/app/model/types.js';
import { migrate } from '../../src/app/store/migrations.js';
import { SqliteDriver } from '../../src/app/store/SqliteDriver.js';

const base = { sender: 1, cmid: null, body: 'b', time: '2026-12-03 15:00:00' } as const;
const one = (target: number): NewMessage => ({ ...base, kind: 'one', target, recipients: [target] });
const group = (target: number, recipients: number[]): NewMessage => ({
  ...base,
  kind: 'group',
  target,
  recipients,
});
const none = () => false;

describe('splitGroups', () => {
  it('leaves a batch without group messages alone (fan-out entries are not group submits)', () => {
    const fanout: NewMessage = { ...group(3, [70]), fanout: { mid: 9, part: 6 } };
    expect(splitGroups([one(2), fanout], none)).toBeNull();
  });

  it('keeps the members of partitions the writer appends itself, groups the others by partition, ascending, each once', () => {
    // Partitions: 69 → 5, 2 → 2, 66 → 2, 7 → 7 (kept), 2 twice.
    const batch = [one(4), group(3, [69, 2, 66, 7, 2])];
    const asked: number[] = [];
    const split = splitGroups(batch, (part) => {
      asked.push(part);
      return part === 7;
    })!;
    // Once per partition, not per member (the answer is a rendezvous pick over the providers).
    expect(asked.sort((a, b) => a - b)).toEqual([2, 5, 7]);
    expect(split.rows[0]).toBe(batch[0]);
    expect(split.rows[1]).toEqual({ ...batch[1], recipients: [7] });
    expect(split.tasks).toEqual([
      null,
      [
        { part: 2, recipients: [2, 66] },
        { part: 5, recipients: [69] },
      ],
    ]);
  });
});

describe('parseRecipients', () => {
  it('reads the comma list a row stores, and an empty one', () => {
    expect(parseRecipients('')).toEqual([]);
    expect(parseRecipients('3,67,131')).toEqual([3, 67, 131]);
  });
});

describe('insertFanouts into a real store', () => {
  let dir: string;
  let driver: SqliteDriver;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fanout-split-'));
    driver = await SqliteDriver.open(join(dir, 'chat.db'));
    await migrate(driver);
  });
  afterAll(async () => {
    await driver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one row per fan-out of each new group message, past one INSERT; a repeat writes none', async () => {
    // 10 group messages of 64 members in 64 partitions: 640 rows, more than one INSERT takes.
    const members = Array.from({ length: 64 }, (_, i) => 1000 + i);
    const batch = [
      one(5),
      ...Array.from({ length: 10 }, (_, k) => group(200 + k, members)),
      group(300, [70]),
    ];
    const split = splitGroups(batch, none)!;
    const results: AppendResult[] = batch.map((_, i) => ({
      mid: 100 + i,
      duplicate: i === 11,
      deliveries: [],
    }));
    await driver.transaction((tx) => insertFanouts(tx, batch, split, results, 1234));
    const rows = await driver.query<{ mid: number; part: number; source_part: number; recipients: string }>(
      'SELECT mid, part, source_part, recipients, created_at FROM group_fanout ORDER BY mid, part',
    );
    expect(rows).toHaveLength(640);
    expect(rows[0]).toMatchObject({ mid: 101, part: 0, source_part: 200 % 64, recipients: '1024' });
    expect(rows.at(-1)).toMatchObject({ mid: 110, part: 63, recipients: '1023' });
    // The results say which fan-outs each message waits for; the one-to-one and the repeat none.
    expect(results[1]!.fanout).toHaveLength(64);
    expect(results[0]!.fanout).toBeUndefined();
    expect(results[11]!.fanout).toBeUndefined();
  });

  it("stores a partition's members as a comma list", async () => {
    const batch = [group(400, [3, 67, 131])];
    const split = splitGroups(batch, none)!;
    await driver.transaction((tx) =>
      insertFanouts(tx, batch, split, [{ mid: 500, duplicate: false, deliveries: [] }], 1),
    );
    const [row] = await driver.query<{ recipients: string }>(
      'SELECT recipients FROM group_fanout WHERE mid = 500',
    );
    expect(parseRecipients(row!.recipients)).toEqual([3, 67, 131]);
    expect(row!.recipients).toBe('3,67,131');
  });
});
