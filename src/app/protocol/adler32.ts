const MOD = 65521;
// Largest n such that 255·n·(n+1)/2 + (n+1)·(MOD−1) fits in 2^32 − 1 (zlib's NMAX): the sums can
// run unreduced for that many bytes, so the slow `%` happens once per 5552 bytes, not per byte.
const NMAX = 5552;

/**
 * Adler-32 (zlib's, starting from 1) of `data[start, end)`. Pass a previous result as `seed`
 * to continue over a further range. Returns an unsigned 32-bit value.
 */
export function adler32(data: Uint8Array, start = 0, end = data.length, seed = 1): number {
  let a = seed & 0xffff;
  let b = (seed >>> 16) & 0xffff;
  let i = start;
  while (i < end) {
    const stop = Math.min(i + NMAX, end);
    // Unrolled by 8 (about 25% faster on V8); the tail loop finishes the block.
    for (const stop8 = stop - 8; i <= stop8; i += 8) {
      a += data[i]!;
      b += a;
      a += data[i + 1]!;
      b += a;
      a += data[i + 2]!;
      b += a;
      a += data[i + 3]!;
      b += a;
      a += data[i + 4]!;
      b += a;
      a += data[i + 5]!;
      b += a;
      a += data[i + 6]!;
      b += a;
      a += data[i + 7]!;
      b += a;
    }
    for (; i < stop; i++) {
      a += data[i]!;
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}
