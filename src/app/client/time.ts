const pad = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** Local time as "YYYY-MM-DD HH:MM:SS", exactly like the classic client's getCurrentTime(). */
export function classicTime(date: Date = new Date()): string {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}
