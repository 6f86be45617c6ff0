/**
 * Why a client operation failed at the transport level. A reply with errno ≠ 0 is NOT an error:
 * it resolves normally so callers can assert on the errno.
 *
 * - `CONNECT`: the connection could not be established (refused, unreachable, name not found).
 * - `CLOSED`: the connection went down (or was never up) before the reply arrived.
 * - `TIMEOUT`: the connect timeout, request timeout or a `waitFor…` timeout expired.
 * - `PROTOCOL`: the server sent something this client cannot decode or that breaks docs/PROTOCOL.md.
 */
export type ChatClientErrorCode = 'CONNECT' | 'CLOSED' | 'TIMEOUT' | 'PROTOCOL';

export class ChatClientError extends Error {
  override readonly name = 'ChatClientError';

  constructor(
    readonly code: ChatClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

export function isChatClientError(e: unknown): e is ChatClientError {
  return e instanceof ChatClientError;
}

const SYSCALL_WORDS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (try again)',
  EADDRNOTAVAIL: 'address not available',
  EPIPE: 'broken pipe',
  EACCES: 'permission denied',
};

/** A socket error in words ("connection refused"), for messages meant for people. */
export function describeSocketError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined && SYSCALL_WORDS[code] !== undefined) return SYSCALL_WORDS[code]!;
    if (error.message.startsWith('self connect')) return 'connection refused (self connect)';
    return error.message;
  }
  return String(error);
}
