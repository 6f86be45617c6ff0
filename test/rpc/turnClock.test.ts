/** The per-turn clock of RpcChannel: one reading per turn of JavaScript work, fresh after it. */
import { describe, expect, it } from 'vitest';
import { turnNow } from '../../src/rpc/client/turnClock.js';

function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: the turn goes on
  }
}

describe('turnNow', () => {
  it('gives the callers of one turn the same reading, including its promise jobs', async () => {
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

  it('reads the clock again after 64 uses within one long turn', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1)); // start a fresh turn
    const first = turnNow();
    spin(3);
    const readings = Array.from({ length: 64 }, () => turnNow());
    expect(readings.slice(0, 63).every((r) => r === first)).toBe(true);
    expect(readings[63]).toBeGreaterThanOrEqual(first + 3);
  });
});
