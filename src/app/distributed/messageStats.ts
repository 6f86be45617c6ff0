/**
 * chat-service --stats-interval: what a message node's appends did over each interval, logged
 * at info. Shows whether appends write without reading (the node's predictions hold), how big
 * its group commits are and how long they take, and whether partitions moved (fenced appends).
 */
import type { AppendStats, MessageModel } from '../model/MessageModel.js';
import type { Logger } from '../server/logger.js';
import type { FanoutStats } from './FanoutDriver.js';

export class MessageStatsLog {
  private last: AppendStats;
  private lastFanout: FanoutStats | null = null;
  private fanout: { readonly stats: FanoutStats } | null = null;
  private commitMs = 0;
  private commits = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly model: MessageModel,
    private readonly logger: Logger,
    intervalMs: number,
  ) {
    this.last = { ...model.stats };
    this.timer = setInterval(() => this.report(intervalMs), intervalMs);
    this.timer.unref();
  }

  /** GroupCommitter's onBatch: one committed transaction of `size` messages. */
  readonly onBatch = (_size: number, durationMs: number): void => {
    this.commits++;
    this.commitMs += durationMs;
  };

  /** Adds the node's group fan-outs (FanoutDriver) to the report. */
  watchFanout(driver: { readonly stats: FanoutStats }): void {
    this.fanout = driver;
    this.lastFanout = { ...driver.stats };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private report(intervalMs: number): void {
    const now = { ...this.model.stats };
    const before = this.last;
    const d = (k: keyof AppendStats): number => now[k] - before[k];
    this.last = now;
    const appends = d('appends');
    this.logger.log('info', 'message appends', {
      messagesPerSec: Math.round((d('messages') * 1000) / intervalMs),
      appends,
      avgBatch: appends === 0 ? 0 : Number((d('messages') / appends).toFixed(1)),
      avgCommitMs: this.commits === 0 ? 0 : Number((this.commitMs / this.commits).toFixed(2)),
      predictedRuns: d('predictedRuns'),
      readingRuns: d('readingRuns'),
      missed: d('missed'),
      fenced: d('fenced'),
      partitionsHeld: this.model.fence?.epochs().size ?? 0,
      ...this.fanoutReport(),
    });
    this.commits = 0;
    this.commitMs = 0;
  }

  /** Fan-out calls sent (first or again by the sweep) and failed over the interval. */
  private fanoutReport(): Record<string, number> {
    if (this.fanout === null || this.lastFanout === null) return {};
    const now = { ...this.fanout.stats };
    const before = this.lastFanout;
    this.lastFanout = now;
    return {
      fanoutsSent: now.driven - before.driven,
      fanoutsLocal: now.local - before.local,
      fanoutsResent: now.redriven - before.redriven,
      fanoutsFailed: now.failed - before.failed,
    };
  }
}
