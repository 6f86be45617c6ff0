/** Percentile of an unsorted sample (nearest rank); NaN for an empty sample. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/**
 * Latencies in log-spaced buckets (each 1% wider than the last, from 0.001 up to 1e7 units): a
 * few KiB however many samples, so recording allocates nothing. A big array of samples (8 MiB)
 * slowed the measuring process's own garbage collection measurably, i.e. the thing measured.
 * `percentile` returns the upper bound of the bucket holding the nearest-rank sample: at most
 * 1% above the exact value.
 */
export class LatencyHistogram {
  private static readonly MIN = 0.001;
  private static readonly GROWTH = Math.log(1.01);
  private readonly counts = new Float64Array(
    Math.ceil(Math.log(1e7 / LatencyHistogram.MIN) / LatencyHistogram.GROWTH) + 2,
  );
  private total = 0;

  get count(): number {
    return this.total;
  }

  record(value: number): void {
    const i =
      value <= LatencyHistogram.MIN
        ? 0
        : Math.min(
            this.counts.length - 1,
            Math.ceil(Math.log(value / LatencyHistogram.MIN) / LatencyHistogram.GROWTH),
          );
    this.counts[i]!++;
    this.total++;
  }

  /** Nearest-rank percentile (bucket upper bound); NaN when empty. */
  percentile(p: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.min(this.total, Math.max(1, Math.ceil((p / 100) * this.total)));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return LatencyHistogram.MIN * Math.exp(i * LatencyHistogram.GROWTH);
    }
    return Number.NaN;
  }
}
