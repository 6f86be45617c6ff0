/** errno values of every reply (docs/PROTOCOL.md §5). */
export const Errno = {
  OK: 0,
  BAD_CREDENTIALS: 1,
  ALREADY_ONLINE: 2,
  BAD_REQUEST: 3,
  NOT_LOGGED_IN: 4,
  FORBIDDEN: 5,
  NOT_FOUND: 6,
  CONFLICT: 7,
  RATE_LIMITED: 8,
  UNAVAILABLE: 9,
} as const;

export type Errno = (typeof Errno)[keyof typeof Errno];

/** Default `errmsg` per errno. 1 and 2 are the exact texts the classic client prints. */
export const ERRMSG: Readonly<Record<Errno, string>> = {
  0: 'ok',
  1: 'id or password is invalid!',
  2: 'this account is using, input another!',
  3: 'bad request',
  4: 'not logged in',
  5: 'forbidden',
  6: 'not found',
  7: 'conflict',
  8: 'rate limited',
  9: 'server unavailable, try again',
};

export function isErrno(v: unknown): v is Errno {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 9;
}

/** Default message for an errno; unknown values fall back to the internal-error text. */
export function errmsgFor(errno: number): string {
  return isErrno(errno) ? ERRMSG[errno] : ERRMSG[9];
}

/**
 * Length limits (docs/PROTOCOL.md §6). "Chars" are Unicode code points,
 * which is what a utf8mb4 VARCHAR(n) counts; `msg` is counted in UTF-8 bytes.
 * TIME_MAX_CHARS is this project's addition: `time` is stored, so it is bounded too
 * (the classic client sends 19 chars, "YYYY-MM-DD HH:MM:SS").
 */
export const Limits = {
  NAME_MAX_CHARS: 50,
  PASSWORD_MAX_CHARS: 50,
  GROUPNAME_MAX_CHARS: 50,
  GROUPDESC_MAX_CHARS: 200,
  MSG_MAX_BYTES: 4096,
  CMID_MAX_CHARS: 64,
  TIME_MAX_CHARS: 64,
  /** Default cap for one frame payload or one legacy message (without its `\0`). */
  MAX_MESSAGE_BYTES: 1024 * 1024,
} as const;
