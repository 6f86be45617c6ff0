/** The per-turn clock of RpcChannel: one reading per turn of JavaScript work, fresh after it. */
import { describe, expect, it } from 'vitest';
import { turnNow } from '../../src/rpc/client/turnClock.js';

describe('turnNow', () => {
  it('gives every caller of one turn the same reading, including its promise jobs', async () => {
    const first = turnNow();
    const inJob = await Promise.resolve().then(() => turnNow());
    expect(turnNow()).toBe(first);
    expect(inJob).toBe(first);
  });

  it('reads the clock again once the turn is over', async () => {
    const before = turnNow();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const after = turnNow();
    expect(after).toBeGreaterThanOrEqual(before + 4);
    expect(Math.abs(after - performance.now())).toBeLessThan(50);
  });
});
