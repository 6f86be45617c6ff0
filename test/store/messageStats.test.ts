/** chat-service --stats-interval: the message appends of each interval, logged at info. */
import { expect, it } from 'vitest';
import { MessageStatsLog } from '../../src/app/distributed/messageStats.js';
import type { LogFields, Logger } from '../../src/app/server/logger.js';
import { createUsers, oneToOne, useTestStore } from './harness.js';

const t = useTestStore('sqlite');

it('logs what the appends of each interval did: messages, batches, predicted and reading runs', async () => {
  const [a, b] = await createUsers(t.store, 2, 'stats');
  const lines: LogFields[] = [];
  let wake: () => void = () => {};
  const logger: Logger = {
    level: 'info',
    enabled: () => true,
    log: (level, message, fields) => {
      expect([level, message]).toEqual(['info', 'message appends']);
      lines.push(fields ?? {});
      wake();
    },
  };
  const stats = new MessageStatsLog(t.store.messages, logger, 100);
  try {
    // One reading append (nothing known yet), then one predicted: 3 messages in 2 appends.
    await t.store.messages.append([oneToOne(a!, b!, 'one'), oneToOne(a!, b!, 'two')]);
    await t.store.messages.append([oneToOne(a!, b!, 'three')]);
    stats.onBatch(2, 4);
    stats.onBatch(1, 2);
    while (!lines.some((l) => l.appends === 2)) await new Promise<void>((r) => (wake = r));
    expect(lines.find((l) => l.appends === 2)).toMatchObject({
      avgBatch: 1.5,
      avgCommitMs: 3,
      readingRuns: 1,
      predictedRuns: 1,
      missed: 0,
      fenced: 0,
      partitionsHeld: 0,
    });
    // The next interval counts only what happened in it.
    const seen = lines.length;
    while (lines.length === seen) await new Promise<void>((r) => (wake = r));
    expect(lines.at(-1)).toMatchObject({ appends: 0, messagesPerSec: 0 });
  } finally {
    stats.stop();
  }
});
