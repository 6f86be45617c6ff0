/**
 * Copies `src[start, end)` to `dst` at `at`. Buffer#copy and TypedArray#set on a subarray both
 * allocate a view first (~70 ns here whatever the size); a byte loop costs ~1.5 ns a byte, so it
 * wins below about 40 bytes (names, headers) and loses on message bodies.
 */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  const n = end - start;
  if (n <= 32) {
    for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  } else {
    dst.set(src.subarray(start, end), at);
  }
}
