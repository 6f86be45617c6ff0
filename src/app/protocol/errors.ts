import { Errno } from './errno.js';

/**
 * Why a byte stream or payload could not be turned into (or made from) a message.
 * Decode-side codes mean the peer sent garbage (errno 3, close the connection);
 * UNENCODABLE means the server tried to send something the codec cannot express (errno 9).
 */
export type ProtocolErrorCode =
  | 'FRAME_TOO_LARGE'
  | 'BAD_UTF8'
  | 'BAD_JSON'
  | 'BAD_CHECKSUM'
  | 'BAD_NAME_LEN'
  | 'UNKNOWN_TYPE'
  | 'TRUNCATED'
  | 'BAD_PROTOBUF'
  | 'UNENCODABLE';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;
  readonly errno: number;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown; errno?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.errno = options?.errno ?? (code === 'UNENCODABLE' ? Errno.UNAVAILABLE : Errno.BAD_REQUEST);
  }
}

export function isProtocolError(e: unknown): e is ProtocolError {
  return e instanceof ProtocolError;
}
