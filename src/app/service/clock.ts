/** Server time as the protocol writes it: "YYYY-MM-DD HH:MM:SS" in the server's local zone. */
export function formatChatTime(date: Date = new Date()): string {
  const pad = (n: number): string => (n < 10 ? `0${n}` : String(n));
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}
