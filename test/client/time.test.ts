import { expect, test } from 'vitest';
import { backoffMs } from '../../src/app/client/time.js';

test('backoffMs: the first delay, doubled per attempt, capped', () => {
  expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, 100, 2000))).toEqual([
    100, 200, 400, 800, 1600, 2000, 2000,
  ]);
  // Far past any exponent a double can hold: still the cap, never NaN.
  expect(backoffMs(5000, 100, 2000)).toBe(2000);
  expect(backoffMs(5000, 0, 2000)).toBe(0);
});
