/**
 * Copies `src[start, end)` to `dst` at `at`. Small copies use a loop: Buffer#copy and
 * TypedArray#set on a subarray both allocate a view first, which dominates for message-sized
 * copies on the per-call paths.
 */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  const n = end - start;
  if (n <= 32) {
    for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  } else {
    dst.set(src.subarray(start, end), at);
  }
}
