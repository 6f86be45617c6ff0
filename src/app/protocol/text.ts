import { Buffer } from 'node:buffer';

/**
 * True when `s` has at most `max` Unicode code points. Most strings are decided by their
 * UTF-16 length alone; only the ambiguous band is walked, with no allocation.
 */
export function codePointsAtMost(s: string, max: number): boolean {
  const len = s.length;
  if (len <= max) return true;
  if (len > 2 * max) return false;
  let count = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    if (++count > max) return false;
  }
  return true;
}

/** True when `s` encodes to at most `max` UTF-8 bytes (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8BytesAtMost(s: string, max: number): boolean {
  const len = s.length;
  if (len > max) return false; // every UTF-16 unit is at least one byte
  if (len * 3 <= max) return true; // every UTF-16 unit is at most three bytes
  return Buffer.byteLength(s, 'utf8') <= max;
}
