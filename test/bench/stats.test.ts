import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram, percentile } from '../../bench/lib/stats.js';

describe('LatencyHistogram', () => {
  it('gives every percentile at most 1% above the exact nearest-rank value, never below', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.002, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 500 }),
        fc.integer({ min: 1, max: 100 }),
        (samples, p) => {
          const h = new LatencyHistogram();
          for (const s of samples) h.record(s);
          const exact = percentile(samples, p);
          const got = h.percentile(p);
          expect(got).toBeGreaterThanOrEqual(exact * (1 - 1e-9));
          expect(got).toBeLessThanOrEqual(exact * 1.01 * (1 + 1e-9));
          expect(h.count).toBe(samples.length);
        },
      ),
    );
  });

  it('is NaN when empty and clamps values beyond its range', () => {
    const h = new LatencyHistogram();
    expect(h.percentile(50)).toBeNaN();
    h.record(0);
    h.record(1e9);
    expect(h.percentile(1)).toBeLessThanOrEqual(0.001);
    expect(h.percentile(100)).toBeGreaterThan(1e6);
  });
});
