const pad = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** Local time as "YYYY-MM-DD HH:MM:SS", exactly like the classic client's getCurrentTime(). */
export function classicTime(date: Date = new Date()): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The delay before retry `attempt` (from 0): `firstMs`, doubled per attempt, at most `maxMs`. */
export function backoffMs(attempt: number, firstMs: number, maxMs: number): number {
  // The exponent is capped so that 2 ** attempt stays finite (0 * Infinity would be NaN).
  return Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 30));
}
