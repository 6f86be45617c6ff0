/** `?, ?, ?` for `n` values. */
export function placeholders(n: number): string {
  return new Array<string>(n).fill('?').join(', ');
}

/** `(?, ?), (?, ?)` for `rows` rows of `cols` values, for multi-row INSERT … VALUES. */
export function rowPlaceholders(rows: number, cols: number): string {
  const row = `(${placeholders(cols)})`;
  return new Array<string>(rows).fill(row).join(', ');
}

/**
 * Splits `items` into chunks whose sizes are powers of two (at most `max`, itself a power of two),
 * in order. Statements built per chunk then come in only log2(max)+1 shapes, so the prepared
 * statement caches of both drivers stay small however the batch sizes vary.
 */
export function pow2Chunks<T>(items: readonly T[], max = 256): T[][] {
  const chunks: T[][] = [];
  let start = 0;
  while (start < items.length) {
    let size = max;
    while (size > items.length - start) size >>= 1;
    chunks.push(items.slice(start, start + size));
    start += size;
  }
  return chunks;
}
