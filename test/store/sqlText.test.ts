import { describe, expect, it } from 'vitest';
import { paddedChunks, rowPlaceholders } from '../../src/app/store/sqlText.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('sqlText', () => {
  it('pads IN lists with their last value to few sizes, at most 15 values more', () => {
    expect(paddedChunks([7, 8, 9], 512)).toEqual([[7, 8, 9, 9]]);
    expect(paddedChunks(range(100), 512)[0]).toEqual([...range(100), ...new Array<number>(12).fill(99)]);
    const sizes = new Set<number>();
    for (let n = 1; n <= 1100; n++) {
      const parts = paddedChunks(range(n), 512);
      expect([...new Set(parts.flat())]).toEqual(range(n));
      expect(parts.reduce((k, p) => k + p.length, 0) - n).toBeLessThan(16);
      for (const p of parts) sizes.add(p.length);
    }
    expect(sizes.size).toBeLessThanOrEqual(512 / 16 + 4);
  });

  it('writes multi-row placeholders', () => {
    expect(rowPlaceholders(2, 3)).toBe('(?, ?, ?), (?, ?, ?)');
    expect(rowPlaceholders(2, 3)).toBe('(?, ?, ?), (?, ?, ?)'); // cached
    expect(rowPlaceholders(1, 1)).toBe('(?)');
  });
});
