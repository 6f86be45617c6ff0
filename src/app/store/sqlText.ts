/** `?, ?, ?` for `n` values. */
export function placeholders(n: number): string {
  return new Array<string>(n).fill('?').join(', ');
}

const rowPlaceholderCache = new Map<string, string>();

/** `(?, ?), (?, ?)` for `rows` rows of `cols` values, for multi-row INSERT … VALUES. */
export function rowPlaceholders(rows: number, cols: number): string {
  const key = `${rows}x${cols}`;
  let text = rowPlaceholderCache.get(key);
  if (text === undefined) {
    text = new Array<string>(rows).fill(`(${placeholders(cols)})`).join(', ');
    // Statement shapes are few (chunked sizes); the bound only guards against unusual callers.
    if (rowPlaceholderCache.size < 4096) rowPlaceholderCache.set(key, text);
  }
  return text;
}

/** Padded sizes: powers of two up to 16, then multiples of 16. */
const PAD_STEP = 16;

/**
 * Splits the values of an IN list (or the rows of an idempotent upsert) into chunks of at most
 * `max` (a multiple of 16), padding the last one with copies of its last item up to a power of
 * two (≤ 16) or a multiple of 16: a repeated IN value or upserted row changes nothing. Each `max`
 * values take one statement, statements come in at most max/16 + 4 shapes, and padding adds at
 * most 15 values.
 */
export function paddedChunks<T>(items: readonly T[], max: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += max) {
    const chunk = items.slice(start, start + max);
    let size = 1;
    while (size < chunk.length && size < PAD_STEP) size <<= 1;
    if (size < chunk.length) size = Math.ceil(chunk.length / PAD_STEP) * PAD_STEP;
    const last = chunk[chunk.length - 1] as T;
    while (chunk.length < size) chunk.push(last);
    out.push(chunk);
  }
  return out;
}
