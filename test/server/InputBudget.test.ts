import { describe, expect, test } from 'vitest';
import { InputBudget, type InputCutReason, type InputHolder } from '../../src/app/server/InputBudget.js';

class Holder implements InputHolder {
  heldBytes = 0;
  messageStartedAt = 0;
  cuts: InputCutReason[] = [];
  constructor(readonly name: string) {}
  cut(reason: InputCutReason): void {
    this.cuts.push(reason);
  }
}

describe('InputBudget', () => {
  test('over the budget, the holders with the most go first, until under three quarters of it', () => {
    const budget = new InputBudget({ maxTotalBytes: 1000, messageTimeoutMs: 0 });
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new Holder(n)) as [Holder, Holder, Holder, Holder];
    budget.update(a, 100, 1, false);
    budget.update(b, 400, 1, false);
    budget.update(c, 300, 1, false);
    expect(budget.totalBytes).toBe(800);
    expect([a, b, c].flatMap((h) => h.cuts)).toEqual([]);
    budget.update(d, 250, 1, false); // 1050 > 1000: b (400) goes → 650 ≤ 750
    expect(b.cuts).toEqual(['input budget']);
    expect([a, c, d].flatMap((h) => h.cuts)).toEqual([]);
    expect(budget.totalBytes).toBe(650);
    expect(budget.holderCount).toBe(3);
  });

  test('a message gets its deadline from its first byte; finishing one starts the next one now', () => {
    const budget = new InputBudget({ maxTotalBytes: 1 << 20, messageTimeoutMs: 100 });
    const h = new Holder('h');
    budget.update(h, 10, 1000, false);
    budget.update(h, 20, 1050, false); // same message, more bytes: the deadline does not move
    expect(h.messageStartedAt).toBe(1000);
    budget.expire(1099);
    expect(h.cuts).toEqual([]);
    budget.update(h, 5, 1090, true); // one finished in this read; what is left started now
    expect(h.messageStartedAt).toBe(1090);
    budget.expire(1150);
    expect(h.cuts).toEqual([]);
    budget.expire(1190);
    expect(h.cuts).toEqual(['message deadline']);
    expect(budget.totalBytes).toBe(0);
  });

  test('a paused holder has no deadline until it resumes; releasing forgets it', () => {
    const budget = new InputBudget({ maxTotalBytes: 1 << 20, messageTimeoutMs: 100 });
    const h = new Holder('h');
    budget.update(h, 10, 1000, false);
    budget.pause(h);
    budget.expire(10_000);
    expect(h.cuts).toEqual([]);
    budget.resume(h, 10_000);
    budget.expire(10_050);
    expect(h.cuts).toEqual([]);
    budget.expire(10_100);
    expect(h.cuts).toEqual(['message deadline']);
    const g = new Holder('g');
    budget.update(g, 10, 0, false);
    budget.update(g, 0, 1, true);
    expect(budget.totalBytes).toBe(0);
    budget.expire(1_000_000);
    expect(g.cuts).toEqual([]);
  });
});
